//! Adversarial robustness distillation: the objectives of every method (`terms`, `methods`), one
//! training step (`step`) and the loop around it (`train`). Imports point down: the objectives,
//! then `step`, then `train`; below them the attacks (`crate::attack`) and the helpers they share
//! with the step (`crate::nn::eval`, `crate::samples`).
pub mod methods;
pub mod step;
pub mod terms;
pub mod train;
