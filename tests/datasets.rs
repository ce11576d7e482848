//! What every dataset shares: the kinds' names, shapes and defaults, and a loaded dataset's
//! subsets and batches. Each format has its own file: `datasets_idx.rs` (MNIST, Fashion-MNIST),
//! `datasets_cifar_binary.rs`, `datasets_cifar_pickle.rs` (the Python version),
//! `datasets_archives.rs` (.tar.gz and where `--data-dir` looks) and `datasets_augment.rs` (the
//! training augmentation); the files they write come from `tests/common/dataset_files.rs`.
#[path = "common/dataset_files.rs"]
mod dataset_files;

use dataset_files::{FASHION, assert_has, mnist_pixels, write_idx};
use mmard::io::datasets::{Dataset, DatasetKind, Split};
use std::path::Path;

#[test]
fn kinds_parse_and_describe_themselves() {
    for (s, kind) in [
        ("cifar10", DatasetKind::Cifar10),
        ("cifar100", DatasetKind::Cifar100),
        ("mnist", DatasetKind::Mnist),
        ("fashion-mnist", FASHION),
    ] {
        assert_eq!(s.parse::<DatasetKind>().unwrap(), kind);
        assert_eq!(kind.name(), s);
    }
    let msg = "imagenet".parse::<DatasetKind>().unwrap_err().to_string();
    assert_has(&msg, &["imagenet", "cifar10", "cifar100", "mnist", "fashion-mnist"]);
    assert_eq!((DatasetKind::Cifar10.classes(), DatasetKind::Cifar100.classes()), (10, 100));
    assert_eq!(DatasetKind::Cifar100.shape(), (3, 32, 32));
    assert_eq!(FASHION.shape(), (1, 28, 28));
    assert_eq!(FASHION.default_dir().unwrap(), Path::new("/usr/share/datasets/fashion-mnist"));
    assert_eq!(DatasetKind::Cifar10.default_dir(), None);
    assert_eq!(DatasetKind::Cifar10.default_eps(), 8.0 / 255.0);
    assert_eq!((FASHION.default_eps(), DatasetKind::Mnist.default_eps()), (0.1, 0.3));
}

#[test]
fn subset_and_batch() {
    let dir = tempfile::tempdir().unwrap();
    let px = mnist_pixels(3);
    write_idx(dir.path(), "train", &px, &[4, 5, 6], false);
    let ds = Dataset::load(FASHION, dir.path(), Split::Train).unwrap();
    let sub = ds.subset(2);
    assert_eq!((sub.len(), sub.labels.clone(), sub.images.len()), (2, vec![4, 5], 2 * 784));
    assert_eq!(ds.subset(100).len(), 3);
    assert!(ds.subset(0).is_empty());

    let (x, y) = ds.batch(&[2, 0]);
    assert_eq!(x.shape(), [2, 1, 28, 28]);
    assert_eq!(y, [6, 4]);
    assert_eq!(x.data()[..784], ds.images[2 * 784..]);
    assert_eq!(x.data()[784..], ds.images[..784]);
}
