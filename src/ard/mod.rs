//! Adversarial robustness distillation: attacks, methods (inner and outer objectives), training.
pub mod apgd;
pub mod attacks;
pub mod grad;
pub mod methods;
pub mod step;
pub mod train;
