//! Where a tensor lives. Only the CPU exists so far; the CUDA variant joins here and every op
//! dispatches on `Tensor::device()`, so adding it changes no call site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
        }
    }
}
