//! `train` and `distill`: one training loop, with or without a teacher.
use super::data::DataArgs;
use super::eval::quick_eval;
use super::weights::{TeacherUnsaid, load_model};
use clap::Args;
use mmard::ard::methods::{Inner, Method, Objective, Outer, Triangle};
use mmard::ard::step::InnerPgd;
use mmard::ard::terms::Logit;
use mmard::ard::train::{self as tr, RunDir, Schedule, TrainCfg};
use mmard::dist::Ranks;
use mmard::io::datasets::{DatasetKind, Split};
use mmard::io::safetensors::TensorFile;
use mmard::nn::{Activation, Arch, ArchName, Model, Placement};
use mmard::{Result, err};
use std::path::PathBuf;

use super::progress::Bar;

mmard::named_enum! { "schedule",
/// The learning-rate schedule (`--schedule`).
pub enum ScheduleKind {
    /// The rate times --gamma at each of --milestones.
    Step = "step",
    /// From --lr down to 0 along a half cosine over the epochs.
    Cosine = "cosine",
    /// --lr throughout.
    Constant = "constant",
}
}

/// Flags of the training loop, shared by train and distill.
#[derive(Args, Clone)]
pub struct LoopArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Output folder: checkpoint.safetensors, metrics.jsonl, model.safetensors.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0.1)]
    pub lr: f32,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Default: the method's (2e-4; 5e-4 for adaad).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// The learning-rate schedule.
    #[arg(long, default_value = "step")]
    pub schedule: ScheduleKind,
    /// Epochs at which a step schedule multiplies the rate by --gamma (default: 50% and 75% of --epochs).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<usize>>,
    #[arg(long, default_value_t = 0.1)]
    pub gamma: f32,
    /// Linear warm-up, in epochs.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f32,
    /// L∞ budget (default: 8/255 for CIFAR, 0.1 for Fashion-MNIST, 0.3 for MNIST).
    #[arg(long)]
    pub eps: Option<f32>,
    /// PGD step size (default: ε/4).
    #[arg(long)]
    pub step: Option<f32>,
    /// PGD steps of the inner loop.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue the checkpoint in --out (same settings; --epochs may grow).
    #[arg(long)]
    pub resume: bool,
    /// Random crop and flip: on for CIFAR, off for the MNISTs unless given.
    #[arg(long)]
    pub augment: Option<bool>,
    /// Test images for the per-epoch clean / PGD-20 check (0: none).
    #[arg(long, default_value_t = 500)]
    pub eval_limit: usize,
    /// Under mpirun: BatchNorm normalises over the whole batch of all ranks, forward and backward,
    /// as one process would (default: each rank over its share, as PyTorch DDP does). Changes
    /// nothing in one process.
    #[arg(long)]
    pub sync_bn: bool,
}

/// Architecture of a new model; in_channels, classes and size come from the dataset.
#[derive(Args, Clone)]
pub struct NewArch {
    /// ResNet width.
    #[arg(long)]
    pub width: Option<usize>,
    /// WideResNet depth.
    #[arg(long)]
    pub depth: Option<usize>,
    /// WideResNet widening factor.
    #[arg(long)]
    pub widen: Option<usize>,
    /// SmallCNN channel widths, e.g. 32,64,128.
    #[arg(long, value_delimiter = ',')]
    pub widths: Option<Vec<usize>>,
    /// dm_wide_resnet activation.
    #[arg(long)]
    pub activation: Option<Activation>,
}

impl NewArch {
    pub fn arch(&self, name: ArchName, kind: DatasetKind) -> Result<Arch> {
        let (c, h, _) = kind.shape();
        let mut cfg = serde_json::json!({"in_channels": c, "classes": kind.classes(), "size": h});
        for (k, v) in [("width", self.width), ("depth", self.depth), ("widen", self.widen)] {
            if let Some(v) = v {
                cfg[k] = v.into();
            }
        }
        if let Some(w) = &self.widths {
            cfg["widths"] = w.clone().into();
        }
        if let Some(a) = self.activation {
            cfg["activation"] = a.name().into();
        }
        Arch::from_config(name, &cfg)
    }
}

