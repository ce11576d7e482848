//! The architecture and config of a weights file: the `arch` and `config` metadata that mmard writes
//! when the file has them, else read from the tensor names and shapes (a PyTorch state_dict, a
//! RobustBench checkpoint); the command line's overrides on top. What names and shapes cannot say
//! (a DM WideResNet's activation; its mean and std, which default to RobustBench's constants) comes
//! from the overrides, with a notice where a default was taken. Tests: `tests/cli.rs` (inspect,
//! predict), `tests/parity.rs` (every fixture's weights are detected as the case says).
use super::arch::{Arch, ArchName, NO_ACTIVATION, Overrides, robustbench_constants};
use crate::error::{Error, Result};
use crate::io::safetensors::Stored;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// A detected architecture, and what was assumed to get it.
pub struct Detected {
    pub arch: Arch,
    pub notices: Vec<String>,
}

/// The architecture of a file with tensors `t` and metadata `meta`, with `o` replacing what it names.
pub fn detect(t: &BTreeMap<String, Stored>, meta: &HashMap<String, String>, o: &Overrides) -> Result<Detected> {
    let (name, mut cfg) = match saved(meta) {
        Some((name, cfg)) if o.arch.is_none_or(|a| a == name) => (name, cfg),
        _ => {
            let name = match o.arch {
                Some(n) => n,
                None => guess_name(t)?,
            };
            match Arch::read(name, &Shapes { t, name: Some(name) })? {
                Value::Object(cfg) => (name, cfg),
                v => return Err(Error::Msg(format!("{name}: the config read from the tensors is {v}, not an object"))),
            }
        }
    };
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cfg.insert(k.into(), v);
        }
    };
    set("in_channels", o.in_channels.map(Into::into));
    set("classes", o.classes.map(Into::into));
    set("width", o.width.map(Into::into));
    set("depth", o.depth.map(Into::into));
    set("widen", o.widen.map(Into::into));
    set("size", o.size.map(Into::into));
    set("activation", o.activation.map(|a| a.name().into()));
    set("mean", o.mean.clone().map(Into::into));
    set("std", o.std.clone().map(Into::into));
    let mut notices = Vec::new();
    if name == ArchName::DmWideResNet {
        if !cfg.contains_key("activation") {
            return Err(Error::Msg(NO_ACTIVATION.into()));
        }
        let classes = cfg.get("classes").and_then(Value::as_u64).unwrap_or(10) as usize;
        if let (None, None, Some((mean, std))) = (cfg.get("mean"), cfg.get("std"), robustbench_constants(classes)) {
            let data = if classes == 10 { "CIFAR-10" } else { "CIFAR-100" };
            notices.push(format!(
                "dm_wide_resnet: the input is standardised with RobustBench's {data} mean {mean:?} and std {std:?} \
                 ({classes} classes); --mean and --std set others"
            ));
        }
    }
    Ok(Detected { arch: Arch::from_config(name, &Value::Object(cfg))?, notices })
}

/// The `arch` and `config` metadata mmard writes, when present and readable.
fn saved(meta: &HashMap<String, String>) -> Option<(ArchName, Map<String, Value>)> {
    let name = meta.get("arch")?.parse().ok()?;
    match serde_json::from_str(meta.get("config")?).ok()? {
        Value::Object(cfg) => Some((name, cfg)),
        _ => None,
    }
}

/// The tensors of a state_dict as an architecture reads its config from them; errors name the
/// tensor and the architecture.
pub struct Shapes<'a> {
    t: &'a BTreeMap<String, Stored>,
    name: Option<ArchName>,
}

impl Shapes<'_> {
    pub fn has(&self, k: &str) -> bool {
        self.t.contains_key(k)
    }
    pub fn dims(&self, k: &str) -> Result<&[usize]> {
        let hint = match self.name {
            Some(name) => format!(" (needed to read the {name} config)"),
            None => String::new(),
        };
        self.t.get(k).map(|s| s.shape.as_slice()).ok_or_else(|| Error::Missing { name: k.into(), hint })
    }
    pub fn dim(&self, k: &str, i: usize) -> Result<usize> {
        let d = self.dims(k)?;
        d.get(i).copied().ok_or_else(|| Error::Msg(format!("tensor `{k}`: shape {d:?} has no dimension {i}")))
    }
    /// How many of `name(0)`, `name(1)`, … are present, from 0 on.
    pub fn count(&self, name: impl Fn(usize) -> String) -> usize {
        (0..).take_while(|&i| self.has(&name(i))).count()
    }
}

/// Which architecture a state_dict's names belong to.
fn guess_name(t: &BTreeMap<String, Stored>) -> Result<ArchName> {
    Arch::recognise(&Shapes { t, name: None }).ok_or_else(|| {
        Error::Msg(format!(
            "cannot tell the architecture from the tensor names (first: {:?}); pass --arch {}",
            t.keys().take(3).collect::<Vec<_>>(),
            ArchName::list("|")
        ))
    })
}
