//! Adversarial robustness distillation: attacks, methods (inner and outer objectives), training.
pub mod attacks;
pub mod grad;
