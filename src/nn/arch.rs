//! The supported architectures and their configurations: from a name and JSON config (fixtures,
//! CLI), or detected from a state_dict's names and shapes.
use crate::error::{Error, Result};
use crate::io::safetensors::Stored;
use serde_json::Value;
use std::collections::BTreeMap;

crate::named_enum! { "architecture",
/// The architectures by name: what `--arch`, `--student`, `--teacher`, configs and messages accept.
pub enum ArchName {
    /// Three conv-BN-ReLU-maxpool stages and a linear layer.
    SmallCnn = "small_cnn",
    /// CIFAR ResNet-18 (RSLAD / ARD names).
    ResNet18 = "resnet18",
    /// PreActResNet-18 (RobustBench names).
    PreActResNet18 = "preact_resnet18",
    /// WideResNet-depth-widen (RobustBench / TRADES names).
    WideResNet = "wide_resnet",
    /// CIFAR MobileNetV2 (RSLAD / ARD names).
    MobileNetV2 = "mobilenet_v2",
}
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arch {
    /// conv3x3-BN-ReLU-maxpool2 three times, then a linear layer on the (size/8)² map.
    SmallCnn {
        in_channels: usize,
        size: usize,
        widths: [usize; 3],
        classes: usize,
    },
    /// CIFAR ResNet-18 (3x3 stem, no max-pool), stage widths width·{1,2,4,8}.
    ResNet18 {
        in_channels: usize,
        width: usize,
        classes: usize,
    },
    PreActResNet18 {
        in_channels: usize,
        width: usize,
        classes: usize,
    },
    /// WideResNet-depth-widen (depth = 6n + 4), RobustBench / TRADES names.
    WideResNet {
        in_channels: usize,
        depth: usize,
        widen: usize,
        classes: usize,
    },
    /// CIFAR MobileNetV2 (stride-1 stem and first stages).
    MobileNetV2 {
        in_channels: usize,
        classes: usize,
    },
}

/// Config values given on the command line; each replaces the detected one.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub arch: Option<ArchName>,
    pub in_channels: Option<usize>,
    pub classes: Option<usize>,
    pub width: Option<usize>,
    pub depth: Option<usize>,
    pub widen: Option<usize>,
    pub size: Option<usize>,
}

