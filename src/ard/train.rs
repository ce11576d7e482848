//! The training loop: epochs of shuffled (and, for CIFAR, augmented) batches through `Stepper`,
//! a learning-rate schedule, per-epoch metrics appended to `metrics.jsonl`, and a checkpoint
//! written atomically after every epoch. The RNG of epoch e is seeded from (seed, e), so the
//! checkpoint's epoch and seed are the whole RNG state and `--resume` continues bit for bit.
//! Data-parallel ranks (`cfg.ranks`) all draw the same order and augmentation, each steps on its
//! share of every batch, and rank 0 alone writes the files and hears the progress.
use super::methods::Objective;
use super::step::{InnerPgd, Noise, Stepper};
use crate::dist::Ranks;
use crate::err;
use crate::error::{Error, Result};
use crate::io::augment::{augment, shuffled};
use crate::io::datasets::Dataset;
use crate::io::safetensors::{self as st, TensorFile, Values};
use crate::nn::Model;
use crate::nn::optim::Sgd;
use crate::ops::sgd::SgdCfg;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// lr · gamma^(number of milestones ≤ epoch)
    Step {
        milestones: Vec<usize>,
        gamma: f32,
    },
    /// lr · (1 + cos(π · t / epochs)) / 2
    Cosine,
}

#[derive(Clone, Debug)]
pub struct TrainCfg {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub schedule: Schedule,
    /// Linear warm-up from 0, in epochs.
    pub warmup: f32,
    pub seed: u64,
    /// Random crop (padding 4) and horizontal flip.
    pub augment: bool,
    pub pgd: InnerPgd,
    pub objective: Objective,
    /// The ranks that share every batch (one process by default); not part of a checkpoint's
    /// configuration, so a run resumes with any number of them.
    pub ranks: Ranks,
}

impl TrainCfg {
    /// Learning rate at fractional epoch `t`.
    pub fn lr_at(&self, t: f64) -> f32 {
        let base = match &self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Step { milestones, gamma } => {
                self.lr * gamma.powi(milestones.iter().filter(|&&m| (m as f64) <= t).count() as i32)
            }
            Schedule::Cosine => {
                self.lr * (1.0 + (std::f64::consts::PI * t / self.epochs.max(1) as f64).cos() as f32) / 2.0
            }
        };
        if (t as f32) < self.warmup { base * t as f32 / self.warmup } else { base }
    }

    /// What must match for a checkpoint to be resumed with this configuration (all but the
    /// number of epochs, which a resumed run may extend).
    fn fingerprint(&self) -> String {
        let TrainCfg { batch, lr, momentum, weight_decay, schedule, warmup, seed, augment, pgd, objective, .. } = self;
        format!("{batch} {lr} {momentum} {weight_decay} {schedule:?} {warmup} {seed} {augment} {pgd:?} {objective:?}")
    }
}

/// One epoch's line of `metrics.jsonl`.
pub struct EpochReport {
    pub epoch: usize,
    pub lr: f32,
    pub loss: f64,
    pub train_acc: f64,
    pub seconds: f64,
}

/// Where a run writes: `checkpoint.safetensors`, `metrics.jsonl`, `model.safetensors`.
pub struct RunDir(pub PathBuf);

impl RunDir {
    pub fn checkpoint(&self) -> PathBuf {
        self.0.join("checkpoint.safetensors")
    }
    pub fn metrics(&self) -> PathBuf {
        self.0.join("metrics.jsonl")
    }
    pub fn weights(&self) -> PathBuf {
        self.0.join("model.safetensors")
    }
}

const MOMENTUM: &str = "optimizer.momentum_buffer.";

