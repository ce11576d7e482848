//! Dataset loaders on small synthetic files of each format (idx raw and .gz; CIFAR-10/100 binary
//! and Python pickle versions, flat, in the archives' subfolders and in .tar.gz archives), the
//! error for each kind of broken file, and the training augmentation. Two Python-written CIFAR
//! pickles are read from tests/fixtures; the real Fashion-MNIST test split is read where the
//! Debian package is installed.
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

/// A CIFAR batch pickled as Python 2's cPickle wrote the official files: protocol 2, `str` keys
/// and pixels as SHORT_BINSTRING / BINSTRING, `data` as numpy's `_reconstruct` + BUILD with the
/// state (1, shape, uint8 dtype, C order, raw bytes). `data` is (shape, raw bytes); a `None` is
/// left out of the dict.
fn py2_pickle(data: Option<(&[u32], &[u8])>, labels: Option<(&str, &[u8])>) -> Vec<u8> {
    fn string(p: &mut Vec<u8>, s: &[u8]) {
        match u8::try_from(s.len()) {
            Ok(n) => p.extend([b'U', n]),
            Err(_) => p.extend([&b"T"[..], &(s.len() as u32).to_le_bytes()].concat()),
        }
        p.extend_from_slice(s);
    }
    let mut p = b"\x80\x02}(".to_vec();
    string(&mut p, b"batch_label");
    string(&mut p, b"training batch 1 of 5");
    if let Some((shape, raw)) = data {
        string(&mut p, b"data");
        p.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85");
        string(&mut p, b"b");
        p.extend(b"\x87R(K\x01(");
        for d in shape {
            p.push(b'J');
            p.extend(d.to_le_bytes());
        }
        p.extend(b"tcnumpy\ndtype\n");
        string(&mut p, b"u1");
        p.extend(b"K\x00K\x01\x87R(K\x03");
        string(&mut p, b"|");
        p.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89");
        string(&mut p, raw);
        p.extend(b"tb");
    }
    if let Some((key, ys)) = labels {
        string(&mut p, key.as_bytes());
        p.extend(b"](");
        ys.iter().for_each(|&y| p.extend([b'K', y]));
        p.push(b'e');
    }
    p.extend(b"u.");
    p
}

/// A well-formed Python-version batch: image i as `cifar_record` draws it with G = `gs[i]`.
fn py_batch(labels_key: &str, labels: &[u8], gs: &[u8]) -> Vec<u8> {
    let raw: Vec<u8> = gs.iter().flat_map(|&g| cifar_record(&[], g)).collect();
    py2_pickle(Some((&[gs.len() as u32, 3072], &raw)), Some((labels_key, labels)))
}

/// One version of a CIFAR dataset: the folder its archive unpacks into, and its files.
struct Version {
    sub: &'static str,
    archive: &'static str,
    files: Vec<(String, Vec<u8>)>,
}

/// CIFAR-10 in the binary and the Python version, the same images in both: train batch b holds
/// labels (b, b + 4) with G = (10·b, 0), the test batch label 9 with G = 77.
fn cifar10_versions() -> [Version; 2] {
    let (mut bin, mut py) = (Vec::new(), Vec::new());
    for b in 1..=5u8 {
        let recs = [cifar_record(&[b], 10 * b), cifar_record(&[b + 4], 0)].concat();
        bin.push((format!("data_batch_{b}.bin"), recs));
        py.push((format!("data_batch_{b}"), py_batch("labels", &[b, b + 4], &[10 * b, 0])));
    }
    bin.push(("test_batch.bin".into(), cifar_record(&[9], 77)));
    py.push(("test_batch".into(), py_batch("labels", &[9], &[77])));
    [
        Version { sub: "cifar-10-batches-bin", archive: "cifar-10-binary.tar.gz", files: bin },
        Version { sub: "cifar-10-batches-py", archive: "cifar-10-python.tar.gz", files: py },
    ]
}

/// CIFAR-100 likewise: train fine labels (42, 99) with G = (1, 2) (coarse 7, 19 in the binary
/// records), test fine label 3 with G = 3.
fn cifar100_versions() -> [Version; 2] {
    let bin_train = [cifar_record(&[7, 42], 1), cifar_record(&[19, 99], 2)].concat();
    [
        Version {
            sub: "cifar-100-binary",
            archive: "cifar-100-binary.tar.gz",
            files: vec![("train.bin".into(), bin_train), ("test.bin".into(), cifar_record(&[0, 3], 3))],
        },
        Version {
            sub: "cifar-100-python",
            archive: "cifar-100-python.tar.gz",
            files: vec![
                ("train".into(), py_batch("fine_labels", &[42, 99], &[1, 2])),
                ("test".into(), py_batch("fine_labels", &[3], &[3])),
            ],
        },
    ]
}

fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A .tar.gz of `members` (path, bytes), in that order.
fn tar_gz(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (path, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, &bytes[..]).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// `v` as its archive lays it out: under `v.sub`, after a readme, the files in reverse order
/// (the official archives are not in batch order either).
fn archive_of(v: &Version) -> Vec<u8> {
    let mut members = vec![(format!("{}/readme.html", v.sub), b"<html>".to_vec())];
    members.extend(v.files.iter().rev().map(|(name, b)| (format!("{}/{name}", v.sub), b.clone())));
    tar_gz(&members)
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
    assert_has(
        &msg,
        &[
            "data_batch_1.bin or data_batch_1 not found",
            &d,
            "cifar-10-batches-bin",
            "cifar-10-batches-py",
            "cifar-10-binary.tar.gz or cifar-10-python.tar.gz",
            "--data-dir",
            "torchvision",
        ],
    );
    assert_has(
        &load_err(DatasetKind::Cifar100, dir.path(), Split::Test),
        &["test.bin or test", "cifar-100-binary", "cifar-100-python", "cifar-100-python.tar.gz"],
    );

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

#[test]
fn cifar10_loads_both_versions_flat_and_from_their_subfolders() {
    for v in cifar10_versions() {
        for sub in ["", v.sub] {
            let root = tempfile::tempdir().unwrap();
            write_files(&root.path().join(sub), &v.files);
            let train = Dataset::load(DatasetKind::Cifar10, root.path(), Split::Train).unwrap();
            assert_eq!((train.len(), train.c, train.h, train.w, train.classes), (10, 3, 32, 32, 10));
            assert_eq!(train.labels, [1, 5, 2, 6, 3, 7, 4, 8, 5, 9]);
            check_cifar_record(&train, 0, 10);
            check_cifar_record(&train, 4, 30);
            check_cifar_record(&train, 9, 0);
            let test = Dataset::load(DatasetKind::Cifar10, root.path(), Split::Test).unwrap();
            assert_eq!(test.labels, [9]);
            check_cifar_record(&test, 0, 77);
        }
    }
}

#[test]
fn cifar100_uses_the_fine_label_in_both_versions_flat_and_from_their_subfolders() {
    for v in cifar100_versions() {
        for sub in ["", v.sub] {
            let root = tempfile::tempdir().unwrap();
            write_files(&root.path().join(sub), &v.files);
            let train = Dataset::load(DatasetKind::Cifar100, root.path(), Split::Train).unwrap();
            assert_eq!((train.labels.clone(), train.classes), (vec![42, 99], 100));
            check_cifar_record(&train, 0, 1);
            check_cifar_record(&train, 1, 2);
            let test = Dataset::load(DatasetKind::Cifar100, root.path(), Split::Test).unwrap();
            assert_eq!(test.labels, [3]);
            check_cifar_record(&test, 0, 3);
        }
    }
}

#[test]
fn cifar_archives_load_as_their_unpacked_folders() {
    for (kind, versions) in [(DatasetKind::Cifar10, cifar10_versions()), (DatasetKind::Cifar100, cifar100_versions())] {
        for v in &versions {
            let (unpacked, packed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            write_files(&unpacked.path().join(v.sub), &v.files);
            std::fs::write(packed.path().join(v.archive), archive_of(v)).unwrap();
            // Also under another name, given as --data-dir itself; and flat, as a re-packed archive.
            let renamed = packed.path().join("download.tgz");
            std::fs::write(&renamed, archive_of(v)).unwrap();
            let flat = packed.path().join("flat.tar.gz");
            std::fs::write(&flat, tar_gz(&v.files)).unwrap();
            for split in [Split::Train, Split::Test] {
                let want = Dataset::load(kind, unpacked.path(), split).unwrap();
                for path in [packed.path(), &renamed, &flat] {
                    let got = Dataset::load(kind, path, split).unwrap();
                    assert_eq!(got.labels, want.labels, "{kind:?} {split:?} from {}", path.display());
                    assert!(got.images == want.images, "{kind:?} {split:?} from {}", path.display());
                }
            }
        }
    }
}

#[test]
fn cifar_data_dir_prefers_binary_to_python_and_folders_to_archives() {
    // The same test split in four places, each with its own label.
    let [bin, py] = cifar10_versions();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let test = |label| Dataset::load(DatasetKind::Cifar10, d, Split::Test).unwrap().labels == [label];
    let one = |v: &Version, label| {
        let bytes = match v.sub.ends_with("py") {
            true => py_batch("labels", &[label], &[0]),
            false => cifar_record(&[label], 0),
        };
        (v.files.last().unwrap().0.clone(), bytes)
    };
    std::fs::write(d.join(bin.archive), tar_gz(&[one(&bin, 4)])).unwrap();
    std::fs::write(d.join(py.archive), tar_gz(&[one(&py, 3)])).unwrap();
    write_files(&d.join(py.sub), &[one(&py, 2)]);
    write_files(&d.join(bin.sub), &[one(&bin, 1)]);
    assert!(test(1));
    std::fs::remove_dir_all(d.join(bin.sub)).unwrap();
    assert!(test(2));
    std::fs::remove_dir_all(d.join(py.sub)).unwrap();
    assert!(test(4));
    std::fs::remove_file(d.join(bin.archive)).unwrap();
    assert!(test(3));
}

/// The two batches under tests/fixtures were written by Python with numpy:
///
/// ```python
/// import io, pickle, numpy as np
/// class Py2Pickler(pickle._Pickler):  # bytes as Python 2 wrote `str`
///     dispatch = dict(pickle._Pickler.dispatch)
///     def save_bytes(self, obj):
///         n = len(obj)
///         self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256
///                     else pickle.BINSTRING + n.to_bytes(4, "little")) + obj)
///         self.memoize(obj)
///     dispatch[bytes] = save_bytes
/// def pixels(n):
///     return np.array([[(i * 31 + k * 7) % 256 for k in range(3072)] for i in range(n)], dtype=np.uint8)
/// d10 = {b"batch_label": b"testing batch 1 of 1", b"labels": [3, 9], b"data": pixels(2),
///        b"filenames": [b"a.png", b"b.png"]}
/// buf = io.BytesIO()
/// Py2Pickler(buf, protocol=2).dump(d10)
/// open("cifar10_py2_test_batch.pkl", "wb").write(
///     buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
/// d100 = {"filenames": ["a.png", "b.png"], "batch_label": "testing batch 1 of 1",
///         "fine_labels": [99, 42], "coarse_labels": [19, 7], "data": pixels(2)}
/// open("cifar100_py3_test.pkl", "wb").write(pickle.dumps(d100, protocol=2))
/// ```
///
/// The first is laid out as the official (Python 2 cPickle) files are; the second as Python 3
/// re-pickles one, pixels through `_codecs.encode`. Both load with
/// `pickle.load(f, encoding="latin1")`, as torchvision reads them.
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

#[test]
fn real_python_pickles_load() {
    let want: Vec<f32> = (0..2 * 3072).map(|j| (((j / 3072) * 31 + (j % 3072) * 7) % 256) as f32 / 255.0).collect();
    for (kind, file, name, sub, labels) in [
        (DatasetKind::Cifar10, "cifar10_py2_test_batch.pkl", "test_batch", "cifar-10-batches-py", [3, 9]),
        (DatasetKind::Cifar100, "cifar100_py3_test.pkl", "test", "cifar-100-python", [99, 42]),
    ] {
        let files = [(name.to_string(), fixture(file))];
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), &files);
        let archive = dir.path().join("a.tar.gz");
        std::fs::write(&archive, tar_gz(&[(format!("{sub}/{name}"), files[0].1.clone())])).unwrap();
        for path in [dir.path(), &archive] {
            let ds = Dataset::load(kind, path, Split::Test).unwrap();
            assert_eq!(ds.labels, labels, "{file}");
            assert!(ds.images == want, "{file}");
        }
    }
}

/// The message of loading the CIFAR-10 test split from a folder holding `test_batch` = `bytes`.
fn test_batch_err(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test_batch"), bytes).unwrap();
    load_err(DatasetKind::Cifar10, dir.path(), Split::Test)
}

#[test]
fn broken_cifar_pickles_are_clear_errors() {
    let good = py_batch("labels", &[1, 2], &[0, 0]);
    for cut in [0, 1, 2, 40, 300, good.len() / 2, good.len() - 10, good.len() - 1] {
        assert_has(&test_batch_err(&good[..cut]), &["test_batch", "truncated"]);
    }
    // Every cut of a real pickle is an error, never a panic or a short batch.
    let real = fixture("cifar10_py2_test_batch.pkl");
    for cut in (0..real.len()).step_by(23) {
        assert_has(&test_batch_err(&real[..cut]), &["test_batch"]);
    }
    // A binary-version record where the pickle belongs.
    assert_has(&test_batch_err(&cifar_record(&[1], 0)), &["test_batch", "not a Python pickle", "unsupported opcode"]);
    assert_has(&test_batch_err(b"\x80\x02]q\x00."), &["test_batch", "holds a list", "`data` and `labels`"]);
    let raw = cifar_record(&[], 0);
    let labels = Some(("labels", &[1u8][..]));
    assert_has(&test_batch_err(&py2_pickle(None, labels)), &["test_batch", "no `data`", "keys: batch_label, labels"]);
    assert_has(
        &test_batch_err(&py2_pickle(Some((&[1, 3072], &raw)), None)),
        &["test_batch", "no `labels`", "keys: batch_label"],
    );
    assert_has(
        &test_batch_err(&py2_pickle(Some((&[1, 3071], &raw[..3071])), labels)),
        &["test_batch", "shape (1, 3071)", "(N, 3072)"],
    );
    assert_has(
        &test_batch_err(&py2_pickle(Some((&[1, 3, 32, 32], &raw)), labels)),
        &["test_batch", "shape (1, 3, 32, 32)", "(N, 3072)"],
    );
    assert_has(
        &test_batch_err(&py2_pickle(Some((&[2, 3072], &raw)), labels)),
        &["test_batch", "3072 bytes for 2×3072", "6144 bytes"],
    );
    // float32 pixels: four bytes an element.
    assert_has(
        &test_batch_err(&py2_pickle(Some((&[1, 3072], &raw.repeat(4))), labels)),
        &["test_batch", "12288 bytes for 1×3072", "uint8"],
    );
    // The fortran-order flag (NEWFALSE after the dtype's BUILD) set: the bytes would be columns.
    let mut fortran = py_batch("labels", &[1], &[0]);
    let at = fortran.windows(3).position(|w| w == b"tb\x89").unwrap();
    fortran[at + 2] = 0x88;
    assert_has(&test_batch_err(&fortran), &["test_batch", "Fortran (column-major) order"]);
    assert_has(&test_batch_err(&py_batch("labels", &[1], &[0, 0])), &["test_batch", "2 images", "1 labels"]);
    assert_has(&test_batch_err(&py_batch("labels", &[3, 10], &[0, 0])), &["test_batch", "label 10 at index 1", "< 10"]);
    // CIFAR-100 wants the fine labels, and < 100.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test"), py_batch("labels", &[1], &[0])).unwrap();
    assert_has(
        &load_err(DatasetKind::Cifar100, dir.path(), Split::Test),
        &["test", "no `fine_labels`", "keys: batch_label, labels"],
    );
    std::fs::write(dir.path().join("test"), py_batch("fine_labels", &[100], &[0])).unwrap();
    assert_has(
        &load_err(DatasetKind::Cifar100, dir.path(), Split::Test),
        &["test", "label 100 at index 0 of `fine_labels`", "< 100"],
    );
}

#[test]
fn broken_cifar_archives_are_clear_errors() {
    let [bin, py] = cifar10_versions();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(py.archive);
    let a = path.display().to_string();
    let err = |bytes: &[u8], split| {
        std::fs::write(&path, bytes).unwrap();
        load_err(DatasetKind::Cifar10, dir.path(), split)
    };
    let good = archive_of(&py);
    for cut in [0, 5, 20, good.len() / 3, good.len() / 2] {
        assert_has(&err(&good[..cut], Split::Train), &[&a, "truncated"]);
    }
    assert_has(&err(b"not an archive at all", Split::Test), &[&a, "not a readable .tar.gz", "cifar-10-python.tar.gz"]);
    assert_has(&err(&gzip(&[7; 3000]), Split::Test), &[&a, "not a readable .tar.gz"]);
    // Train batches are five; without the third the archive is incomplete.
    let mut partial = py.files.clone();
    partial.remove(2);
    let partial = Version { files: partial, ..py };
    assert_has(
        &err(&archive_of(&partial), Split::Train),
        &[&a, "no member cifar-10-batches-py/data_batch_3", "cifar-10-python.tar.gz"],
    );
    assert!(Dataset::load(DatasetKind::Cifar10, &path, Split::Test).is_ok());
    // A member of the binary version came first: the archive is the binary one, and lacks the rest.
    let mixed = tar_gz(&[bin.files[0].clone(), py.files[1].clone()]);
    assert_has(&err(&mixed, Split::Train), &[&a, "no member cifar-10-batches-bin/data_batch_2.bin"]);
    assert_has(
        &err(&archive_of(&cifar100_versions()[1]), Split::Train),
        &[&a, "holds neither cifar-10-batches-bin/data_batch_1.bin nor cifar-10-batches-py/data_batch_1"],
    );
    // A broken member names the archive and the member.
    let broken = tar_gz(&[("cifar-10-batches-py/test_batch".into(), b"\x80\x02]q\x00.".to_vec())]);
    assert_has(&err(&broken, Split::Test), &[&a, "(member cifar-10-batches-py/test_batch)", "holds a list"]);
    let broken = tar_gz(&[("cifar-10-batches-bin/test_batch.bin".into(), vec![0; 3000])]);
    assert_has(
        &err(&broken, Split::Test),
        &["(member cifar-10-batches-bin/test_batch.bin)", "3000 bytes", "3073-byte records"],
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
