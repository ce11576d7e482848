//! The binary version of CIFAR-10 and CIFAR-100: fixed-size records of label bytes and pixel
//! planes, flat or in the archive's subfolder, and the error for each kind of broken file.
#[path = "common/dataset_files.rs"]
mod dataset_files;

use dataset_files::{BINARY, assert_has, check_cifar_version_loads, cifar_record, load_err};
use mmard::io::datasets::{DatasetKind, Split};

#[test]
fn cifar10_and_cifar100_binary_load_flat_and_from_their_subfolders() {
    check_cifar_version_loads(BINARY);
}

#[test]
fn broken_cifar_binary_files_are_clear_errors() {
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
