//! Dataset loaders on small synthetic files of each format (idx raw and .gz, CIFAR-10/100 binary,
//! flat and in the archives' subfolders), the error for each kind of broken file, and the
//! training augmentation. The real Fashion-MNIST test split is read where the Debian package is
//! installed.
use flate2::Compression;
use flate2::write::GzEncoder;
use mmard::Tensor;
use mmard::io::augment::{augment, shift_flip, shuffled};
use mmard::io::datasets::{Dataset, DatasetKind, Split};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::io::Write;
use std::path::Path;

const FASHION: DatasetKind = DatasetKind::FashionMnist;

fn idx_images(n: u32, h: u32, w: u32, pixels: &[u8]) -> Vec<u8> {
    [0x803, n, h, w].iter().flat_map(|v| v.to_be_bytes()).chain(pixels.iter().copied()).collect()
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    [0x801, labels.len() as u32].iter().flat_map(|v| v.to_be_bytes()).chain(labels.iter().copied()).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// `n` distinct-ish 28×28 images: pixel k of the split is (k·7 + n) mod 256, so 255 occurs.
fn mnist_pixels(n: usize) -> Vec<u8> {
    (0..n * 784).map(|k| ((k * 7 + n) % 256) as u8).collect()
}

/// A Fashion-MNIST-style split `prefix` in `dir`, `.gz` when `gz`.
fn write_idx(dir: &Path, prefix: &str, pixels: &[u8], labels: &[u8], gz: bool) {
    let (img, lbl) = (idx_images((pixels.len() / 784) as u32, 28, 28, pixels), idx_labels(labels));
    let (img, lbl, ext) = if gz { (gzip(&img), gzip(&lbl), ".gz") } else { (img, lbl, "") };
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{ext}")), img).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), lbl).unwrap();
}

/// One CIFAR record: label bytes, then planes R = 255, G = `g`, B = pixel index mod 256.
fn cifar_record(labels: &[u8], g: u8) -> Vec<u8> {
    let b = (0..1024).map(|k| (k % 256) as u8);
    labels.iter().copied().chain([255; 1024]).chain([g; 1024]).chain(b).collect()
}

fn check_cifar_record(ds: &Dataset, i: usize, g: u8) {
    let img = &ds.images[i * 3072..(i + 1) * 3072];
    assert!(img[..1024].iter().all(|&v| v == 1.0));
    assert!(img[1024..2048].iter().all(|&v| v == g as f32 / 255.0));
    // Blue plane, row 2, column 3: pixel index 67.
    assert_eq!(img[2048 + 2 * 32 + 3], 67.0 / 255.0);
}

/// The message of a load that must fail.
fn load_err(kind: DatasetKind, dir: &Path, split: Split) -> String {
    match Dataset::load(kind, dir, split) {
        Ok(_) => panic!("loading {kind:?} {split:?} from {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "`{msg}` lacks `{p}`");
    }
}

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
fn cifar10_loads_flat_and_from_its_subfolder() {
    for sub in ["", "cifar-10-batches-bin"] {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(sub);
        std::fs::create_dir_all(&dir).unwrap();
        for b in 1..=5u8 {
            let recs = [cifar_record(&[b], 10 * b), cifar_record(&[b + 4], 0)].concat();
            std::fs::write(dir.join(format!("data_batch_{b}.bin")), recs).unwrap();
        }
        std::fs::write(dir.join("test_batch.bin"), cifar_record(&[9], 77)).unwrap();

        let train = Dataset::load(DatasetKind::Cifar10, root.path(), Split::Train).unwrap();
        assert_eq!((train.len(), train.c, train.h, train.w, train.classes), (10, 3, 32, 32, 10));
        assert_eq!(train.labels, [1, 5, 2, 6, 3, 7, 4, 8, 5, 9]);
        check_cifar_record(&train, 0, 10);
        check_cifar_record(&train, 9, 0);
        let test = Dataset::load(DatasetKind::Cifar10, root.path(), Split::Test).unwrap();
        assert_eq!(test.labels, [9]);
        check_cifar_record(&test, 0, 77);
    }
}

#[test]
fn cifar100_uses_the_fine_label_flat_and_from_its_subfolder() {
    for sub in ["", "cifar-100-binary"] {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(sub);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("train.bin"), [cifar_record(&[7, 42], 1), cifar_record(&[19, 99], 2)].concat())
            .unwrap();
        std::fs::write(dir.join("test.bin"), cifar_record(&[0, 3], 3)).unwrap();
        let train = Dataset::load(DatasetKind::Cifar100, root.path(), Split::Train).unwrap();
        assert_eq!((train.labels.clone(), train.classes), (vec![42, 99], 100));
        check_cifar_record(&train, 1, 2);
        assert_eq!(Dataset::load(DatasetKind::Cifar100, root.path(), Split::Test).unwrap().labels, [3]);
    }
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

#[test]
fn missing_files_name_the_file_the_folder_and_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let msg = load_err(FASHION, dir.path(), Split::Train);
    assert_has(&msg, &["train-images-idx3-ubyte", &d, "apt-get install dataset-fashion-mnist", "--data-dir"]);

    // Images present, labels absent.
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx_images(1, 28, 28, &[0; 784])).unwrap();
    assert_has(&load_err(FASHION, dir.path(), Split::Test), &["t10k-labels-idx1-ubyte", &d]);

    let msg = load_err(DatasetKind::Cifar10, dir.path(), Split::Train);
    assert_has(&msg, &["data_batch_1.bin", &d, "cifar-10-batches-bin", "--data-dir"]);
    assert_has(&load_err(DatasetKind::Cifar100, dir.path(), Split::Test), &["test.bin", "cifar-100-binary"]);

    // A later batch missing names that batch.
    std::fs::write(dir.path().join("data_batch_1.bin"), cifar_record(&[0], 0)).unwrap();
    assert_has(&load_err(DatasetKind::Cifar10, dir.path(), Split::Train), &["data_batch_2.bin", &d]);
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
fn broken_cifar_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let test10 = dir.path().join("test_batch.bin");
    // Two records less 5 bytes: 6141, not a multiple of 3073.
    std::fs::write(&test10, &[cifar_record(&[1], 0), cifar_record(&[1], 0)].concat()[..6141]).unwrap();
    assert_has(
        &load_err(DatasetKind::Cifar10, dir.path(), Split::Test),
        &["test_batch.bin", "6141 bytes", "3073-byte records", "30730000"],
    );
    std::fs::write(&test10, []).unwrap();
    assert_has(&load_err(DatasetKind::Cifar10, dir.path(), Split::Test), &["test_batch.bin", "0 bytes"]);
    std::fs::write(&test10, [cifar_record(&[3], 0), cifar_record(&[10], 0)].concat()).unwrap();
    assert_has(
        &load_err(DatasetKind::Cifar10, dir.path(), Split::Test),
        &["test_batch.bin", "record 1", "label 10", "< 10"],
    );

    std::fs::write(dir.path().join("test.bin"), cifar_record(&[1, 100], 0)).unwrap();
    assert_has(
        &load_err(DatasetKind::Cifar100, dir.path(), Split::Test),
        &["test.bin", "record 0", "label 100", "< 100"],
    );
    std::fs::write(dir.path().join("test.bin"), cifar_record(&[1], 0)).unwrap();
    assert_has(
        &load_err(DatasetKind::Cifar100, dir.path(), Split::Test),
        &["test.bin", "3073 bytes", "3074-byte records"],
    );
}

