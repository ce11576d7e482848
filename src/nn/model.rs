//! A model: its architecture, its named tensors, and the network that runs on them.
use super::arch::{Arch, Overrides};
use super::detect::{Detected, detect};
use super::layers::{Builder, Ctx, Net};
use super::params::ParamStore;
use crate::error::{Error, Result};
use crate::io::safetensors::{self as st, TensorFile};
use crate::tape::{Tape, Var};
use std::path::Path;

pub struct Model {
    pub arch: Arch,
    pub params: ParamStore,
    net: Box<dyn Net>,
    pub bn_momentum: f32,
    pub bn_eps: f32,
    /// Fold eval-mode BatchNorm into the output pass of the convolution before it, where it can
    /// (on by default; see `layers::ConvBn`).
    pub fold: bool,
    /// Train-mode BatchNorm normalises over the batches of these ranks (`--sync-bn` of a
    /// data-parallel run; None: over this process's batch).
    pub sync_bn: Option<std::sync::Arc<dyn crate::dist::Group>>,
}

/// Where models run and how: the device, whether eval-mode BatchNorm folds into the convolution
/// before it, and the ranks of the job (one process, or the ranks of an `mpirun`). The CLI makes
/// one from `--device`, `--no-fold` and its launcher and hands it to every command.
#[derive(Clone, Debug)]
pub struct Placement {
    pub device: crate::Device,
    pub fold: bool,
    pub group: std::sync::Arc<dyn crate::dist::Group>,
}

impl Placement {
    /// `m`, moved to the device, folding as chosen.
    pub fn place(&self, mut m: Model) -> Model {
        m.to_device(&self.device);
        m.fold = self.fold;
        m
    }
}

/// What loading a weights file found beside the model's own tensors.
pub struct Loaded {
    pub model: Model,
    /// Tensors in the file that the model does not use (e.g. TRADES' `sub_block1.*`).
    pub extra: Vec<String>,
    /// What detection assumed (e.g. RobustBench's normalisation constants), for the user to read.
    pub notices: Vec<String>,
}

impl Model {
    /// A fresh model: PyTorch's default initialisation from `seed`, or all zeros when `None`.
    pub fn new(arch: &Arch, seed: Option<u64>) -> Model {
        let mut b = Builder::new(seed);
        let net = arch.build(&mut b);
        Model { arch: arch.clone(), params: b.store, net, bn_momentum: 0.1, bn_eps: 1e-5, fold: true, sync_bn: None }
    }

    /// Loads a PyTorch state_dict, detecting the architecture unless `o` names it. With `strict`,
    /// tensors the model does not use are an error; otherwise the caller reports them.
    pub fn load(path: impl AsRef<Path>, o: &Overrides, strict: bool) -> Result<Loaded> {
        let file = TensorFile::load(path)?;
        Self::from_file(&file, o, strict)
    }

    pub fn from_file(file: &TensorFile, o: &Overrides, strict: bool) -> Result<Loaded> {
        let at = |e: Error| Error::Msg(format!("{}: {e}", file.path.display()));
        let Detected { arch, notices } = detect(&file.tensors, &file.metadata, o).map_err(at)?;
        let mut model = Model::new(&arch, None);
        let extra = model
            .params
            .load(&file.tensors)
            .map_err(|e| Error::Msg(format!("{}: {e} (as {arch})", file.path.display())))?;
        if strict && !extra.is_empty() {
            return Err(Error::Msg(format!(
                "{}: {} tensors that {} does not use (--strict): {}",
                file.path.display(),
                extra.len(),
                arch.name(),
                summarize(&extra)
            )));
        }
        Ok(Loaded { model, extra, notices })
    }

    /// Writes the weights as a PyTorch-compatible state_dict, with the architecture and its config
    /// in the metadata (`arch`, `config`), so that loading it again needs no flags.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        st::save(path, &self.params.state_dict(), Some(self.arch.metadata().into_iter().collect()))
    }

    /// Where the model's tensors live.
    pub fn device(&self) -> crate::Device {
        self.params.device()
    }

    /// Moves the model to `dev`.
    pub fn to_device(&mut self, dev: &crate::Device) {
        self.params.to_device(dev);
    }

    /// Checks that a batch of shape `s` fits the model, naming what differs.
    pub fn check_input(&self, s: &[usize]) -> Result<()> {
        let c = self.arch.in_channels();
        let &[_, ch, h, w] = s else {
            return Err(Error::Msg(format!("input: expected an NCHW batch, found shape {s:?}")));
        };
        if ch != c {
            return Err(Error::Msg(format!("input: {} expects {c} channels, found shape {s:?}", self.arch)));
        }
        match self.arch.misfit(h, w) {
            Some(why) => Err(Error::Msg(format!("input: {why}, found shape {s:?}"))),
            None => Ok(()),
        }
    }

    /// Runs the network on `x`, recording on `tape` as its mode asks. `bn_train` selects batch
    /// statistics (and moves the running ones) over running statistics.
    /// Where BN runs on its running statistics and no parameter gradient is wanted (the inner loop,
    /// attacks, evaluation), conv–BN pairs run folded (`fold`).
    pub fn forward(&mut self, tape: &mut Tape, x: &Var, bn_train: bool) -> Var {
        let fold = self.fold && !bn_train && !tape.wants_params();
        let (bn_momentum, bn_eps) = (self.bn_momentum, self.bn_eps);
        let sync_bn = self.sync_bn.as_ref();
        let mut cx = Ctx { tape, params: &mut self.params, bn_train, bn_momentum, bn_eps, fold, sync_bn };
        self.net.forward(&mut cx, x)
    }
}

/// A long list of names, shortened for a message.
pub fn summarize(names: &[String]) -> String {
    let head: Vec<&str> = names.iter().take(4).map(String::as_str).collect();
    if names.len() > head.len() {
        format!("{}, … ({} more)", head.join(", "), names.len() - head.len())
    } else {
        head.join(", ")
    }
}
