//! One error type for the library: every message names the file, tensor or flag at fault and
//! what was expected, so the CLI can print it as is.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a valid safetensors file: {msg}")]
    Format { path: PathBuf, msg: String },
    #[error("tensor `{name}`: expected shape {expected:?}, found {found:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` is missing{hint}")]
    Missing { name: String, hint: String },
    #[error("tensor `{name}`: unsupported dtype {dtype} (expected F32, F16, BF16, or I64 for num_batches_tracked)")]
    Dtype { name: String, dtype: String },
    #[error("{0}")]
    Msg(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// `bail!`-style shorthand for an `Error::Msg`.
#[macro_export]
macro_rules! err {
    ($($t:tt)*) => { $crate::error::Error::Msg(format!($($t)*)) };
}