/// Coefficient flags: each replaces the method's default.
#[derive(Args, Clone)]
pub struct ObjectiveArgs {
    /// The method: both objectives and its paper's coefficients.
    #[arg(long)]
    pub method: Method,
    /// Inner objective replacing the method's.
    #[arg(long)]
    pub inner: Option<Inner>,
    /// Outer objective replacing the method's.
    #[arg(long)]
    pub outer: Option<Outer>,
    /// Temperature τ of the KL terms.
    #[arg(long)]
    pub tau: Option<f32>,
    /// ARD / IAD / AdaAD mixing weight α.
    #[arg(long)]
    pub alpha: Option<f32>,
    /// TRADES β.
    #[arg(long)]
    pub beta: Option<f32>,
    /// IAD's exponent on the teacher's confidence.
    #[arg(long)]
    pub iad_beta: Option<f32>,
    /// MMARD inner weight λ of KL(p_T(x) ‖ p_T(x')).
    #[arg(long)]
    pub lambda: Option<f32>,
    /// Triangle weights a,b,c of KL(p_T‖p_S(x')), KL(p_T‖p_S(x)), KL(p_S(x')‖p_S(x)).
    #[arg(long, value_delimiter = ',', value_name = "A,B,C")]
    pub tri: Option<Vec<f32>>,
    /// Triangle teacher vertex p_T(x') instead of p_T(x).
    #[arg(long)]
    pub teacher_adv: bool,
}

impl ObjectiveArgs {
    pub fn objective(&self) -> Result<Objective> {
        let mut o = self.method.objective();
        o.inner = self.inner.unwrap_or(o.inner);
        o.outer = self.outer.unwrap_or(o.outer);
        let c = &mut o.c;
        for (dst, v) in [
            (&mut c.tau, self.tau),
            (&mut c.alpha, self.alpha),
            (&mut c.beta, self.beta),
            (&mut c.iad_beta, self.iad_beta),
            (&mut c.lambda, self.lambda),
        ] {
            if let Some(v) = v {
                *dst = v;
            }
        }
        if let Some(t) = &self.tri {
            let &[a, b, cc] = t.as_slice() else {
                return Err(err!("--tri takes three weights a,b,c, got {t:?}"));
            };
            c.tri = Triangle { teacher_adv: a, teacher_nat: b, adv_nat: cc };
        }
        if self.teacher_adv {
            c.tri_teacher = Logit::TeacherAdv;
        }
        o.validate()?;
        Ok(o)
    }
}

#[derive(Args)]
pub struct TrainArgs {
    /// Architecture of the model.
    #[arg(long)]
    pub arch: ArchName,
    #[command(flatten)]
    pub new_arch: NewArch,
    #[command(flatten)]
    pub objective: ObjectiveArgs,
    #[command(flatten)]
    pub run: LoopArgs,
}

#[derive(Args)]
pub struct DistillArgs {
    /// Teacher weights (a PyTorch state_dict or RobustBench checkpoint; architecture detected).
    #[arg(long)]
    pub teacher: PathBuf,
    #[command(flatten)]
    pub teacher_unsaid: TeacherUnsaid,
    /// Student architecture.
    #[arg(long)]
    pub student: ArchName,
    #[command(flatten)]
    pub new_arch: NewArch,
    #[command(flatten)]
    pub objective: ObjectiveArgs,
    #[command(flatten)]
    pub run: LoopArgs,
}

impl LoopArgs {
    pub fn cfg(&self, objective: Objective, p: &Placement) -> Result<TrainCfg> {
        let eps = self.eps.unwrap_or(self.data.dataset.default_eps());
        if eps.is_nan() || eps < 0.0 || self.steps == 0 && objective.attacks() {
            return Err(err!("--eps must be ≥ 0 and --steps ≥ 1 for adversarial training (got {eps}, {})", self.steps));
        }
        let schedule = match self.schedule {
            ScheduleKind::Constant => Schedule::Constant,
            ScheduleKind::Cosine => Schedule::Cosine,
            ScheduleKind::Step => {
                // A milestone at epoch 0 would only lower the starting rate: short runs get none.
                let default = [self.epochs / 2, self.epochs * 3 / 4].into_iter().filter(|&m| m > 0).collect();
                Schedule::Step { milestones: self.milestones.clone().unwrap_or(default), gamma: self.gamma }
            }
        };
        let augment = self.augment.unwrap_or(matches!(self.data.dataset, DatasetKind::Cifar10 | DatasetKind::Cifar100));
        Ok(TrainCfg {
            epochs: self.epochs,
            batch: self.batch_size,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay.unwrap_or(objective.method.weight_decay()),
            schedule,
            warmup: self.warmup,
            seed: self.seed,
            augment,
            pgd: InnerPgd { eps, step: self.step.unwrap_or(eps / 4.0), steps: self.steps },
            objective,
            ranks: Ranks::new(p.group.clone(), self.sync_bn),
        })
    }

