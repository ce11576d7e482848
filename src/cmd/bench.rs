//! `bench step`: one full distillation step (teacher forward, K-step inner loop, outer step with
//! the update) on random data, timed by phase; medians over the repeats after one warm-up step; on
//! a GPU, what one more (untimed) step asks of it: launches, copies up, waits (`gpu_per_step`), and
//! the time of that step's convolutions run again alone (`convolutions_alone`, seconds).
//! `bench/pytorch_step.py` times the same step in PyTorch with the same JSON, evaluating the
//! objective `bench objective` prints.
use super::train::ObjectiveArgs;
use clap::{Args, Subcommand};
use mmard::ard::methods::Method;
use mmard::ard::step::{InnerPgd, Noise, Stepper};
use mmard::dist::Ranks;
use mmard::nn::optim::{Sgd, SgdCfg};
use mmard::nn::{Arch, ArchName, Model, Placement};
use mmard::{Result, Tensor, err};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Time one training step of a method (teacher forward, inner loop, outer step).
    Step(StepArgs),
    /// Print a method's objective as JSON (its terms, start, forwards, weight decay): the
    /// definition bench/pytorch_step.py evaluates, so both sides time the same method.
    Objective(ObjectivePrint),
    /// Time the memory-bound kernels (ReLU, add, max-pool, BatchNorm, the PGD step, the triangle
    /// loss) alone, each against a copy of the same tensor: ms, GiB/s, share of the copy.
    Kernels(super::bench_kernels::KernelsArgs),
}

#[derive(Args)]
pub struct ObjectivePrint {
    #[command(flatten)]
    objective: ObjectiveArgs,
    /// The L∞ budget the start radius is given for (`bench step` uses 8/255).
    #[arg(long, default_value_t = STEP_EPS)]
    eps: f32,
}

/// The budget and PGD step of `bench step` (CIFAR's 8/255 and 2/255).
const STEP_EPS: f32 = 8.0 / 255.0;

#[derive(Args)]
pub struct StepArgs {
    /// Student architecture.
    #[arg(long)]
    student: ArchName,
    /// Student config as JSON, e.g. '{"width":64}' (the architecture's defaults otherwise).
    #[arg(long, default_value = "{}")]
    student_config: String,
    /// Teacher architecture (methods that read one).
    #[arg(long)]
    teacher: Option<ArchName>,
    /// Teacher config as JSON, e.g. '{"depth":16,"widen":4}'.
    #[arg(long, default_value = "{}")]
    teacher_config: String,
    /// The method whose step is timed.
    #[arg(long)]
    method: Method,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Inner-loop PGD steps K.
    #[arg(long, default_value_t = 10)]
    pgd_steps: usize,
    /// Image shape CxHxW.
    #[arg(long, default_value = "3x32x32")]
    input: String,
    /// Number of classes of both models.
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Print one JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
}