/// Model, optimizer state and progress in one safetensors file, written atomically.
fn save_checkpoint(path: &Path, model: &Model, opt: &Sgd, epoch: usize, cfg: &TrainCfg) -> Result<()> {
    let mut tensors = model.params.state_dict();
    for id in model.params.trainable() {
        let shape = model.params.get(id).shape().to_vec();
        tensors.push((format!("{MOMENTUM}{}", model.params.name(id)), shape, Values::F32(opt.momentum(id))));
    }
    let meta = [
        ("epochs_done".to_string(), epoch.to_string()),
        ("seed".to_string(), cfg.seed.to_string()),
        ("train_config".to_string(), cfg.fingerprint()),
    ];
    st::save(path, &tensors, Some(meta.into_iter().chain(model.arch.metadata()).collect()))
}

/// Restores model and optimizer from a checkpoint; returns the number of epochs it had done.
fn load_checkpoint(path: &Path, model: &mut Model, opt: &mut Sgd, cfg: &TrainCfg) -> Result<usize> {
    let f = TensorFile::load(path)?;
    let at = |msg: String| Error::Msg(format!("{}: {msg}", path.display()));
    let meta = |k: &str| {
        f.metadata.get(k).cloned().ok_or_else(|| at(format!("metadata `{k}` is missing (not a training checkpoint?)")))
    };
    let [(_, name), (_, config)] = model.arch.metadata();
    if meta("arch")? != name || meta("config")? != config {
        return Err(at(format!(
            "checkpoint of {} {}, but this run trains {}",
            meta("arch")?,
            meta("config")?,
            model.arch
        )));
    }
    if meta("train_config")? != cfg.fingerprint() {
        return Err(at(format!(
            "checkpoint made with other settings:\n  checkpoint: {}\n  this run:   {}",
            meta("train_config")?,
            cfg.fingerprint()
        )));
    }
    let extra = model.params.load(&f.tensors).map_err(|e| at(e.to_string()))?;
    for id in model.params.trainable().collect::<Vec<_>>() {
        let name = format!("{MOMENTUM}{}", model.params.name(id));
        opt.set_momentum(id, f.tensor(&name)?.data()).map_err(|e| at(format!("`{name}`: {e}")))?;
    }
    if let Some(bad) = extra.iter().find(|n| !n.starts_with(MOMENTUM)) {
        return Err(at(format!("unexpected tensor `{bad}`")));
    }
    meta("epochs_done")?.parse().map_err(|_| at("metadata `epochs_done` is not a number".into()))
}

/// The epoch so far, after each batch: mean loss, training accuracy (%) and images per second.
pub struct Running {
    pub loss: f64,
    pub accuracy: f64,
    pub images_per_s: f64,
}

/// Where the loop reports (the library draws nothing; the CLI draws a bar): after every batch, and
/// after every epoch, whose returned JSON (an evaluation, say) joins the epoch's metrics line.
pub trait Progress {
    /// Batch `done` of `of` of epoch `epoch` (from 1) has finished.
    fn batch(&mut self, _epoch: usize, _done: usize, _of: usize, _running: &Running) {}
    fn epoch(&mut self, report: &EpochReport, student: &mut Model) -> Result<serde_json::Value>;
}

/// A `Progress` that answers only epochs, with a closure.
pub struct OnEpoch<F>(pub F);

impl<F: FnMut(&EpochReport, &mut Model) -> Result<serde_json::Value>> Progress for OnEpoch<F> {
    fn epoch(&mut self, report: &EpochReport, student: &mut Model) -> Result<serde_json::Value> {
        (self.0)(report, student)
    }
}

