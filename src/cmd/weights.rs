//! `inspect` and `predict`: reading weights files, detecting their architecture, running them.
use clap::Args;
use mmard::io::safetensors::{self as st, TensorFile, Values};
use mmard::nn::model::{Loaded, summarize};
use mmard::nn::{Activation, ArchName, Model, Overrides, Placement};
use mmard::{Result, err};
use std::path::Path;

/// Architecture flags: each replaces what detection reads from the weights.
#[derive(Args)]
pub struct ArchArgs {
    /// Architecture, instead of the one detected from the tensor names.
    #[arg(long)]
    arch: Option<ArchName>,
    #[arg(long)]
    in_channels: Option<usize>,
    #[arg(long)]
    classes: Option<usize>,
    /// ResNet stem width (64 for the standard ResNet-18).
    #[arg(long)]
    width: Option<usize>,
    /// WideResNet depth (6n + 4).
    #[arg(long)]
    depth: Option<usize>,
    /// WideResNet widening factor.
    #[arg(long)]
    widen: Option<usize>,
    /// SmallCNN input side.
    #[arg(long)]
    size: Option<usize>,
    #[command(flatten)]
    unsaid: Unsaid,
    /// Tensors the architecture does not use are an error instead of a warning.
    #[arg(long)]
    strict: bool,
}

/// Declares the flags for what a RobustBench checkpoint does not say about its model (a DeepMind
/// WideResNet's activation, its input normalisation; files that mmard wrote say it in their
/// metadata), named `--<prefix>activation`, `--<prefix>mean`, `--<prefix>std`, for `whose` model.
macro_rules! unsaid {
    ($name:ident, $prefix:literal, $whose:literal) => {
        #[derive(Args, Clone, Default)]
        pub struct $name {
            #[arg(long = concat!($prefix, "activation"),
                  help = concat!("Activation of a dm_wide_resnet", $whose, " (its RobustBench entry names it)"))]
            pub activation: Option<Activation>,
            #[arg(long = concat!($prefix, "mean"), value_delimiter = ',',
                  help = concat!("Per-channel mean a dm_wide_resnet", $whose, " standardises its input with \
                                  (default: RobustBench's CIFAR-10 constants for 10 classes, CIFAR-100's for 100)"))]
            pub mean: Option<Vec<f32>>,
            #[arg(long = concat!($prefix, "std"), value_delimiter = ',',
                  help = "Per-channel std of that standardisation (same defaults)")]
            pub std: Option<Vec<f32>>,
        }

        impl $name {
            pub fn overrides(&self) -> Overrides {
                Overrides { activation: self.activation, mean: self.mean.clone(), std: self.std.clone(), ..Default::default() }
            }
        }
    };
}
unsaid!(Unsaid, "", "");
unsaid!(TeacherUnsaid, "teacher-", " teacher");

/// The model of a weights file, placed on the device, printing (rank 0 for all) the tensors it does
/// not use and what detection assumed.
pub fn load_model(file: &TensorFile, o: &Overrides, strict: bool, p: &Placement) -> Result<Model> {
    let Loaded { model, extra, mut notices } = Model::from_file(file, o, strict)?;
    if !p.group.leads() {
        notices.clear();
    } else if !extra.is_empty() {
        eprintln!(
            "warning: {}: {} tensors not used by {}: {} (--strict makes this an error)",
            file.path.display(),
            extra.len(),
            model.arch.name(),
            summarize(&extra)
        );
    }
    for n in notices {
        eprintln!("notice: {}: {n}", file.path.display());
    }
    Ok(p.place(model))
}

impl ArchArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            arch: self.arch,
            in_channels: self.in_channels,
            classes: self.classes,
            width: self.width,
            depth: self.depth,
            widen: self.widen,
            size: self.size,
            ..self.unsaid.overrides()
        }
    }

    /// The model of a weights file (see `load_model`).
    pub fn load(&self, file: &TensorFile, p: &Placement) -> Result<Model> {
        load_model(file, &self.overrides(), self.strict, p)
    }
}

pub fn inspect(path: &Path, args: &ArchArgs, p: &Placement) -> Result<()> {
    let file = TensorFile::load(path)?;
    let width = file.tensors.keys().map(String::len).max().unwrap_or(0).max(4);
    println!("{:<width$}  {:<5}  shape", "name", "dtype");
    for (name, s) in &file.tensors {
        println!("{name:<width$}  {:<5}  {:?}", format!("{:?}", s.dtype), s.shape);
    }
    let scalars: usize = file.tensors.values().map(|s| s.shape.iter().product::<usize>()).sum();
    println!("\n{} tensors, {scalars} values", file.tensors.len());
    match args.load(&file, p) {
        Ok(m) => println!("architecture: {}\nparameters: {} trainable", m.arch, m.params.param_count()),
        Err(e) if args.strict => return Err(e),
        Err(e) => println!("architecture: not recognised: {e}"),
    }
    Ok(())
}

pub fn predict(
    weights: &Path,
    input: &Path,
    tensor: &str,
    output: &Path,
    batch_size: usize,
    args: &ArchArgs,
    p: &Placement,
) -> Result<()> {
    if batch_size == 0 {
        return Err(err!("--batch-size must be at least 1"));
    }
    let mut model = args.load(&TensorFile::load(weights)?, p)?;
    let x = TensorFile::load(input)?.tensor(tensor)?;
    model.check_input(x.shape()).map_err(|e| err!("{}: tensor `{tensor}`: {e}", input.display()))?;
    if let Some(v) = x.data().iter().find(|v| !(0.0..=1.0).contains(*v)) {
        eprintln!(
            "warning: {}: tensor `{tensor}` holds {v}, outside [0, 1]; the models expect unnormalised images",
            input.display()
        );
    }
    let logits = mmard::nn::eval::logits(&mut model, &x, batch_size).into_vec();
    let classes = model.arch.classes();
    let n = x.shape()[0];
    let meta = [("arch".to_string(), model.arch.to_string())].into_iter().collect();
    st::save(output, &[("logits".into(), vec![n, classes], Values::F32(logits))], Some(meta))?;
    println!("wrote logits [{n}, {classes}] of {} to {}", model.arch, output.display());
    Ok(())
}
