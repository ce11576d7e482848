//! The idx format of MNIST and Fashion-MNIST: raw and gzipped files, the error for each kind of
//! broken or missing file, and the real Fashion-MNIST test split where the Debian package is
//! installed.
#[path = "common/dataset_files.rs"]
mod dataset_files;

use dataset_files::{FASHION, assert_has, gzip, idx_images, idx_labels, load_err, mnist_pixels, write_idx};
use mmard::io::datasets::{Dataset, DatasetKind, Split};

#[test]
fn idx_raw_and_gz_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (train_px, test_px) = (mnist_pixels(3), mnist_pixels(2));
    write_idx(dir.path(), "train", &train_px, &[0, 9, 3], false);
    write_idx(dir.path(), "t10k", &test_px, &[5, 1], true);

    let train = Dataset::load(FASHION, dir.path(), Split::Train).unwrap();
    assert_eq!((train.len(), train.c, train.h, train.w, train.classes), (3, 1, 28, 28, 10));
    assert_eq!(train.labels, [0, 9, 3]);
    let want: Vec<f32> = train_px.iter().map(|&b| b as f32 / 255.0).collect();
    assert_eq!(train.images, want);
    // Byte 255 is exactly 1.0; image 1, row 2, column 5 sits at 784 + 2·28 + 5 (NCHW).
    let k = train_px.iter().position(|&b| b == 255).unwrap();
    assert_eq!(train.images[k], 1.0);
    assert_eq!(train.images[784 + 2 * 28 + 5], train_px[784 + 2 * 28 + 5] as f32 / 255.0);

    let test = Dataset::load(DatasetKind::Mnist, dir.path(), Split::Test).unwrap();
    assert_eq!(test.labels, [5, 1]);
    assert_eq!(test.images.len(), 2 * 784);
    assert_eq!(test.images[100], test_px[100] as f32 / 255.0);
}

#[test]
fn idx_raw_is_preferred_over_gz() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "t10k", &mnist_pixels(1), &[7], false);
    write_idx(dir.path(), "t10k", &mnist_pixels(2), &[1, 2], true);
    assert_eq!(Dataset::load(FASHION, dir.path(), Split::Test).unwrap().labels, [7]);
}

#[test]
fn missing_idx_files_name_the_file_the_folder_and_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let msg = load_err(FASHION, dir.path(), Split::Train);
    assert_has(&msg, &["train-images-idx3-ubyte", &d, "apt-get install dataset-fashion-mnist", "--data-dir"]);

    // Images present, labels absent.
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx_images(1, 28, 28, &[0; 784])).unwrap();
    assert_has(&load_err(FASHION, dir.path(), Split::Test), &["t10k-labels-idx1-ubyte", &d]);
}

#[test]
fn broken_idx_files_are_clear_errors() {
    let case = |img: Vec<u8>, lbl: Vec<u8>, parts: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), img).unwrap();
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), lbl).unwrap();
        assert_has(&load_err(FASHION, dir.path(), Split::Test), parts);
    };
    let px = mnist_pixels(3);
    let good_lbl = || idx_labels(&[1, 2, 3]);
    // Labels file where the images belong, and the other way round.
    case(good_lbl(), good_lbl(), &["t10k-images-idx3-ubyte", "0x00000801", "expected 0x00000803"]);
    case(
        idx_images(3, 28, 28, &px),
        idx_images(3, 28, 28, &px),
        &["t10k-labels-idx1-ubyte", "0x00000803", "expected 0x00000801"],
    );
    // Header says 3 images: 16 + 3·784 = 2368 bytes; 2 present (1584), or 3 and a byte more (2369).
    case(idx_images(3, 28, 28, &px[..2 * 784]), good_lbl(), &["t10k-images-idx3-ubyte", "truncated", "2368", "1584"]);
    case(
        idx_images(3, 28, 28, &[&px[..], &[0]].concat()),
        good_lbl(),
        &["t10k-images-idx3-ubyte", "oversized", "2368", "2369"],
    );
    case(
        idx_images(3, 28, 28, &px),
        idx_labels(&[1, 2]),
        &["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "3 images", "2 labels"],
    );
    case(
        idx_images(3, 28, 28, &px),
        idx_labels(&[1, 10, 2]),
        &["t10k-labels-idx1-ubyte", "label 10", "index 1", "< 10"],
    );
    case(
        idx_images(1, 32, 32, &[0; 1024]),
        idx_labels(&[1]),
        &["t10k-images-idx3-ubyte", "[32, 32]", "expected [28, 28]"],
    );
    case(vec![0, 0, 8], good_lbl(), &["t10k-images-idx3-ubyte", "3 bytes", "16 bytes"]);
    // A count near u32::MAX must not overflow or allocate.
    case(idx_images(u32::MAX, 28, 28, &px), good_lbl(), &["t10k-images-idx3-ubyte", "truncated"]);
}

#[test]
fn corrupt_gzip_is_a_clear_error() {
    let gz = gzip(&idx_images(3, 28, 28, &mnist_pixels(3)));
    for bad in [b"not gzip at all".to_vec(), gz[..gz.len() / 2].to_vec()] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), bad).unwrap();
        std::fs::write(dir.path().join("train-labels-idx1-ubyte.gz"), gzip(&idx_labels(&[1, 2, 3]))).unwrap();
        assert_has(&load_err(FASHION, dir.path(), Split::Train), &["train-images-idx3-ubyte.gz", "gzip"]);
    }
}

#[test]
fn real_fashion_mnist_test_split() {
    let Some(dir) = FASHION.default_dir().filter(|d| d.exists()) else {
        eprintln!("skipped: /usr/share/datasets/fashion-mnist is absent (apt-get install dataset-fashion-mnist)");
        return;
    };
    let ds = Dataset::load(FASHION, &dir, Split::Test).unwrap();
    assert_eq!(ds.len(), 10000);
    assert_eq!(ds.images.len(), 10000 * 784);
    assert!(ds.labels.iter().all(|&y| y < 10));
    assert!(ds.images.iter().all(|&v| (0.0..=1.0).contains(&v)));
    // All ten classes, 1000 each.
    let mut counts = [0; 10];
    ds.labels.iter().for_each(|&y| counts[y] += 1);
    assert_eq!(counts, [1000; 10]);
}
