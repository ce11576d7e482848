//! `eval` and `attack`: accuracy under the evaluation protocol's attacks, and adversarial examples.
//! Under mpirun the ranks take the batches in turn (AutoAttack: each stage's batches) and pool the
//! counts and images, so the figures are one process's; rank 0 prints and writes.
use super::data::DataArgs;
use super::progress::aa_bar;
use super::weights::ArchArgs;
use clap::Args;
use mmard::attack::{Attack, AutoAttack, batch_rng, robust_accuracy};
use mmard::dist::{Group, Solo, hash_file, pool_rows};
use mmard::io::datasets::{Dataset, Split};
use mmard::io::safetensors::{self as st, TensorFile, Values};
use mmard::nn::eval::{correct, logits, predictions};
use mmard::nn::{Model, Placement};
use mmard::{Result, Tensor, err};
use serde_json::Value;
use std::path::{Path, PathBuf};
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
    /// Seed of the random starts: each batch of an attack draws from its own stream derived from
    /// it and the batch's index (so ranks under mpirun can share the batches); Square and
    /// AutoAttack reset their streams to it at every batch.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images per batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Points per batch of AutoAttack (`aa`); its results depend on it, through the seeds.
    #[arg(long, default_value_t = 250)]
    pub aa_batch: usize,
}

impl AttackOpts {
    /// `a` with these options: PGD's step, the seed of its own stream, AutoAttack's batch.
    fn configure(&self, a: Attack) -> Attack {
        a.with_step(self.pgd_step).with_seed(self.seed).with_aa_batch(self.aa_batch)
    }

    fn check(&self, eps: f32, attacks: &[Attack], model: &Model) -> Result<()> {
        if self.batch_size == 0 || self.aa_batch == 0 {
            return Err(err!("--batch-size and --aa-batch must be at least 1"));
        }
        if eps.is_nan() || eps < 0.0 {
            return Err(err!("--eps must be ≥ 0, got {eps}"));
        }
        attacks.iter().try_for_each(|a| a.check_classes(model.arch.classes()))
    }
}

/// AutoAttack on the whole set, printing each stage as it ends and the checks that fired; the
/// JSON fields of its figures; the ranks of `g` share the batches.
fn autoattack(model: &mut Model, x: &Tensor, y: &[usize], eps: f32, aa: (usize, u64), g: &dyn Group) -> (f64, Value) {
    let (batch, seed) = aa;
    let mut bar = aa_bar(|s| println!("  after {:<7} {:>8.2}% {:>9.1}", s.name, s.accuracy, s.seconds));
    let report = AutoAttack { eps, batch, seed }.run(model, x, y, g, |e| {
        if g.leads() {
            bar(e)
        }
    });
    for w in report.warnings.iter().filter(|_| g.leads()) {
        eprintln!("warning: AutoAttack: {w}");
    }
    let stages: Vec<_> = report
        .stages
        .iter()
        .map(|s| serde_json::json!({"attack": s.name, "accuracy": s.accuracy, "seconds": s.seconds}))
        .collect();
    let fields = serde_json::json!({"clean": report.clean, "stages": stages, "seed": seed, "batch": batch, "warnings": report.warnings});
    (report.accuracy(), fields)
}

/// Clean and PGD-20 accuracy (percent) on a whole set: the per-epoch check of training runs (made
/// by rank 0 alone).
pub fn quick_eval(model: &mut Model, d: &Dataset, eps: f32, seed: u64) -> Result<(f64, f64)> {
    let (x, y) = d.batch(&(0..d.len()).collect::<Vec<_>>());
    let clean = robust_accuracy(model, &x, &y, &Attack::Clean, eps, 256, seed, &Solo);
    let pgd = robust_accuracy(model, &x, &y, &"pgd20".parse()?, eps, 256, seed, &Solo);
    Ok((clean, pgd))
}

/// Refuses ranks that would pool figures of different models or images.
fn same_inputs(g: &dyn Group, weights: &Path, what: &str, images: impl FnOnce() -> u64) -> Result<()> {
    g.check_same(&format!("weights file {}", weights.display()), || hash_file(weights))?;
    g.check_same(what, images)
}

