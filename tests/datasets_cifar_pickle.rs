//! The Python (pickle) version of CIFAR-10 and CIFAR-100: batches written by the hand-written
//! pickler of `tests/common/dataset_files.rs` and by Python itself (tests/fixtures), and the error
//! for each kind of broken pickle.
#[path = "common/dataset_files.rs"]
mod dataset_files;

use dataset_files::{
    PYTHON, assert_has, check_cifar_version_loads, cifar_record, fixture, load_err, py_batch, py2_pickle, tar_gz,
    write_files,
};
use mmard::io::datasets::{Dataset, DatasetKind, Split};

#[test]
fn cifar10_and_cifar100_python_load_flat_and_from_their_subfolders() {
    check_cifar_version_loads(PYTHON);
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
fn truncated_cifar_pickles_are_clear_errors() {
    let good = py_batch("labels", &[1, 2], &[0, 0]);
    for cut in [0, 1, 2, 40, 300, good.len() / 2, good.len() - 10, good.len() - 1] {
        assert_has(&test_batch_err(&good[..cut]), &["test_batch", "truncated"]);
    }
    // Every cut of a real pickle is an error, never a panic or a short batch.
    let real = fixture("cifar10_py2_test_batch.pkl");
    for cut in (0..real.len()).step_by(23) {
        assert_has(&test_batch_err(&real[..cut]), &["test_batch"]);
    }
}

#[test]
fn cifar_pickles_without_data_and_labels_are_clear_errors() {
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
}

#[test]
fn cifar_pickle_pixels_of_the_wrong_shape_size_or_order_are_clear_errors() {
    let raw = cifar_record(&[], 0);
    let labels = Some(("labels", &[1u8][..]));
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
}

#[test]
fn cifar_pickle_labels_must_match_the_images_and_the_classes() {
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