fn arch(name: ArchName, config: &str, (c, h): (usize, usize), classes: usize) -> Result<Arch> {
    let mut cfg: serde_json::Value = serde_json::from_str(config).map_err(|e| err!("config `{config}`: {e}"))?;
    let obj = cfg.as_object_mut().ok_or_else(|| err!("config `{config}`: expected a JSON object"))?;
    obj.entry("in_channels").or_insert(c.into());
    obj.entry("classes").or_insert(classes.into());
    obj.entry("size").or_insert(h.into());
    Arch::from_config(name, &cfg)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Peak resident memory of this process in MiB (Linux; 0 elsewhere).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

pub fn bench(cmd: &BenchCmd, p: &Placement) -> Result<()> {
    let a = match cmd {
        BenchCmd::Step(a) => a,
        BenchCmd::Objective(o) => {
            println!("{}", o.objective.objective()?.to_json(o.eps));
            return Ok(());
        }
        BenchCmd::Kernels(k) => return super::bench_kernels::run(k, &p.device),
    };
    let dims: Vec<usize> = a
        .input
        .split('x')
        .map(|d| d.parse().map_err(|_| err!("--input `{}`: expected CxHxW, e.g. 3x32x32", a.input)))
        .collect::<Result<_>>()?;
    let &[c, h, w] = dims.as_slice() else {
        return Err(err!("--input `{}`: expected CxHxW", a.input));
    };
    if a.batch == 0 || a.repeats == 0 {
        return Err(err!("--batch and --repeats must be at least 1"));
    }
    if a.batch < p.group.size() {
        return Err(err!("--batch {} is smaller than the {} ranks that share it", a.batch, p.group.size()));
    }
    let obj = a.method.objective();
    let mut student = p.place(Model::new(&arch(a.student, &a.student_config, (c, h), a.classes)?, Some(1)));
    let mut teacher = match (&a.teacher, obj.needs_teacher()) {
        (Some(t), _) => Some(p.place(Model::new(&arch(*t, &a.teacher_config, (c, h), a.classes)?, Some(2)))),
        (None, true) => return Err(err!("--method {} needs --teacher", a.method.name())),
        (None, false) => None,
    };
    student.check_input(&[a.batch, c, h, w])?;
    if let Some(t) = &teacher {
        t.check_input(&[a.batch, c, h, w])?;
    }
    let mut rng = StdRng::seed_from_u64(0);
    let dev = p.device.clone();
    let x =
        Tensor::from_vec(&[a.batch, c, h, w], (0..a.batch * c * h * w).map(|_| rng.random_range(0.0..1.0)).collect())
            .into_device(&dev);
    let y: Vec<usize> = (0..a.batch).map(|_| rng.random_range(0..a.classes)).collect();
    let pgd = InnerPgd { eps: STEP_EPS, step: STEP_EPS / 4.0, steps: a.pgd_steps };
    let mut opt = Sgd::new(
        SgdCfg { lr: 0.01, momentum: 0.9, weight_decay: obj.method.weight_decay(), nesterov: false },
        &student.params,
    );
    let mut stepper = Stepper::new(obj, pgd);
    // under mpirun the ranks share the batch (BatchNorm per rank, as DDP's default); rank 0 reports
    stepper.ranks = Ranks::new(p.group.clone(), false);
    stepper.ranks.attach(&dev)?;
    stepper.timed = true;
    let (mut tf, mut inner, mut outer, mut peak_dev) = (Vec::new(), Vec::new(), Vec::new(), 0.0f64);
    for rep in 0..=a.repeats {
        let s = stepper.step(&mut student, teacher.as_mut(), &mut opt, &x, &y, Noise::Draw(&mut rng))?;
        let [t, i, o] = s.seconds.expect("a timed step reports its phases");
        peak_dev = peak_dev.max(dev.memory_used_mib());
        if rep > 0 {
            tf.push(t);
            inner.push(i);
            outer.push(o);
        }
    }
    // one more step, untimed (timing waits for the device after each phase), for what it asks of a
    // GPU, and its convolutions run again alone: the floor the rest of the step adds to
    stepper.timed = false;
    let before = dev.counts();
    let ((done, after), convs) = dev.convolutions_alone_ms(|| {
        (stepper.step(&mut student, teacher.as_mut(), &mut opt, &x, &y, Noise::Draw(&mut rng)), dev.counts())
    });
    done?;
    let per_step = before.zip(after).map(|(b, a)| a - b);
    let convs = convs.map(|ms| ms / 1e3);
    let total: Vec<f64> = (0..a.repeats).map(|i| tf[i] + inner[i] + outer[i]).collect();
    let (tf, inner, outer, total, rss) = (median(tf), median(inner), median(outer), median(total), peak_rss_mib());
    if !p.group.leads() {
        return Ok(());
    }
    if !a.json {
        println!(
            "{} step on {dev}, student {}, batch {}, K = {}: teacher forward {tf:.3} s, inner {inner:.3} s, outer {outer:.3} s, total {total:.3} s, peak RSS {rss:.0} MiB, device memory {peak_dev:.0} MiB",
            a.method.name(),
            student.arch,
            a.batch,
            a.pgd_steps
        );
        if let (Some(c), Some(convs)) = (per_step, convs) {
            println!(
                "per step on the GPU: {} launches, {} copies to the device, {} waits for the device; its convolutions alone {convs:.3} s",
                c.launches, c.uploads, c.waits
            );
        }
        return Ok(());
    }
    let gpu_per_step =
        per_step.map(|c| serde_json::json!({"launches": c.launches, "uploads": c.uploads, "waits": c.waits}));
    let out = serde_json::json!({
        "teacher_forward": tf, "inner": inner, "outer": outer, "total": total, "peak_rss_mib": rss, "device_mem_mib": peak_dev,
        "gpu_per_step": gpu_per_step, "convolutions_alone": convs,
        "config": {"student": student.arch.to_string(), "teacher": teacher.as_ref().map(|t| t.arch.to_string()), "method": a.method.name(),
                   "batch": a.batch, "pgd_steps": a.pgd_steps, "threads": rayon::current_num_threads(), "device": dev.to_string(),
                   "ranks": p.group.size()},
    });
    println!("{out}");
    Ok(())
}
