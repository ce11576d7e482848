//! `eval` and `attack`: accuracy under the evaluation protocol's attacks, and adversarial examples.
use super::data::DataArgs;
use super::weights::ArchArgs;
use clap::Args;
use mmard::ard::attack::{Attack, robust_accuracy};
use mmard::ard::grad::logits;
use mmard::ard::rows::predictions;
use mmard::io::datasets::{Dataset, Split};
use mmard::io::safetensors::{self as st, TensorFile, Values};
use mmard::nn::Model;
use mmard::{Result, err};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct EvalArgs {
    /// Weights to evaluate (a PyTorch state_dict; architecture detected).
    #[arg(long)]
    pub weights: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// L∞ budget (default: the dataset's customary one).
    #[arg(long)]
    pub eps: Option<f32>,
    /// Attacks to evaluate, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "clean,pgd20", value_parser = Attack::parser())]
    pub attacks: Vec<Attack>,
    #[command(flatten)]
    pub opts: AttackOpts,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub arch: ArchArgs,
}

#[derive(Args)]
pub struct AttackArgs {
    #[arg(long)]
    pub weights: PathBuf,
    /// A safetensors file with the images (NCHW f32 in [0, 1]).
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long, default_value = "input")]
    pub tensor: String,
    /// I64 labels in --input; the model's own predictions when the file has none.
    #[arg(long, default_value = "labels")]
    pub labels: String,
    /// The attack that makes the adversarial examples.
    #[arg(long, default_value = "pgd20", value_parser = Attack::parser())]
    pub attack: Attack,
    #[arg(long)]
    pub eps: f32,
    #[command(flatten)]
    pub opts: AttackOpts,
    /// Output: tensors `adversarial` and `labels`.
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub arch: ArchArgs,
}

/// How attacks run, for eval and attack alike.
#[derive(Args)]
pub struct AttackOpts {
    /// Step size of pgd and cw (default ε/4).
    #[arg(long)]
    pub pgd_step: Option<f32>,
    /// Seed of the random starts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images per batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
}

/// Clean and PGD-20 accuracy (percent) on a whole set: the per-epoch check of training runs.
pub fn quick_eval(model: &mut Model, d: &Dataset, eps: f32, seed: u64) -> Result<(f64, f64)> {
    let (x, y) = d.batch(&(0..d.len()).collect::<Vec<_>>());
    let mut rng = StdRng::seed_from_u64(seed);
    let clean = robust_accuracy(model, &x, &y, &Attack::Clean, eps, 256, &mut rng);
    let pgd = robust_accuracy(model, &x, &y, &"pgd20".parse()?, eps, 256, &mut rng);
    Ok((clean, pgd))
}

pub fn eval(a: &EvalArgs) -> Result<()> {
    if a.opts.batch_size == 0 {
        return Err(err!("--batch-size must be at least 1"));
    }
    let mut model = a.arch.load(&TensorFile::load(&a.weights)?)?;
    let d = a.data.load(Split::Test)?;
    model
        .check_input(&[1, d.c, d.h, d.w])
        .map_err(|e| err!("{} test set vs {}: {e}", a.data.dataset.name(), a.weights.display()))?;
    let eps = a.eps.unwrap_or(a.data.dataset.default_eps());
    let (x, y) = d.batch(&(0..d.len()).collect::<Vec<_>>());
    // ε as typed (0.1), not as its f32 widened to f64 (0.10000000149…)
    let mut json = serde_json::json!({"n": d.len(), "eps": eps.to_string().parse::<f64>().unwrap_or(eps as f64)});
    println!("{} on {} test images of {}, ε = {eps}", model.arch, d.len(), a.data.dataset.name());
    println!("{:<10} {:>9} {:>9}", "attack", "accuracy", "seconds");
    for attack in &a.attacks {
        let started = Instant::now();
        // Each attack draws from its own seeded stream, so adding one does not change another.
        let mut rng = StdRng::seed_from_u64(a.opts.seed);
        let acc =
            robust_accuracy(&mut model, &x, &y, &attack.with_step(a.opts.pgd_step), eps, a.opts.batch_size, &mut rng);
        println!("{:<10} {:>8.2}% {:>9.1}", attack.to_string(), acc, started.elapsed().as_secs_f64());
        json[attack.to_string()] = acc.into();
    }
    if let Some(p) = &a.json {
        st::write_atomic(p, format!("{json}\n").as_bytes())?;
    }
    Ok(())
}

pub fn attack(a: &AttackArgs) -> Result<()> {
    let mut model = a.arch.load(&TensorFile::load(&a.weights)?)?;
    let f = TensorFile::load(&a.input)?;
    let x = f.tensor(&a.tensor)?;
    model.check_input(x.shape()).map_err(|e| err!("{}: tensor `{}`: {e}", a.input.display(), a.tensor))?;
    if a.eps.is_nan() || a.eps < 0.0 {
        return Err(err!("--eps must be ≥ 0, got {}", a.eps));
    }
    let n = x.shape()[0];
    let y: Vec<usize> = match f.tensors.contains_key(&a.labels) {
        true => f
            .i64s(&a.labels)?
            .into_iter()
            .map(|v| {
                usize::try_from(v)
                    .ok()
                    .filter(|&v| v < model.arch.classes())
                    .ok_or_else(|| err!("{}: label {v} is not a class of {}", a.input.display(), model.arch))
            })
            .collect::<Result<_>>()?,
        false => predictions(&logits(&mut model, &x, a.opts.batch_size.max(1))),
    };
    if y.len() != n {
        return Err(err!("{}: {} labels for {n} images", a.input.display(), y.len()));
    }
    let attack = a.attack.with_step(a.opts.pgd_step);
    let mut rng = StdRng::seed_from_u64(a.opts.seed);
    let mut adv = Vec::with_capacity(x.numel());
    let per = x.numel() / n.max(1);
    for start in (0..n).step_by(a.opts.batch_size.max(1)) {
        let end = n.min(start + a.opts.batch_size.max(1));
        let mut shape = x.shape().to_vec();
        shape[0] = end - start;
        let xb = mmard::Tensor::from_vec(&shape, x.data()[start * per..end * per].to_vec());
        adv.extend(attack.run(&mut model, &xb, &y[start..end], a.eps, &mut rng).into_vec());
    }
    let xa = mmard::Tensor::from_vec(x.shape(), adv);
    let still =
        predictions(&logits(&mut model, &xa, a.opts.batch_size.max(1))).iter().zip(&y).filter(|(p, t)| p == t).count();
    let labels = Values::I64(y.iter().map(|&v| v as i64).collect());
    st::save(
        &a.output,
        &[("adversarial".into(), x.shape().to_vec(), Values::F32(xa.into_vec())), ("labels".into(), vec![n], labels)],
        None,
    )?;
    println!("{attack} at ε = {}: {still} of {n} still classified correctly; wrote {}", a.eps, a.output.display());
    Ok(())
}
