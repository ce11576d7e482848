//! Adversarial robustness distillation: the objectives of every method (`terms`, `methods`), one
//! training step (`step`) and the loop around it (`train`), and the attacks (`attack/`). Imports
//! point down: `rows` and `grad` at the bottom, then the attacks and the objectives, then `step`,
//! then `train`.
pub mod attack;
pub mod grad;
pub mod methods;
pub mod rows;
pub mod step;
pub mod terms;
pub mod train;
