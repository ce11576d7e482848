//! safetensors files: read with dtype conversion (f32/f16/bf16/f64 to f32, i64 kept), written
//! atomically (temporary file, then rename), with errors that name the file and the tensor.
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub enum Values {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// One tensor as read: the dtype it was stored in, its shape, its values.
#[derive(Clone, Debug)]
pub struct Stored {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub values: Values,
}

pub struct TensorFile {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, Stored>,
    pub metadata: HashMap<String, String>,
}

fn convert(name: &str, dtype: Dtype, b: &[u8]) -> Result<Values> {
    fn le<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N).map(|c| f(c.try_into().unwrap())).collect()
    }
    Ok(match dtype {
        Dtype::F32 => Values::F32(le(b, f32::from_le_bytes)),
        Dtype::F16 => Values::F32(le(b, |c| half::f16::from_le_bytes(c).to_f32())),
        Dtype::BF16 => Values::F32(le(b, |c| half::bf16::from_le_bytes(c).to_f32())),
        Dtype::F64 => Values::F32(le(b, |c| f64::from_le_bytes(c) as f32)),
        Dtype::I64 => Values::I64(le(b, i64::from_le_bytes)),
        other => {
            return Err(Error::Dtype { name: name.into(), dtype: format!("{other:?}") });
        }
    })
}

/// Says what a structurally broken file looks like, sizes included where the header is readable.
fn describe(bytes: &[u8], e: SafeTensorError) -> String {
    let header_len = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    match (e, header_len) {
        (SafeTensorError::InvalidHeaderLength, Some(n)) => {
            format!("header declares {n} bytes but the file has {} (truncated?)", bytes.len())
        }
        (SafeTensorError::MetadataIncompleteBuffer, Some(n)) => {
            let data_end = serde_json::from_slice::<serde_json::Value>(&bytes[8..8 + n])
                .ok()
                .and_then(|h| h.as_object()?.values().filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64()).max())
                .unwrap_or(0) as usize;
            format!("expected {} bytes from its header, found {} (truncated or padded)", 8 + n + data_end, bytes.len())
        }
        (e, _) => e.to_string(),
    }
}

impl TensorFile {
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses a file's bytes (e.g. weights embedded in the binary); `path` names it in errors.
    pub fn from_bytes(path: impl AsRef<Path>, bytes: &[u8]) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let fmt = |msg: String| Error::Format { path: path.clone(), msg };
        let st = SafeTensors::deserialize(bytes).map_err(|e| fmt(describe(bytes, e)))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| fmt(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let values = convert(&name, view.dtype(), view.data()).map_err(|e| fmt(e.to_string()))?;
            tensors.insert(name, Stored { dtype: view.dtype(), shape: view.shape().to_vec(), values });
        }
        Ok(TensorFile { path, tensors, metadata: header.metadata().clone().unwrap_or_default() })
    }

    fn get(&self, name: &str) -> Result<&Stored> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::Missing { name: name.into(), hint: format!(" in {}", self.path.display()) })
    }

    /// A floating-point tensor as f32.
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let s = self.get(name)?;
        match &s.values {
            Values::F32(v) => Ok(Tensor::from_vec(&s.shape, v.clone())),
            Values::I64(_) => Err(Error::Format {
                path: self.path.clone(),
                msg: format!("tensor `{name}` is I64, expected a floating-point tensor"),
            }),
        }
    }

    /// An integer tensor (labels).
    pub fn i64s(&self, name: &str) -> Result<Vec<i64>> {
        match &self.get(name)?.values {
            Values::I64(v) => Ok(v.clone()),
            Values::F32(_) => Err(Error::Format {
                path: self.path.clone(),
                msg: format!("tensor `{name}` is floating-point, expected I64"),
            }),
        }
    }

    /// A metadata entry, parsed as JSON where it is JSON (numbers, objects), else as a string.
    pub fn meta(&self, key: &str) -> Result<serde_json::Value> {
        let raw = self
            .metadata
            .get(key)
            .ok_or_else(|| Error::Format { path: self.path.clone(), msg: format!("metadata `{key}` is missing") })?;
        Ok(serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.clone())))
    }
}

struct Out<'a> {
    dtype: Dtype,
    shape: &'a [usize],
    bytes: Vec<u8>,
}

