//! CIFAR's binary version: records of the label byte(s) and the image's pixels. Its image layout
//! and the decoded file (`PIXELS`, `Batch`) are the Python version's too (`cifar_pickle.rs`).
use crate::err;
use crate::error::Result;

/// Values in one image: 1024 R, then 1024 G, then 1024 B, rows within each (already C×H×W).
pub const PIXELS: usize = 3 * 32 * 32;

/// One file of a split: `n` images of `PIXELS` bytes and their labels.
pub struct Batch {
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
}

/// The records of one file, `label_bytes` label bytes (the class is the last one) then `PIXELS`
/// pixels each; labels must be below `classes`, and `origin` names the file in errors.
pub fn binary_batch(origin: &str, bytes: &[u8], label_bytes: usize, classes: usize) -> Result<Batch> {
    let record = label_bytes + PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(err!(
            "{origin}: {} bytes, expected a whole number of {record}-byte records ({label_bytes} label byte(s) + {PIXELS} pixels; \
             {} bytes for 10000 records)",
            bytes.len(),
            10000 * record
        ));
    }
    let mut pixels = Vec::with_capacity(bytes.len() / record * PIXELS);
    let mut labels = Vec::with_capacity(bytes.len() / record);
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        let y = r[label_bytes - 1] as usize;
        if y >= classes {
            return Err(err!("{origin}: record {i} has label {y}, expected < {classes}"));
        }
        labels.push(y);
        pixels.extend_from_slice(&r[label_bytes..]);
    }
    Ok(Batch { pixels, labels })
}
