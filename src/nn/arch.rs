//! The supported architectures and their configurations, from a name and a JSON config (fixtures,
//! the CLI, the metadata mmard saves); `detect.rs` reads them from a weights file.
use crate::error::{Error, Result};
use serde_json::Value;

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
    /// RobustBench's DeepMind WideResNet (DMWideResNet: init_conv, layer.K.block.I, logits).
    DmWideResNet = "dm_wide_resnet",
}
}

crate::named_enum! { "activation",
/// The activation of a DeepMind WideResNet (a constructor argument: not in its state_dict).
pub enum Activation {
    /// max(x, 0).
    Relu = "relu",
    /// x·σ(x) (SiLU).
    Swish = "swish",
}
}

/// RobustBench's input normalisation constants, per channel.
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub const CIFAR10_STD: [f32; 3] = [0.2471, 0.2435, 0.2616];
pub const CIFAR100_MEAN: [f32; 3] = [0.5071, 0.4865, 0.4409];
pub const CIFAR100_STD: [f32; 3] = [0.2673, 0.2564, 0.2762];

#[derive(Clone, Debug, PartialEq)]
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
    /// DeepMind WideResNet-depth-width (depth = 6n + 4): pre-activation blocks whose stride-2
    /// convolutions pad 0 left/top and 1 right/bottom, ReLU or Swish, the input standardised inside
    /// the model by per-channel `mean` and `std`, an 8×8 average-pool head (32×32 inputs).
    DmWideResNet {
        in_channels: usize,
        depth: usize,
        width: usize,
        classes: usize,
        activation: Activation,
        mean: Vec<f32>,
        std: Vec<f32>,
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
    pub activation: Option<Activation>,
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
}

impl Arch {
    pub fn kind(&self) -> ArchName {
        match self {
            Arch::SmallCnn { .. } => ArchName::SmallCnn,
            Arch::ResNet18 { .. } => ArchName::ResNet18,
            Arch::PreActResNet18 { .. } => ArchName::PreActResNet18,
            Arch::WideResNet { .. } => ArchName::WideResNet,
            Arch::MobileNetV2 { .. } => ArchName::MobileNetV2,
            Arch::DmWideResNet { .. } => ArchName::DmWideResNet,
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
            | Arch::MobileNetV2 { classes, .. }
            | Arch::DmWideResNet { classes, .. } => classes,
        }
    }

    pub fn in_channels(&self) -> usize {
        match *self {
            Arch::SmallCnn { in_channels, .. }
            | Arch::ResNet18 { in_channels, .. }
            | Arch::PreActResNet18 { in_channels, .. }
            | Arch::WideResNet { in_channels, .. }
            | Arch::MobileNetV2 { in_channels, .. }
            | Arch::DmWideResNet { in_channels, .. } => in_channels,
        }
    }

    /// The config as JSON, in the fixtures' vocabulary.
    pub fn config(&self) -> Value {
        use serde_json::json;
        match *self {
            Arch::DmWideResNet { in_channels, depth, width, classes, activation, ref mean, ref std } => json!({
                "in_channels": in_channels, "depth": depth, "width": width, "classes": classes,
                "activation": activation.name(), "mean": mean, "std": std,
            }),
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

    /// The metadata mmard writes beside the tensors of a model (and of a checkpoint), which
    /// `detect` reads back: the name and the config.
    pub fn metadata(&self) -> [(String, String); 2] {
        [("arch".into(), self.name().into()), ("config".into(), self.config().to_string())]
    }

    /// From a name and a JSON config; absent fields take the usual defaults (CIFAR-10 shapes,
    /// ResNet width 64, WRN-34-10, DM WRN-28-10 with RobustBench's mean and std for its class count,
    /// SmallCNN widths 32/64/128 on 28x28x1). A DM WideResNet's activation has no default.
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
            ArchName::DmWideResNet => {
                let activation = match cfg.get("activation") {
                    Some(Value::String(a)) => a.parse()?,
                    Some(v) => {
                        return Err(Error::Msg(format!("config `activation`: expected relu or swish, found {v}")));
                    }
                    None => return Err(Error::Msg(NO_ACTIVATION.into())),
                };
                let floats = |k: &str, default: Option<[f32; 3]>| -> Result<Vec<f32>> {
                    match (cfg.get(k), default) {
                        (Some(v), _) => serde_json::from_value(v.clone())
                            .map_err(|_| Error::Msg(format!("config `{k}`: expected a list of numbers, found {v}"))),
                        (None, Some(d)) => Ok(d.to_vec()),
                        (None, None) => Err(Error::Msg(format!(
                            "dm_wide_resnet: no `{k}` for {classes} classes (RobustBench's constants are for 10 and 100): pass --mean and --std"
                        ))),
                    }
                };
                let (mean, std) = robustbench_constants(classes).unzip();
                Arch::DmWideResNet {
                    in_channels: get("in_channels", 3)?,
                    depth: get("depth", 28)?,
                    width: get("width", 10)?,
                    classes,
                    activation,
                    mean: floats("mean", mean)?,
                    std: floats("std", std)?,
                }
            }
        };
        arch.validate()?;
        Ok(arch)
    }

    fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Msg(format!("{}: {msg}", self.name())));
        match *self {
            Arch::DmWideResNet { depth, width, .. } if depth < 10 || (depth - 4) % 6 != 0 || width == 0 => {
                bad(format!("depth {depth} must be 6n+4 (n ≥ 1) and width {width} ≥ 1"))
            }
            Arch::DmWideResNet { in_channels, ref mean, ref std, .. }
                if mean.len() != in_channels
                    || std.len() != in_channels
                    || std.iter().any(|&s| s.is_nan() || s <= 0.0) =>
            {
                bad(format!("mean {mean:?} and std {std:?} need one value per input channel ({in_channels}), std > 0"))
            }
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
}

/// Why a DM WideResNet needs its activation named.
pub const NO_ACTIVATION: &str = "dm_wide_resnet: its activation, relu or swish, is not in the state_dict: give it \
     with --activation (--teacher-activation for distill's teacher, \"activation\" in bench's --*-config); the model's \
     RobustBench entry names it (`activation_fn=Swish` in its model_zoo definition)";

/// RobustBench's CIFAR-10 constants for 10 classes, CIFAR-100's for 100.
pub fn robustbench_constants(classes: usize) -> Option<([f32; 3], [f32; 3])> {
    match classes {
        10 => Some((CIFAR10_MEAN, CIFAR10_STD)),
        100 => Some((CIFAR100_MEAN, CIFAR100_STD)),
        _ => None,
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name(), self.config())
    }
}
