//! The supported architectures and their configurations, from a name and a JSON config (fixtures,
//! the CLI, the metadata mmard saves); `detect.rs` reads them from a weights file. Each
//! architecture states its own facts (`Spec`) in its own file; `archs!` lists them.
use super::detect::Shapes;
use super::layers::{Builder, Net};
use crate::error::{Error, Result};
use serde_json::Value;

pub use super::dm_wide_resnet::DmWideResNetCfg;
pub use super::mobilenet_v2::MobileNetV2Cfg;
pub use super::preact_resnet18::PreActResNet18Cfg;
pub use super::resnet18::ResNet18Cfg;
pub use super::small_cnn::SmallCnnCfg;
pub use super::wide_resnet::WideResNetCfg;

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

/// What an architecture says about itself, in its own file: its name, its config (as JSON, with
/// defaults), what makes a config invalid, how its state_dict is recognised and what the tensor
/// shapes say of its config, the input sides it takes, and its network. `archs!` below lists every
/// architecture once, and `Arch` dispatches to them.
pub trait Spec: Sized {
    const NAME: ArchName;
    fn in_channels(&self) -> usize;
    fn classes(&self) -> usize;
    /// From a JSON config; absent fields take the usual defaults.
    fn from_config(c: &Fields) -> Result<Self>;
    /// The config as JSON, in the fixtures' vocabulary.
    fn config(&self) -> Value;
    /// What is wrong with the config beyond classes or input channels of 0, if anything.
    fn invalid(&self) -> Option<String> {
        None
    }
    /// Whether a state_dict's names are this architecture's (and no other's).
    fn recognises(t: &Shapes) -> bool;
    /// The config that the tensor names and shapes imply.
    fn read(t: &Shapes) -> Result<Value>;
    /// Why an `h × w` input does not fit, if it does not.
    fn misfit(&self, h: usize, w: usize) -> Option<String> {
        (h < 8 || w < 8).then(|| "images must be at least 8x8".to_string())
    }
    fn build(&self, b: &mut Builder) -> Box<dyn Net>;
}

/// A JSON config being read: each field or its default, the field named in errors.
pub struct Fields<'a>(pub &'a Value);

impl Fields<'_> {
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k)
    }
    /// A whole number, or `default` when absent.
    pub fn count(&self, k: &str, default: usize) -> Result<usize> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| Error::Msg(format!("config `{k}`: expected a whole number, found {v}"))),
        }
    }
    /// `classes`, 10 by default.
    pub fn classes(&self) -> Result<usize> {
        self.count("classes", 10)
    }
}

/// Every architecture once: its `ArchName` (the name the command line, configs and messages use,
/// with its description) and its `Spec`.
macro_rules! archs {
    ($($(#[doc = $doc:literal])* $V:ident($S:ty) = $name:literal),* $(,)?) => {
        crate::named_enum! { "architecture",
        /// The architectures by name: what `--arch`, `--student`, `--teacher`, configs and messages accept.
        pub enum ArchName { $($(#[doc = $doc])* $V = $name),* }
        }

        /// An architecture and its config.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Arch { $($V($S)),* }

        impl Arch {
            pub fn kind(&self) -> ArchName {
                match self { $(Arch::$V(_) => <$S as Spec>::NAME),* }
            }
            pub fn classes(&self) -> usize {
                match self { $(Arch::$V(s) => s.classes()),* }
            }
            pub fn in_channels(&self) -> usize {
                match self { $(Arch::$V(s) => s.in_channels()),* }
            }
            /// The config as JSON, in the fixtures' vocabulary.
            pub fn config(&self) -> Value {
                match self { $(Arch::$V(s) => s.config()),* }
            }
            fn invalid(&self) -> Option<String> {
                match self { $(Arch::$V(s) => s.invalid()),* }
            }
            /// Why an `h × w` input does not fit, if it does not.
            pub fn misfit(&self, h: usize, w: usize) -> Option<String> {
                match self { $(Arch::$V(s) => s.misfit(h, w)),* }
            }
            pub fn build(&self, b: &mut Builder) -> Box<dyn Net> {
                match self { $(Arch::$V(s) => s.build(b)),* }
            }
            fn parse(name: ArchName, cfg: &Fields) -> Result<Arch> {
                match name { $(ArchName::$V => Ok(Arch::$V(<$S>::from_config(cfg)?))),* }
            }
            /// The architecture whose names a state_dict has.
            pub fn recognise(t: &Shapes) -> Option<ArchName> {
                [$((<$S as Spec>::NAME, <$S>::recognises(t))),*].into_iter().find(|(_, yes)| *yes).map(|(n, _)| n)
            }
            /// The config that the tensor names and shapes of architecture `name` imply.
            pub fn read(name: ArchName, t: &Shapes) -> Result<Value> {
                match name { $(ArchName::$V => <$S>::read(t)),* }
            }
        }
    };
}

archs! {
    /// Three conv-BN-ReLU-maxpool stages and a linear layer.
    SmallCnn(SmallCnnCfg) = "small_cnn",
    /// CIFAR ResNet-18 (RSLAD / ARD names).
    ResNet18(ResNet18Cfg) = "resnet18",
    /// PreActResNet-18 (RobustBench names).
    PreActResNet18(PreActResNet18Cfg) = "preact_resnet18",
    /// WideResNet-depth-widen (RobustBench / TRADES names).
    WideResNet(WideResNetCfg) = "wide_resnet",
    /// CIFAR MobileNetV2 (RSLAD / ARD names).
    MobileNetV2(MobileNetV2Cfg) = "mobilenet_v2",
    /// RobustBench's DeepMind WideResNet (DMWideResNet: init_conv, layer.K.block.I, logits).
    DmWideResNet(DmWideResNetCfg) = "dm_wide_resnet",
}

impl Arch {
    pub fn name(&self) -> &'static str {
        self.kind().name()
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
        let arch = Arch::parse(name, &Fields(cfg))?;
        let problem = match arch.invalid() {
            None if arch.classes() == 0 || arch.in_channels() == 0 => {
                Some("classes and in_channels must be positive".to_string())
            }
            p => p,
        };
        match problem {
            Some(p) => Err(Error::Msg(format!("{name}: {p}"))),
            None => Ok(arch),
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
