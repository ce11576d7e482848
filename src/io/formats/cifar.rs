//! CIFAR-10 / CIFAR-100 in the forms they are distributed in: the binary version and the Python
//! version (pickles, what torchvision downloads), each unpacked or still in its `.tar.gz`.
//!
//! `--data-dir PATH` is searched in this order; the first match wins, and a folder is recognised
//! by the split's first file:
//! 1. PATH is a file: a `.tar.gz` of either version, whatever its name;
//! 2. the binary files in PATH, then in PATH/`cifar-10-batches-bin` (`cifar-100-binary`);
//! 3. the Python files in PATH, then in PATH/`cifar-10-batches-py` (`cifar-100-python`);
//! 4. PATH/`cifar-10-binary.tar.gz`, then PATH/`cifar-10-python.tar.gz` (`cifar-100-…`).
//!
//! An archive is read in one pass, decoding the split's members as they stream by; its first
//! member of either version decides which version it is.
use super::cifar_binary::{Batch, binary_batch};
use super::cifar_pickle::pickle_batch;
use super::split::{Split, Wanted, to_unit};
use crate::err;
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// Which CIFAR: the two differ in their files' names and in how records hold labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cifar {
    Ten,
    Hundred,
}

/// How one version stores a split.
struct Version {
    /// The folder its archive unpacks into.
    sub: &'static str,
    archive: &'static str,
    files: Vec<String>,
    format: Format,
}

#[derive(Clone, Copy)]
enum Format {
    /// Records of `label_bytes` label bytes (the class is the last one) and `PIXELS` pixels.
    Binary { label_bytes: usize },
    /// Pickled dicts with `data` and the labels under `labels_key`.
    Pickle { labels_key: &'static str },
}

/// The binary and the Python version of `set`'s `split`, in search order.
fn versions(set: Cifar, split: Split) -> [Version; 2] {
    let train = split == Split::Train;
    if set == Cifar::Hundred {
        let file = if train { "train" } else { "test" };
        return [
            Version {
                sub: "cifar-100-binary",
                archive: "cifar-100-binary.tar.gz",
                files: vec![format!("{file}.bin")],
                // Records start with (coarse, fine); the fine label is the class.
                format: Format::Binary { label_bytes: 2 },
            },
            Version {
                sub: "cifar-100-python",
                archive: "cifar-100-python.tar.gz",
                files: vec![file.into()],
                format: Format::Pickle { labels_key: "fine_labels" },
            },
        ];
    }
    let files: Vec<String> = match train {
        true => (1..=5).map(|i| format!("data_batch_{i}")).collect(),
        false => vec!["test_batch".into()],
    };
    [
        Version {
            sub: "cifar-10-batches-bin",
            archive: "cifar-10-binary.tar.gz",
            files: files.iter().map(|f| format!("{f}.bin")).collect(),
            format: Format::Binary { label_bytes: 1 },
        },
        Version {
            sub: "cifar-10-batches-py",
            archive: "cifar-10-python.tar.gz",
            files,
            format: Format::Pickle { labels_key: "labels" },
        },
    ]
}

/// Reads the split `want` names of `set` from `path` (see the module comment for where it looks),
/// as values in [0, 1] and classes.
pub fn load(set: Cifar, path: &Path, want: &Wanted) -> Result<(Vec<f32>, Vec<usize>)> {
    let versions = versions(set, want.split);
    let folder = || {
        versions
            .iter()
            .flat_map(|v| [path.to_path_buf(), path.join(v.sub)].map(|dir| (v, dir)))
            .find(|(v, dir)| dir.join(&v.files[0]).is_file())
    };
    let batches = if path.is_file() {
        from_archive(want, &versions, path)?
    } else if let Some((v, dir)) = folder() {
        from_folder(want, v, &dir)?
    } else if let Some(archive) = versions.iter().map(|v| path.join(v.archive)).find(|a| a.is_file()) {
        from_archive(want, &versions, &archive)?
    } else {
        let [bin, py] = &versions;
        let d = path.display();
        return Err(want.missing(
            &format!("{} or {}", bin.files[0], py.files[0]),
            &format!(
                "{d}, {} or {}, nor {} or {} in {d}",
                path.join(bin.sub).display(),
                path.join(py.sub).display(),
                bin.archive,
                py.archive
            ),
        ));
    };
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for b in batches {
        images.extend(b.pixels.iter().map(to_unit));
        labels.extend(b.labels);
    }
    Ok((images, labels))
}

fn from_folder(want: &Wanted, v: &Version, dir: &Path) -> Result<Vec<Batch>> {
    v.files
        .iter()
        .map(|name| {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(want.missing(name, &dir.display().to_string()));
            }
            let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
            decode(v.format, want.classes, &path.display().to_string(), BufReader::new(file))
        })
        .collect()
}

/// The split's files out of a `.tar.gz` of either version, in `files` order whatever the order of
/// the members; reading stops once all are found.
fn from_archive(want: &Wanted, versions: &[Version; 2], archive: &Path) -> Result<Vec<Batch>> {
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    let corrupt = |e: io::Error| {
        err!(
            "{}: not a readable .tar.gz archive, or truncated ({e}); expected {} or {}",
            archive.display(),
            versions[0].archive,
            versions[1].archive
        )
    };
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let mut chosen = None;
    let mut slots: Vec<Option<Batch>> = versions[0].files.iter().map(|_| None).collect();
    for entry in tar.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let member = entry.path().map_err(corrupt)?.to_string_lossy().into_owned();
        let found = versions
            .iter()
            .enumerate()
            .filter(|&(i, _)| chosen.is_none_or(|c| c == i))
            .find_map(|(i, v)| member_index(v, &member).map(|f| (i, f)));
        let Some((vi, fi)) = found else { continue };
        chosen = Some(vi);
        let origin = format!("{} (member {member})", archive.display());
        slots[fi] = Some(decode(versions[vi].format, want.classes, &origin, entry)?);
        if slots.iter().all(Option::is_some) {
            break;
        }
    }
    let Some(v) = chosen.map(|i| &versions[i]) else {
        let [bin, py] = versions;
        return Err(err!(
            "{}: holds neither {}/{} nor {}/{}; expected {} or {}",
            archive.display(),
            bin.sub,
            bin.files[0],
            py.sub,
            py.files[0],
            bin.archive,
            py.archive
        ));
    };
    slots
        .into_iter()
        .zip(&v.files)
        .map(|(slot, name)| {
            slot.ok_or_else(|| {
                err!(
                    "{}: no member {}/{name}; expected the whole {} (it holds every batch)",
                    archive.display(),
                    v.sub,
                    v.archive
                )
            })
        })
        .collect()
}

/// Which of `v`'s files the archive member `member` is: `sub/name` as the archives have it, or a
/// bare `name` as in a re-packed archive.
fn member_index(v: &Version, member: &str) -> Option<usize> {
    let member = member.trim_start_matches("./");
    let name = member.strip_prefix(v.sub).and_then(|m| m.strip_prefix('/')).unwrap_or(member);
    v.files.iter().position(|f| f == name)
}

/// One file's images and labels; `origin` names it in errors.
fn decode(format: Format, classes: usize, origin: &str, mut reader: impl Read) -> Result<Batch> {
    match format {
        Format::Pickle { labels_key } => pickle_batch(origin, reader, labels_key, classes),
        Format::Binary { label_bytes } => {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).map_err(|e| err!("{origin}: read failed, corrupt or truncated ({e})"))?;
            binary_batch(origin, &bytes, label_bytes, classes)
        }
    }
}