impl View for &Out<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes `tensors` (name, shape, values) to `path` atomically: a reader sees the old file or the
/// complete new one, never a half-written one (a full disk leaves the old file in place).
pub fn save(
    path: impl AsRef<Path>,
    tensors: &[(String, Vec<usize>, Values)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let path = path.as_ref();
    let outs: Vec<(String, Out)> = tensors
        .iter()
        .map(|(name, shape, v)| {
            let (dtype, bytes) = match v {
                Values::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                Values::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            };
            (name.clone(), Out { dtype, shape, bytes })
        })
        .collect();
    let bytes = safetensors::serialize(outs.iter().map(|(n, o)| (n.as_str(), o)), metadata)
        .map_err(|e| Error::Format { path: path.into(), msg: e.to_string() })?;
    write_atomic(path, &sorted_header(bytes))
}

/// The file with its JSON header's keys in sorted order. The crate writes the metadata map in its
/// hash order, which changes from process to process, so two identical runs wrote different bytes;
/// re-serialised through serde_json's (ordered) maps, the bytes depend on the content only.
fn sorted_header(bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("an 8-byte length")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("the crate's own header is JSON");
    let mut h = serde_json::to_vec(&header).expect("a JSON value serialises");
    // the format pads the header with spaces to a multiple of 8 bytes
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + h.len() + bytes.len() - 8 - n);
    out.extend((h.len() as u64).to_le_bytes());
    out.extend(h);
    out.extend(&bytes[8 + n..]);
    out
}

/// Temporary file in the same folder, synced, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| Error::Msg(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_tensors_convert_to_f32() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.safetensors");
        let vals = [1.5f32, -0.25, 3.0];
        let f16: Vec<u8> = vals.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
        let bf16: Vec<u8> = vals.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect();
        let views = [
            ("a", safetensors::tensor::TensorView::new(Dtype::F16, vec![3], &f16).unwrap()),
            ("b", safetensors::tensor::TensorView::new(Dtype::BF16, vec![3], &bf16).unwrap()),
        ];
        safetensors::serialize_to_file(views, None, &path).unwrap();
        let f = TensorFile::load(&path).unwrap();
        assert_eq!(f.tensor("a").unwrap().data(), vals);
        assert_eq!(f.tensor("b").unwrap().data(), vals);
        assert_eq!(f.tensors["a"].dtype, Dtype::F16);
    }

    /// The same tensors and metadata give the same bytes, whatever order the metadata map holds.
    #[test]
    fn saves_are_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let meta: HashMap<String, String> = (0..12).map(|i| (format!("key{i}"), i.to_string())).collect();
        // built anew, the map has its own hash state, so (almost surely) another iteration order
        let reordered: HashMap<String, String> = (0..12).rev().map(|i| (format!("key{i}"), i.to_string())).collect();
        let t = [("w".to_string(), vec![2], Values::F32(vec![1.0, 2.0]))];
        let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
        save(&a, &t, Some(meta.clone())).unwrap();
        save(&b, &t, Some(reordered)).unwrap();
        let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(ba, bb);
        let f = TensorFile::load(&a).unwrap();
        assert_eq!(f.metadata, meta);
        assert_eq!(f.tensor("w").unwrap().data(), [1.0, 2.0]);
        let n = u64::from_le_bytes(ba[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&ba[8..8 + n]).unwrap();
        assert!(header.find("key0").unwrap() < header.find("key1").unwrap(), "metadata keys in sorted order");
    }

    #[test]
    fn save_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        save(
            &path,
            &[("x".into(), vec![2], Values::F32(vec![1.0, 2.0])), ("n".into(), vec![], Values::I64(vec![7]))],
            None,
        )
        .unwrap();
        let f = TensorFile::load(&path).unwrap();
        assert_eq!(f.tensor("x").unwrap().data(), [1.0, 2.0]);
        assert_eq!(f.i64s("n").unwrap(), [7]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
        let e = f.tensor("n").unwrap_err().to_string();
        assert!(e.contains("`n`") && e.contains("I64"), "{e}");
        let e = f.tensor("y").unwrap_err().to_string();
        assert!(e.contains("`y`") && e.contains("w.safetensors"), "{e}");
    }
}
