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
            (name, from_names(name, t)?)
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

/// The config that the tensor names and shapes of architecture `name` imply.
fn from_names(name: ArchName, t: &BTreeMap<String, Stored>) -> Result<Map<String, Value>> {
    let dims = |k: &str| -> Result<&[usize]> {
        t.get(k)
            .map(|s| s.shape.as_slice())
            .ok_or_else(|| Error::Missing { name: k.into(), hint: format!(" (needed to read the {name} config)") })
    };
    let dim = |k: &str, i: usize| -> Result<usize> {
        let d = dims(k)?;
        d.get(i).copied().ok_or_else(|| Error::Msg(format!("tensor `{k}`: shape {d:?} has no dimension {i}")))
    };
    let blocks = |f: &dyn Fn(usize) -> String| (0..).take_while(|&i| t.contains_key(&f(i))).count();
    let mut cfg = Map::new();
    let mut set = |k: &str, v: Value| {
        cfg.insert(k.into(), v);
    };
    let stem = if name == ArchName::DmWideResNet { "init_conv.weight" } else { "conv1.weight" };
    set("in_channels", dim(stem, 1)?.into());
    match name {
        ArchName::SmallCnn => {
            let widths = [dim("conv1.weight", 0)?, dim("conv2.weight", 0)?, dim("conv3.weight", 0)?];
            let side = ((dim("fc.weight", 1)? / widths[2]) as f64).sqrt().round() as usize;
            if widths[2] * side * side != dim("fc.weight", 1)? {
                return Err(Error::Msg(format!(
                    "small_cnn: fc.weight {:?} does not fit a square map of {} channels",
                    dims("fc.weight")?,
                    widths[2]
                )));
            }
            // Sides 8s..8s+7 give the same network; prefer the datasets' 28 and 32.
            let size = [28, 32].into_iter().find(|&s| s / 8 == side).unwrap_or(8 * side);
            set("size", size.into());
            set("widths", widths.to_vec().into());
            set("classes", dim("fc.weight", 0)?.into());
        }
        ArchName::ResNet18 | ArchName::PreActResNet18 => {
            set("width", dim("conv1.weight", 0)?.into());
            set("classes", dim("linear.weight", 0)?.into());
        }
        ArchName::WideResNet => {
            let n = blocks(&|i| format!("block1.layer.{i}.conv1.weight"));
            set("depth", (6 * n + 4).into());
            set("widen", (dim("block1.layer.0.conv1.weight", 0)? / 16).into());
            set("classes", dim("fc.weight", 0)?.into());
        }
        ArchName::MobileNetV2 => set("classes", dim("linear.weight", 0)?.into()),
        ArchName::DmWideResNet => {
            let n = blocks(&|i| format!("layer.0.block.{i}.conv_0.weight"));
            set("depth", (6 * n + 4).into());
            set("width", (dim("layer.0.block.0.conv_0.weight", 0)? / 16).into());
            set("classes", dim("logits.weight", 0)?.into());
        }
    }
    Ok(cfg)
}

/// Which architecture a state_dict's names belong to.
fn guess_name(t: &BTreeMap<String, Stored>) -> Result<ArchName> {
    let has = |k: &str| t.contains_key(k);
    Ok(if has("init_conv.weight") && has("layer.0.block.0.conv_0.weight") {
        ArchName::DmWideResNet
    } else if has("block1.layer.0.conv1.weight") {
        ArchName::WideResNet
    } else if has("layers.0.conv1.weight") {
        ArchName::MobileNetV2
    } else if has("layer1.0.conv1.weight") && has("bn.weight") {
        ArchName::PreActResNet18
    } else if has("layer1.0.conv1.weight") {
        ArchName::ResNet18
    } else if has("conv3.weight") && has("fc.weight") {
        ArchName::SmallCnn
    } else {
        return Err(Error::Msg(format!(
            "cannot tell the architecture from the tensor names (first: {:?}); pass --arch {}",
            t.keys().take(3).collect::<Vec<_>>(),
            ArchName::list("|")
        )));
    })
}