    /// Loads the data and runs the loop, printing a line per epoch.
    pub fn run(&self, cfg: &mut TrainCfg, student: &mut Model, teacher: Option<&mut Model>) -> Result<()> {
        cfg.ranks.attach(&student.device())?;
        let train = self.data.load(Split::Train)?;
        let group = &cfg.ranks.group.clone();
        group.check_same("training set (--dataset, --data-dir, --limit)", || train.fingerprint())?;
        let test = if self.eval_limit > 0 {
            Some(DataArgs { limit: Some(self.eval_limit), ..self.data.clone() }.load(Split::Test)?)
        } else {
            None
        };
        let dir = RunDir(self.out.clone());
        let ranks = cfg.ranks.describe();
        group.leads().then(|| {
            eprintln!(
                "{} {} on {} ({} images), {} epochs, ε = {}{ranks}, out {}",
                cfg.objective.method.name(),
                student.arch,
                self.data.dataset.name(),
                train.len(),
                cfg.epochs,
                cfg.pgd.eps,
                self.out.display()
            )
        });
        let mut bar = Bar::new(cfg.epochs, |r: &tr::EpochReport, m: &mut Model| {
            let mut line = format!(
                "epoch {}/{}: loss {:.4}, train acc {:.1}%, lr {:.4}, {:.0} s",
                r.epoch, cfg.epochs, r.loss, r.train_acc, r.lr, r.seconds
            );
            let extra = match &test {
                Some(t) => {
                    let (clean, pgd) = quick_eval(m, t, cfg.pgd.eps, cfg.seed)?;
                    line += &format!(", test clean {clean:.1}%, PGD-20 {pgd:.1}%");
                    serde_json::json!({"test_clean": clean, "test_pgd20": pgd})
                }
                None => serde_json::Value::Null,
            };
            eprintln!("{line}");
            Ok(extra)
        });
        tr::train(cfg, student, teacher, &train, &dir, self.resume, &mut bar)?;
        group.leads().then(|| eprintln!("weights: {}", dir.weights().display()));
        Ok(())
    }
}

pub fn train(a: &TrainArgs, p: &Placement) -> Result<()> {
    let objective = a.objective.objective()?;
    if objective.needs_teacher() {
        let alone: Vec<&str> =
            Method::ALL.iter().filter(|m| !m.objective().needs_teacher()).map(|m| m.name()).collect();
        return Err(err!(
            "`train` takes a method without a teacher (--method {}); {} reads one: use `mmard distill`",
            alone.join(", "),
            a.objective.method.name()
        ));
    }
    let mut cfg = a.run.cfg(objective, p)?;
    let mut model = p.place(Model::new(&a.new_arch.arch(a.arch, a.run.data.dataset)?, Some(a.run.seed)));
    a.run.run(&mut cfg, &mut model, None)
}

pub fn distill(a: &DistillArgs, p: &Placement) -> Result<()> {
    let mut cfg = a.run.cfg(a.objective.objective()?, p)?;
    let file = TensorFile::load(&a.teacher)?;
    let mut teacher = load_model(&file, &a.teacher_unsaid.overrides(), false, p)?;
    let mut student = p.place(Model::new(&a.new_arch.arch(a.student, a.run.data.dataset)?, Some(a.run.seed)));
    if teacher.arch.classes() != student.arch.classes() || teacher.arch.in_channels() != student.arch.in_channels() {
        return Err(err!(
            "teacher {} and student {} disagree on classes or input channels",
            teacher.arch,
            student.arch
        ));
    }
    let needs = cfg.objective.needs_teacher();
    a.run.run(&mut cfg, &mut student, needs.then_some(&mut teacher))
}
