//! MNIST-style idx files: `{train,t10k}-{images-idx3,labels-idx1}-ubyte`, each raw or `.gz`.
//! Every error names the file and what was expected; bad files never panic.
use super::split::{Split, Wanted, to_unit};
use crate::err;
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The split's images of `h`×`w` pixels and their labels from `dir`, as values in [0, 1] and
/// classes.
pub fn load(dir: &Path, want: &Wanted, [h, w]: [usize; 2]) -> Result<(Vec<f32>, Vec<usize>)> {
    let prefix = match want.split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let (img_path, img_bytes) = read_maybe_gz(want, dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (lbl_path, lbl_bytes) = read_maybe_gz(want, dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (n_img, pixels) = idx_body(&img_path, &img_bytes, &[h, w])?;
    let (n_lbl, label_bytes) = idx_body(&lbl_path, &lbl_bytes, &[])?;
    if n_img != n_lbl {
        return Err(err!(
            "{} holds {n_img} images but {} holds {n_lbl} labels; expected the same count",
            img_path.display(),
            lbl_path.display()
        ));
    }
    let classes = want.classes;
    let labels = label_bytes
        .iter()
        .enumerate()
        .map(|(i, &y)| match y as usize {
            y if y < classes => Ok(y),
            y => Err(err!("{}: label {y} at index {i}, expected < {classes}", lbl_path.display())),
        })
        .collect::<Result<_>>()?;
    Ok((pixels.iter().map(to_unit).collect(), labels))
}

/// Reads `dir/name`, or else `dir/name.gz` decompressed; returns the path actually read.
fn read_maybe_gz(want: &Wanted, dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>)> {
    let raw = dir.join(name);
    if raw.is_file() {
        let bytes = read(&raw)?;
        return Ok((raw, bytes));
    }
    let gz = dir.join(format!("{name}.gz"));
    if !gz.is_file() {
        return Err(want.missing(&format!("{name} (or {name}.gz)"), &dir.display().to_string()));
    }
    let mut bytes = Vec::new();
    GzDecoder::new(&read(&gz)?[..])
        .read_to_end(&mut bytes)
        .map_err(|e| err!("{}: corrupt or truncated gzip stream ({e})", gz.display()))?;
    Ok((gz, bytes))
}

/// Checks an unsigned-byte idx file holding items of shape `dims` (header: magic, count, dims,
/// each a big-endian u32) against its size; returns the count and the data after the header.
fn idx_body<'a>(path: &Path, bytes: &'a [u8], dims: &[usize]) -> Result<(usize, &'a [u8])> {
    // Magic 0x0000_08NN: 0x08 = unsigned bytes, NN = number of dimensions (count + item dims).
    let magic = 0x0800 + 1 + dims.len();
    let what = if dims.is_empty() { "labels" } else { "images" };
    let header = 4 * (2 + dims.len());
    let word =
        |i: usize| u32::from_be_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]) as usize;
    // The magic first, however short the file: it tells a labels file put where images belong.
    if bytes.len() >= 4 && word(0) != magic {
        return Err(err!(
            "{}: magic number {:#010x}, expected {magic:#010x} (idx {what} file)",
            path.display(),
            word(0)
        ));
    }
    if bytes.len() < header {
        return Err(err!(
            "{}: {} bytes, too short for an idx header ({header} bytes expected)",
            path.display(),
            bytes.len()
        ));
    }
    let n = word(1);
    let found: Vec<usize> = (0..dims.len()).map(|i| word(2 + i)).collect();
    if found != dims {
        return Err(err!("{}: {what} of {found:?}, expected {dims:?}", path.display()));
    }
    // u64: a corrupt count must not overflow the arithmetic.
    let item: usize = dims.iter().product();
    let expected = header as u64 + n as u64 * item as u64;
    if bytes.len() as u64 != expected {
        let verdict = if (bytes.len() as u64) < expected { "truncated" } else { "oversized" };
        return Err(err!(
            "{}: {verdict}: header says {n} {what} ({header} + {n} × {item} = {expected} bytes expected), found {} bytes",
            path.display(),
            bytes.len()
        ));
    }
    Ok((n, &bytes[header..]))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, e))
}
