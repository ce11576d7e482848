//! What the registry asks a format reader for: a split, the number of classes its labels stay
//! below, and how to get the files when they are missing.
use crate::err;
use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// One request to a reader.
pub struct Wanted<'a> {
    pub split: Split,
    /// Labels must be below this.
    pub classes: usize,
    /// How to get the files, for "not found" errors.
    pub hint: &'a str,
}

impl Wanted<'_> {
    /// The error for `file` not found in `searched`, with how to get it.
    pub fn missing(&self, file: &str, searched: &str) -> Error {
        err!("{file} not found in {searched}; {}", self.hint)
    }
}

/// A pixel byte as an image value in [0, 1].
pub fn to_unit(b: &u8) -> f32 {
    *b as f32 / 255.0
}