pub fn eval(a: &EvalArgs, p: &Placement) -> Result<()> {
    let mut model = a.arch.load(&TensorFile::load(&a.weights)?, p)?;
    let d = a.data.load(Split::Test)?;
    same_inputs(&*p.group, &a.weights, "test set (--dataset, --data-dir, --limit)", || d.fingerprint())?;
    model
        .check_input(&[1, d.c, d.h, d.w])
        .map_err(|e| err!("{} test set vs {}: {e}", a.data.dataset.name(), a.weights.display()))?;
    let eps = a.eps.unwrap_or(a.data.dataset.default_eps());
    a.opts.check(eps, &a.attacks, &model)?;
    let (x, y) = d.batch(&(0..d.len()).collect::<Vec<_>>());
    // ε as typed (0.1), not as its f32 widened to f64 (0.10000000149…)
    let mut json = serde_json::json!({"n": d.len(), "eps": eps.to_string().parse::<f64>().unwrap_or(eps as f64)});
    let g = &*p.group;
    let say = |line: String| {
        if g.leads() {
            println!("{line}")
        }
    };
    let ranks = if g.size() > 1 { format!(", {} ranks", g.size()) } else { String::new() };
    say(format!("{} on {} test images of {}, ε = {eps}{ranks}", model.arch, d.len(), a.data.dataset.name()));
    say(format!("{:<10} {:>9} {:>9}", "attack", "accuracy", "seconds"));
    for attack in &a.attacks {
        let started = Instant::now();
        // Each attack draws from its own seeded streams, so adding one does not change another.
        let acc = match a.opts.configure(*attack) {
            Attack::Aa { batch, seed } => {
                let (acc, fields) = autoattack(&mut model, &x, &y, eps, (batch, seed), g);
                json["aa_protocol"] = fields;
                acc
            }
            other => robust_accuracy(&mut model, &x, &y, &other, eps, a.opts.batch_size, a.opts.seed, g),
        };
        say(format!("{:<10} {:>8.2}% {:>9.1}", attack.to_string(), acc, started.elapsed().as_secs_f64()));
        json[attack.to_string()] = acc.into();
    }
    match &a.json {
        Some(path) if g.leads() => st::write_atomic(path, format!("{json}\n").as_bytes()),
        _ => Ok(()),
    }
}

pub fn attack(a: &AttackArgs, p: &Placement) -> Result<()> {
    let mut model = a.arch.load(&TensorFile::load(&a.weights)?, p)?;
    let f = TensorFile::load(&a.input)?;
    let x = f.tensor(&a.tensor)?;
    same_inputs(&*p.group, &a.weights, &format!("--input {}", a.input.display()), || hash_file(&a.input))?;
    model.check_input(x.shape()).map_err(|e| err!("{}: tensor `{}`: {e}", a.input.display(), a.tensor))?;
    a.opts.check(a.eps, &[a.attack], &model)?;
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
    let attack = a.opts.configure(a.attack);
    let g = &*p.group;
    let xa = match attack {
        // The protocol batches the points itself (--aa-batch).
        Attack::Aa { batch, seed } => {
            let mut bar = aa_bar(|s| println!("after {}: {:.2}% robust ({:.1} s)", s.name, s.accuracy, s.seconds));
            let report = AutoAttack { eps: a.eps, batch, seed }.run(&mut model, &x, &y, g, |e| {
                if g.leads() {
                    bar(e)
                }
            });
            report.warnings.iter().filter(|_| g.leads()).for_each(|w| eprintln!("warning: AutoAttack: {w}"));
            report.x_adv
        }
        // batch k from its own stream (as `eval` draws), the ranks taking batches in turn
        _ => {
            let (b, mut xa) = (a.opts.batch_size, x.clone());
            let mut mine = vec![false; n];
            for (k, s) in (0..n).step_by(b).enumerate().skip(g.rank()).step_by(g.size()) {
                let e = n.min(s + b);
                let adv = attack.run(&mut model, &x.rows(s, e), &y[s..e], a.eps, &mut batch_rng(a.opts.seed, k));
                xa.data_mut()[s * x.numel() / n.max(1)..][..adv.numel()].copy_from_slice(&adv.host());
                mine[s..e].fill(true);
            }
            pool_rows(g, &mut xa, &mine);
            xa
        }
    };
    if !g.leads() {
        return Ok(());
    }
    let still = correct(&logits(&mut model, &xa, a.opts.batch_size), &y);
    let labels = Values::I64(y.iter().map(|&v| v as i64).collect());
    st::save(
        &a.output,
        &[("adversarial".into(), x.shape().to_vec(), Values::F32(xa.into_vec())), ("labels".into(), vec![n], labels)],
        None,
    )?;
    println!("{attack} at ε = {}: {still} of {n} still classified correctly; wrote {}", a.eps, a.output.display());
    Ok(())
}
