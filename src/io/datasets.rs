//! The dataset registry: the image-classification datasets the CLI reads, their shapes, classes
//! and customary budgets, where their files usually lie and how to get them. MNIST / Fashion-MNIST
//! are idx files (raw or .gz), CIFAR-10 / CIFAR-100 the binary or Python version, unpacked or in
//! their .tar.gz; the readers of those formats sit below (`formats/`). Images come out N×C×H×W
//! f32 in [0, 1] (byte / 255). Every error names the file and what was expected; bad files never
//! panic.
use super::formats::cifar::{self, Cifar};
use super::formats::idx;
use super::formats::split::Wanted;
use crate::error::Result;
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};

pub use super::formats::split::Split;

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
    /// A hash of the images, labels and shape: data-parallel ranks compare theirs before training.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        (self.c, self.h, self.w, self.classes, &self.labels).hash(&mut h);
        h.write(bytemuck::cast_slice(&self.images));
        h.finish()
    }

    /// Reads one split of `kind` from `dir` (see the module comment for the formats); for CIFAR,
    /// `dir` may also be the .tar.gz itself.
    pub fn load(kind: DatasetKind, dir: &Path, split: Split) -> Result<Dataset> {
        let (c, h, w) = kind.shape();
        let want = Wanted { split, classes: kind.classes(), hint: kind.hint() };
        let (images, labels) = match kind {
            DatasetKind::Mnist | DatasetKind::FashionMnist => idx::load(dir, &want, [h, w])?,
            DatasetKind::Cifar10 => cifar::load(Cifar::Ten, dir, &want)?,
            DatasetKind::Cifar100 => cifar::load(Cifar::Hundred, dir, &want)?,
        };
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