/// Trains `student` for `cfg.epochs` on `data`, writing into `dir`. With `resume`, an existing
/// checkpoint in `dir` is continued (it must come from the same configuration). `progress` hears of
/// every batch and epoch.
pub fn train(
    cfg: &TrainCfg,
    student: &mut Model,
    mut teacher: Option<&mut Model>,
    data: &Dataset,
    dir: &RunDir,
    resume: bool,
    progress: &mut impl Progress,
) -> Result<()> {
    cfg.objective.validate()?;
    if cfg.batch == 0 || data.is_empty() {
        return Err(err!("nothing to train on: batch size {} and {} training images", cfg.batch, data.len()));
    }
    let ranks = cfg.ranks.group.size();
    let last = data.len() - (data.len() - 1) / cfg.batch * cfg.batch;
    if last < ranks {
        return Err(err!(
            "{} training images in batches of {} leave a last batch of {last}, fewer than the {ranks} ranks \
             that share it: change --limit or --batch-size",
            data.len(),
            cfg.batch
        ));
    }
    let leads = cfg.ranks.group.leads();
    student.sync_bn = cfg.ranks.bn_group();
    if leads {
        std::fs::create_dir_all(&dir.0).map_err(|e| Error::io(&dir.0, e))?;
    }
    let sgd = SgdCfg { lr: cfg.lr, momentum: cfg.momentum, weight_decay: cfg.weight_decay, nesterov: false };
    let mut opt = Sgd::new(sgd, &student.params);
    let ckpt = dir.checkpoint();
    let start = if resume && ckpt.exists() {
        load_checkpoint(&ckpt, student, &mut opt, cfg)?
    } else if resume {
        return Err(err!("--resume: no checkpoint at {}", ckpt.display()));
    } else {
        0
    };
    let mut stepper = Stepper::new(cfg.objective.clone(), cfg.pgd);
    stepper.ranks = cfg.ranks.clone();
    stepper.ranks.attach(&student.device())?;
    let iters = data.len().div_ceil(cfg.batch);
    for epoch in start..cfg.epochs {
        let started = Instant::now();
        let mut rng = StdRng::seed_from_u64(cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(epoch as u64));
        let order = shuffled(data.len(), &mut rng);
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for (i, idx) in order.chunks(cfg.batch).enumerate() {
            let (mut x, y) = data.batch(idx);
            if cfg.augment {
                augment(&mut x, &mut rng);
            }
            opt.cfg.lr = cfg.lr_at(epoch as f64 + i as f64 / iters as f64);
            let s = stepper.step(student, teacher.as_deref_mut(), &mut opt, &x, &y, Noise::Draw(&mut rng));
            let s = s.map_err(|e| stopped(e, epoch, i, &ckpt))?;
            loss_sum += s.loss * y.len() as f64;
            correct += s.correct;
            seen += y.len();
            let running = Running {
                loss: loss_sum / seen as f64,
                accuracy: 100.0 * correct as f64 / seen as f64,
                images_per_s: seen as f64 / started.elapsed().as_secs_f64(),
            };
            if leads {
                progress.batch(epoch + 1, i + 1, iters, &running);
            }
        }
        let n = data.len() as f64;
        let report = EpochReport {
            epoch: epoch + 1,
            lr: cfg.lr_at(epoch as f64 + 1.0 - 1e-9),
            loss: loss_sum / n,
            train_acc: 100.0 * correct as f64 / n,
            seconds: started.elapsed().as_secs_f64(),
        };
        if !leads {
            continue;
        }
        save_checkpoint(&ckpt, student, &opt, epoch + 1, cfg)?;
        let extra = progress.epoch(&report, student)?;
        let mut line = serde_json::json!({
            "epoch": report.epoch, "lr": report.lr, "loss": report.loss, "train_acc": report.train_acc,
            "seconds": report.seconds, "images_per_s": n / report.seconds,
        });
        if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
            obj.extend(more);
        }
        append_line(&dir.metrics(), &line.to_string())?;
    }
    student.sync_bn = None;
    if leads { student.save(dir.weights()) } else { Ok(()) }
}

/// The error of a step that failed at batch `i` of epoch `epoch` (from 0), naming the checkpoint
/// that stays.
fn stopped(e: Error, epoch: usize, i: usize, ckpt: &Path) -> Error {
    let kept = match epoch {
        0 => String::new(),
        _ => format!(", the checkpoint of epoch {epoch} is kept at {}", ckpt.display()),
    };
    err!("epoch {} batch {}: {e}; stopped{kept}", epoch + 1, i + 1)
}

fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
    writeln!(f, "{line}").map_err(|e| Error::io(path, e))
}
