//! The files the dataset tests write (`tests/datasets*.rs`): idx images and labels (raw and
//! gzipped), CIFAR binary records, CIFAR Python-version batches through a small hand-written
//! pickler, folders and .tar.gz archives of them; and the checks those tests share.
#![allow(dead_code)]
use flate2::Compression;
use flate2::write::GzEncoder;
use mmard::io::datasets::{Dataset, DatasetKind, Split};
use std::io::Write;
use std::path::Path;

pub const FASHION: DatasetKind = DatasetKind::FashionMnist;

pub fn idx_images(n: u32, h: u32, w: u32, pixels: &[u8]) -> Vec<u8> {
    [0x803, n, h, w].iter().flat_map(|v| v.to_be_bytes()).chain(pixels.iter().copied()).collect()
}

pub fn idx_labels(labels: &[u8]) -> Vec<u8> {
    [0x801, labels.len() as u32].iter().flat_map(|v| v.to_be_bytes()).chain(labels.iter().copied()).collect()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// `n` distinct-ish 28×28 images: pixel k of the split is (k·7 + n) mod 256, so 255 occurs.
pub fn mnist_pixels(n: usize) -> Vec<u8> {
    (0..n * 784).map(|k| ((k * 7 + n) % 256) as u8).collect()
}

/// A Fashion-MNIST-style split `prefix` in `dir`, `.gz` when `gz`.
pub fn write_idx(dir: &Path, prefix: &str, pixels: &[u8], labels: &[u8], gz: bool) {
    let (img, lbl) = (idx_images((pixels.len() / 784) as u32, 28, 28, pixels), idx_labels(labels));
    let (img, lbl, ext) = if gz { (gzip(&img), gzip(&lbl), ".gz") } else { (img, lbl, "") };
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{ext}")), img).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), lbl).unwrap();
}

/// One CIFAR record: label bytes, then planes R = 255, G = `g`, B = pixel index mod 256.
pub fn cifar_record(labels: &[u8], g: u8) -> Vec<u8> {
    let b = (0..1024).map(|k| (k % 256) as u8);
    labels.iter().copied().chain([255; 1024]).chain([g; 1024]).chain(b).collect()
}

pub fn check_cifar_record(ds: &Dataset, i: usize, g: u8) {
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
pub fn py2_pickle(data: Option<(&[u32], &[u8])>, labels: Option<(&str, &[u8])>) -> Vec<u8> {
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
pub fn py_batch(labels_key: &str, labels: &[u8], gs: &[u8]) -> Vec<u8> {
    let raw: Vec<u8> = gs.iter().flat_map(|&g| cifar_record(&[], g)).collect();
    py2_pickle(Some((&[gs.len() as u32, 3072], &raw)), Some((labels_key, labels)))
}

/// One version of a CIFAR dataset: the folder its archive unpacks into, and its files.
pub struct Version {
    pub sub: &'static str,
    pub archive: &'static str,
    pub files: Vec<(String, Vec<u8>)>,
}

/// CIFAR-10 in the binary and the Python version, the same images in both: train batch b holds
/// labels (b, b + 4) with G = (10·b, 0), the test batch label 9 with G = 77.
pub fn cifar10_versions() -> [Version; 2] {
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
pub fn cifar100_versions() -> [Version; 2] {
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

pub fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A .tar.gz of `members` (path, bytes), in that order.
pub fn tar_gz(members: &[(String, Vec<u8>)]) -> Vec<u8> {
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
pub fn archive_of(v: &Version) -> Vec<u8> {
    let mut members = vec![(format!("{}/readme.html", v.sub), b"<html>".to_vec())];
    members.extend(v.files.iter().rev().map(|(name, b)| (format!("{}/{name}", v.sub), b.clone())));
    tar_gz(&members)
}

/// The message of a load that must fail.
pub fn load_err(kind: DatasetKind, dir: &Path, split: Split) -> String {
    match Dataset::load(kind, dir, split) {
        Ok(_) => panic!("loading {kind:?} {split:?} from {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

pub fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "`{msg}` lacks `{p}`");
    }
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
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

/// Loads `v` (a CIFAR-10 version of `cifar10_versions`) flat in a folder and from its subfolder.
pub fn check_cifar10_loads(v: &Version) {
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

/// Loads `v` (a CIFAR-100 version of `cifar100_versions`) flat and from its subfolder: the fine
/// labels, out of 100.
pub fn check_cifar100_loads(v: &Version) {
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

/// Which version of `cifar10_versions` and `cifar100_versions`.
pub const BINARY: usize = 0;
pub const PYTHON: usize = 1;

/// Both datasets in one version load, flat and from their subfolders.
pub fn check_cifar_version_loads(version: usize) {
    check_cifar10_loads(&cifar10_versions()[version]);
    check_cifar100_loads(&cifar100_versions()[version]);
}