/// One channel of a 3×3 image 1..=9 under a shift and flip.
fn small(shift: (isize, isize), flip: bool) -> Vec<f32> {
    let src: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let mut dst = vec![-1.0; 9];
    shift_flip(&src, &mut dst, 3, 3, shift, flip);
    dst
}

#[test]
fn shift_flip_moves_content_where_expected() {
    assert_eq!(small((0, 0), false), [1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    // Output (y, x) reads input (y + dy, x + dx): content moves up, or right for dx < 0.
    assert_eq!(small((1, 0), false), [4., 5., 6., 7., 8., 9., 0., 0., 0.]);
    assert_eq!(small((0, -1), false), [0., 1., 2., 0., 4., 5., 0., 7., 8.]);
    assert_eq!(small((0, 0), true), [3., 2., 1., 6., 5., 4., 9., 8., 7.]);
    // Crop first, then flip (as RandomCrop then RandomHorizontalFlip).
    assert_eq!(small((0, 1), true), [0., 3., 2., 0., 6., 5., 0., 9., 8.]);
    assert_eq!(small((5, 0), false), [0.; 9]);

    // A CIFAR-sized image: one bright pixel at channel 1, (10, 20).
    let mut src = vec![0.0; 3 * 32 * 32];
    src[1024 + 10 * 32 + 20] = 1.0;
    let mut dst = vec![0.0; src.len()];
    shift_flip(&src, &mut dst, 32, 32, (3, -2), false);
    assert_eq!(dst.iter().position(|&v| v == 1.0), Some(1024 + 7 * 32 + 22));
    assert_eq!(dst.iter().sum::<f32>(), 1.0);
    shift_flip(&src, &mut dst, 32, 32, (3, -2), true);
    assert_eq!(dst.iter().position(|&v| v == 1.0), Some(1024 + 7 * 32 + 9));
}

#[test]
fn augment_is_a_seeded_crop_and_flip_per_image() {
    let mut rng = StdRng::seed_from_u64(1);
    let n = 64;
    // Positive values everywhere, so a shift's zeros are recognisable.
    let x = Tensor::from_vec(&[n, 3, 32, 32], (0..n * 3072).map(|_| rng.random_range(0.1f32..1.0)).collect());
    let run = |seed| {
        let mut y = x.clone();
        augment(&mut y, &mut StdRng::seed_from_u64(seed));
        y
    };
    let (a, b) = (run(7), run(7));
    assert_eq!(a.shape(), x.shape());
    assert_eq!(a.data(), b.data());
    assert_ne!(a.data(), run(8).data());

    // Every output image is one of the 9·9·2 crops and flips of its input; over 64 images
    // both flips and the extreme shifts turn up.
    let mut seen = Vec::new();
    for (src, out) in x.data().chunks(3072).zip(a.data().chunks(3072)) {
        let mut dst = vec![0.0; 3072];
        let found = (-4..=4).flat_map(|dy| (-4..=4).flat_map(move |dx| [false, true].map(|f| ((dy, dx), f)))).find(
            |&(shift, flip)| {
                shift_flip(src, &mut dst, 32, 32, shift, flip);
                dst == out
            },
        );
        seen.push(found.expect("augmented image is a crop and flip of its input"));
    }
    assert!(seen.iter().any(|s| s.1) && seen.iter().any(|s| !s.1));
    assert!(seen.iter().any(|s| s.0.0 == -4 || s.0.1 == -4) && seen.iter().any(|s| s.0.0 == 4 || s.0.1 == 4));
}

#[test]
fn shuffled_is_a_seeded_permutation() {
    let p = shuffled(100, &mut StdRng::seed_from_u64(3));
    let mut sorted = p.clone();
    sorted.sort();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    assert_eq!(p, shuffled(100, &mut StdRng::seed_from_u64(3)));
    assert_ne!(p, shuffled(100, &mut StdRng::seed_from_u64(4)));
    assert!(shuffled(0, &mut StdRng::seed_from_u64(3)).is_empty());
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
