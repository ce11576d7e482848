//! CIFAR in .tar.gz archives, and where `--data-dir` looks: a folder with the files, their
//! archives' subfolders, the archives themselves (or one archive given as the path), in that order
//! of preference; what a missing dataset's error says; and the error for each kind of broken
//! archive.
#[path = "common/dataset_files.rs"]
mod dataset_files;

use dataset_files::{
    Version, archive_of, assert_has, cifar_record, cifar10_versions, cifar100_versions, gzip, load_err, py_batch,
    tar_gz, write_files,
};
use mmard::io::datasets::{Dataset, DatasetKind, Split};

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

#[test]
fn missing_cifar_files_name_the_file_the_folders_the_archives_and_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
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
