//! Image-classification datasets as the CLI reads them: MNIST / Fashion-MNIST idx files (raw or
//! .gz) and CIFAR-10 / CIFAR-100, binary or Python version, unpacked or in their .tar.gz (see
//! `cifar.rs`). Images come out N×C×H×W f32 in [0, 1] (byte / 255). Every error names the file
//! and what was expected; bad files never panic.
use super::cifar::load_cifar;
use crate::err;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use flate2::read::GzDecoder;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

crate::named_enum! { "dataset",
/// A dataset by the name `--dataset` takes.
pub enum DatasetKind {
    /// CIFAR-10 (binary or Python version, unpacked or as its .tar.gz).
    Cifar10 = "cifar10",
    /// CIFAR-100, fine labels (binary or Python version).
    Cifar100 = "cifar100",
    /// MNIST (idx files, raw or .gz).
    Mnist = "mnist",
    /// Fashion-MNIST (idx files, raw or .gz).
    FashionMnist = "fashion-mnist",
}
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl DatasetKind {
    pub fn classes(self) -> usize {
        match self {
            Self::Cifar100 => 100,
            _ => 10,
        }
    }

    /// (channels, height, width) of one image.
    pub fn shape(self) -> (usize, usize, usize) {
        match self {
            Self::Cifar10 | Self::Cifar100 => (3, 32, 32),
            Self::Mnist | Self::FashionMnist => (1, 28, 28),
        }
    }

    /// Where a system package puts the files, if one does.
    pub fn default_dir(self) -> Option<PathBuf> {
        match self {
            Self::FashionMnist => Some("/usr/share/datasets/fashion-mnist".into()),
            Self::Mnist => Some("/usr/share/datasets/mnist".into()),
            Self::Cifar10 | Self::Cifar100 => None,
        }
    }

    /// The customary L∞ attack budget on this dataset.
    pub fn default_eps(self) -> f32 {
        match self {
            Self::Cifar10 | Self::Cifar100 => 8.0 / 255.0,
            Self::FashionMnist => 0.1,
            Self::Mnist => 0.3,
        }
    }

    /// How to get the files, for "not found" errors.
    fn hint(self) -> &'static str {
        match self {
            Self::FashionMnist => {
                "install them with `apt-get install dataset-fashion-mnist`, or pass `--data-dir DIR` with the idx files"
            }
            Self::Mnist => "pass `--data-dir DIR` with the MNIST idx files (raw or .gz)",
            Self::Cifar10 => {
                "pass `--data-dir` with cifar-10-python.tar.gz (what torchvision downloads) or \
                 cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, \
                 or a folder holding either, packed or unpacked"
            }
            Self::Cifar100 => {
                "pass `--data-dir` with cifar-100-python.tar.gz (what torchvision downloads) or \
                 cifar-100-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, \
                 or a folder holding either, packed or unpacked"
            }
        }
    }
}

/// A whole split in memory: `images` is N×C×H×W, `labels` are < `classes`.
#[derive(Clone)]
pub struct Dataset {
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub classes: usize,
}

impl Dataset {
    /// Reads one split of `kind` from `dir` (see the module comment for the formats); for CIFAR,
    /// `dir` may also be the .tar.gz itself.
    pub fn load(kind: DatasetKind, dir: &Path, split: Split) -> Result<Dataset> {
        let (images, labels) = match kind {
            DatasetKind::Mnist | DatasetKind::FashionMnist => load_idx(kind, dir, split)?,
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => load_cifar(kind, dir, split)?,
        };
        let (c, h, w) = kind.shape();
        Ok(Dataset { images, labels, c, h, w, classes: kind.classes() })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` examples (all of them when there are fewer).
    pub fn subset(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset { images: self.images[..n * self.image_len()].to_vec(), labels: self.labels[..n].to_vec(), ..*self }
    }

    /// Examples `idx` as an N×C×H×W tensor and their labels. Panics on an index ≥ `len()`.
    pub fn batch(&self, idx: &[usize]) -> (Tensor, Vec<usize>) {
        let m = self.image_len();
        let mut data = Vec::with_capacity(idx.len() * m);
        for &i in idx {
            data.extend_from_slice(&self.images[i * m..(i + 1) * m]);
        }
        let labels = idx.iter().map(|&i| self.labels[i]).collect();
        (Tensor::from_vec(&[idx.len(), self.c, self.h, self.w], data), labels)
    }

    fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }
}

pub(super) fn to_unit(b: &u8) -> f32 {
    *b as f32 / 255.0
}

pub(super) fn missing(kind: DatasetKind, file: &str, searched: &str) -> Error {
    err!("{file} not found in {searched}; {}", kind.hint())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, e))
}

/// MNIST-style idx files: `{train,t10k}-{images-idx3,labels-idx1}-ubyte`, raw or `.gz`.
fn load_idx(kind: DatasetKind, dir: &Path, split: Split) -> Result<(Vec<f32>, Vec<usize>)> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let (_, h, w) = kind.shape();
    let (img_path, img_bytes) = read_maybe_gz(kind, dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (lbl_path, lbl_bytes) = read_maybe_gz(kind, dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (n_img, pixels) = idx_body(&img_path, &img_bytes, &[h, w])?;
    let (n_lbl, label_bytes) = idx_body(&lbl_path, &lbl_bytes, &[])?;
    if n_img != n_lbl {
        return Err(err!(
            "{} holds {n_img} images but {} holds {n_lbl} labels; expected the same count",
            img_path.display(),
            lbl_path.display()
        ));
    }
    let classes = kind.classes();
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
fn read_maybe_gz(kind: DatasetKind, dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>)> {
    let raw = dir.join(name);
    if raw.is_file() {
        let bytes = read(&raw)?;
        return Ok((raw, bytes));
    }
    let gz = dir.join(format!("{name}.gz"));
    if !gz.is_file() {
        return Err(missing(kind, &format!("{name} (or {name}.gz)"), &dir.display().to_string()));
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