impl Arch {
    pub fn kind(&self) -> ArchName {
        match self {
            Arch::SmallCnn { .. } => ArchName::SmallCnn,
            Arch::ResNet18 { .. } => ArchName::ResNet18,
            Arch::PreActResNet18 { .. } => ArchName::PreActResNet18,
            Arch::WideResNet { .. } => ArchName::WideResNet,
            Arch::MobileNetV2 { .. } => ArchName::MobileNetV2,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    pub fn classes(&self) -> usize {
        match *self {
            Arch::SmallCnn { classes, .. }
            | Arch::ResNet18 { classes, .. }
            | Arch::PreActResNet18 { classes, .. }
            | Arch::WideResNet { classes, .. }
            | Arch::MobileNetV2 { classes, .. } => classes,
        }
    }

    pub fn in_channels(&self) -> usize {
        match *self {
            Arch::SmallCnn { in_channels, .. }
            | Arch::ResNet18 { in_channels, .. }
            | Arch::PreActResNet18 { in_channels, .. }
            | Arch::WideResNet { in_channels, .. }
            | Arch::MobileNetV2 { in_channels, .. } => in_channels,
        }
    }

    /// The config as JSON, in the fixtures' vocabulary.
    pub fn config(&self) -> Value {
        use serde_json::json;
        match *self {
            Arch::SmallCnn { in_channels, size, widths, classes } => {
                json!({"in_channels": in_channels, "size": size, "widths": widths, "classes": classes})
            }
            Arch::ResNet18 { in_channels, width, classes } | Arch::PreActResNet18 { in_channels, width, classes } => {
                json!({"in_channels": in_channels, "width": width, "classes": classes})
            }
            Arch::WideResNet { in_channels, depth, widen, classes } => {
                json!({"in_channels": in_channels, "depth": depth, "widen": widen, "classes": classes})
            }
            Arch::MobileNetV2 { in_channels, classes } => json!({"in_channels": in_channels, "classes": classes}),
        }
    }

    /// From a name and a JSON config; absent fields take the usual defaults (CIFAR-10 shapes,
    /// ResNet width 64, WRN-34-10, SmallCNN widths 32/64/128 on 28x28x1).
    pub fn from_config(name: ArchName, cfg: &Value) -> Result<Arch> {
        let get = |k: &str, default: usize| -> Result<usize> {
            match cfg.get(k) {
                None => Ok(default),
                Some(v) => v
                    .as_u64()
                    .map(|v| v as usize)
                    .ok_or_else(|| Error::Msg(format!("config `{k}`: expected a whole number, found {v}"))),
            }
        };
        let widths = match cfg.get("widths") {
            None => [32, 64, 128],
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| Error::Msg(format!("config `widths`: expected three whole numbers, found {v}")))?,
        };
        let classes = get("classes", 10)?;
        let arch = match name {
            ArchName::SmallCnn => {
                Arch::SmallCnn { in_channels: get("in_channels", 1)?, size: get("size", 28)?, widths, classes }
            }
            ArchName::ResNet18 => {
                Arch::ResNet18 { in_channels: get("in_channels", 3)?, width: get("width", 64)?, classes }
            }
            ArchName::PreActResNet18 => {
                Arch::PreActResNet18 { in_channels: get("in_channels", 3)?, width: get("width", 64)?, classes }
            }
            ArchName::WideResNet => Arch::WideResNet {
                in_channels: get("in_channels", 3)?,
                depth: get("depth", 34)?,
                widen: get("widen", 10)?,
                classes,
            },
            ArchName::MobileNetV2 => Arch::MobileNetV2 { in_channels: get("in_channels", 3)?, classes },
        };
        arch.validate()?;
        Ok(arch)
    }

    fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Msg(format!("{}: {msg}", self.name())));
        match *self {
            Arch::WideResNet { depth, widen, .. } if depth < 10 || (depth - 4) % 6 != 0 || widen == 0 => {
                bad(format!("depth {depth} must be 6n+4 (n ≥ 1) and widen {widen} ≥ 1"))
            }
            Arch::SmallCnn { size, widths, .. } if size < 8 || widths.contains(&0) => {
                bad(format!("size {size} must be ≥ 8 and widths {widths:?} positive"))
            }
            Arch::ResNet18 { width: 0, .. } | Arch::PreActResNet18 { width: 0, .. } => {
                bad("width must be positive".into())
            }
            _ if self.classes() == 0 || self.in_channels() == 0 => {
                bad("classes and in_channels must be positive".into())
            }
            _ => Ok(()),
        }
    }

    /// The architecture and config a state_dict was saved from, with `o` replacing what it names.
    pub fn detect(t: &BTreeMap<String, Stored>, o: &Overrides) -> Result<Arch> {
        let name = match o.arch {
            Some(n) => n,
            None => guess_name(t)?,
        };
        let dims = |k: &str| -> Result<&[usize]> {
            t.get(k)
                .map(|s| s.shape.as_slice())
                .ok_or_else(|| Error::Missing { name: k.into(), hint: format!(" (needed to read the {name} config)") })
        };
        let dim = |k: &str, i: usize| -> Result<usize> {
            let d = dims(k)?;
            d.get(i).copied().ok_or_else(|| Error::Msg(format!("tensor `{k}`: shape {d:?} has no dimension {i}")))
        };
        let mut cfg = serde_json::Map::new();
        let mut set = |k: &str, v: Value| {
            cfg.insert(k.into(), v);
        };
        set("in_channels", dim("conv1.weight", 1)?.into());
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
                let n = (0..).take_while(|i| t.contains_key(&format!("block1.layer.{i}.conv1.weight"))).count();
                set("depth", (6 * n + 4).into());
                set("widen", (dim("block1.layer.0.conv1.weight", 0)? / 16).into());
                set("classes", dim("fc.weight", 0)?.into());
            }
            ArchName::MobileNetV2 => set("classes", dim("linear.weight", 0)?.into()),
        }
        let fields = [
            ("in_channels", o.in_channels),
            ("classes", o.classes),
            ("width", o.width),
            ("depth", o.depth),
            ("widen", o.widen),
            ("size", o.size),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                set(k, v.into());
            }
        }
        Arch::from_config(name, &Value::Object(cfg))
    }
}

/// Which architecture a state_dict's names belong to.
fn guess_name(t: &BTreeMap<String, Stored>) -> Result<ArchName> {
    let has = |k: &str| t.contains_key(k);
    Ok(if has("block1.layer.0.conv1.weight") {
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

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name(), self.config())
    }
}
