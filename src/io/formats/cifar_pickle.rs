//! One batch of CIFAR's Python version: a pickled dict (protocol 2, written by Python 2, so its
//! keys are `str`, which serde-pickle hands over as bytes; a Python 3 re-pickle has `str` keys)
//! with `data`, a numpy uint8 array of N×3072 pixels, and a list of N labels.
use super::cifar_binary::{Batch, PIXELS};
use crate::err;
use crate::error::Result;
use serde_pickle::{DeOptions, Error, ErrorCode, HashableValue, Value};
use std::collections::BTreeMap;
use std::io::Read;

/// Decodes the batch from `reader`, labels from `labels_key`; `origin` names the file in errors.
pub fn pickle_batch(origin: &str, reader: impl Read, labels_key: &str, classes: usize) -> Result<Batch> {
    // A numpy array pickles as `_reconstruct(ndarray, ...)` then BUILD with its state
    // (version, shape, dtype, fortran order, raw bytes): keep_restore_state puts that state
    // tuple where the array was. numpy's class objects would otherwise fail the decode.
    let options = DeOptions::new().keep_restore_state().replace_unresolved_globals();
    let value = serde_pickle::value_from_reader(reader, options).map_err(|e| match e {
        Error::Io(e) => err!("{origin}: read failed, corrupt or truncated ({e})"),
        Error::Eval(ErrorCode::EOFWhileParsing, at) => {
            err!("{origin}: truncated: the pickle ends inside the item at byte {at}; expected a whole CIFAR batch")
        }
        e => err!("{origin}: not a Python pickle of a CIFAR batch ({e})"),
    })?;
    let expected = format!("expected a CIFAR batch: a dict with `data` and `{labels_key}`");
    let Value::Dict(mut dict) = value else {
        return Err(err!("{origin}: the pickle holds {}, {expected}", describe(&value)));
    };
    let mut take = |key: &str| {
        dict.remove(&HashableValue::Bytes(key.into()))
            .or_else(|| dict.remove(&HashableValue::String(key.into())))
            .ok_or_else(|| err!("{origin}: no `{key}` in the pickled dict (keys: {}); {expected}", keys(&dict)))
    };
    let data = take("data")?;
    let labels = take(labels_key)?;
    let pixels = numpy_rows(origin, data)?;
    let n = pixels.len() / PIXELS;
    let (Value::List(labels) | Value::Tuple(labels)) = labels else {
        return Err(err!("{origin}: `{labels_key}` is {}, expected a list of ints", describe(&labels)));
    };
    if labels.len() != n {
        return Err(err!(
            "{origin}: `data` holds {n} images but `{labels_key}` {} labels; expected one label per image",
            labels.len()
        ));
    }
    let labels = labels
        .iter()
        .enumerate()
        .map(|(i, y)| match *y {
            Value::I64(y) if (0..classes as i64).contains(&y) => Ok(y as usize),
            Value::I64(y) => Err(err!("{origin}: label {y} at index {i} of `{labels_key}`, expected < {classes}")),
            ref other => Err(err!("{origin}: `{labels_key}`[{i}] is {}, expected an int < {classes}", describe(other))),
        })
        .collect::<Result<_>>()?;
    Ok(Batch { pixels, labels })
}

/// The raw bytes of a C-order uint8 numpy array of shape (N, 3072), from its pickled state.
fn numpy_rows(origin: &str, data: Value) -> Result<Vec<u8>> {
    let expected = "expected a numpy uint8 array of shape (N, 3072): rows of 1024 R, 1024 G, 1024 B";
    let Value::Tuple(state) = data else {
        return Err(err!("{origin}: `data` is {}, {expected}", describe(&data)));
    };
    let Ok([_, Value::Tuple(shape), _, fortran, Value::Bytes(raw)]) = <[Value; 5]>::try_from(state) else {
        return Err(err!("{origin}: `data` is not a pickled numpy array; {expected}"));
    };
    let dims: Option<Vec<i64>> = shape
        .iter()
        .map(|d| match d {
            Value::I64(d) => Some(*d),
            _ => None,
        })
        .collect();
    let n = match dims.as_deref() {
        Some(&[n, 3072]) if n >= 0 => n as u64,
        _ => return Err(err!("{origin}: `data` has shape {}, {expected}", tuple(&shape))),
    };
    if matches!(fortran, Value::Bool(true) | Value::I64(1)) {
        return Err(err!("{origin}: `data` is in Fortran (column-major) order, {expected} in C order"));
    }
    // The length proves 1-byte elements: float or int32 pixels would be 4 times as long.
    if raw.len() as u64 != n * PIXELS as u64 {
        return Err(err!(
            "{origin}: `data` holds {} bytes for {n}×3072 elements, {expected} ({} bytes)",
            raw.len(),
            n * PIXELS as u64
        ));
    }
    Ok(raw)
}

/// A value's type, as Python would name it, for errors (never the value: it may be megabytes).
fn describe(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::I64(_) | Value::Int(_) => "an int",
        Value::F64(_) => "a float",
        Value::Bytes(_) | Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Set(_) | Value::FrozenSet(_) => "a set",
        Value::Dict(_) => "a dict",
    }
}

/// A shape as numpy prints it, e.g. `(2, 3071)`.
fn tuple(items: &[Value]) -> String {
    let items: Vec<String> = items.iter().map(|v| v.to_string()).collect();
    format!("({})", items.join(", "))
}

/// The dict's keys, as text where they are strings.
fn keys(dict: &BTreeMap<HashableValue, Value>) -> String {
    let keys: Vec<String> = dict
        .keys()
        .map(|k| match k {
            HashableValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            HashableValue::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    keys.join(", ")
}
