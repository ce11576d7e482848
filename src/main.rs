//! The `mmard` command line.
mod cmd;

use clap::{Parser, Subcommand};
use cmd::eval::{AttackArgs, EvalArgs};
use cmd::train::{DistillArgs, TrainArgs};
use cmd::weights::ArchArgs;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mmard",
    version,
    about = "Adversarial robustness distillation: train, attack and evaluate robust students"
)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Where models run: cpu, cuda or cuda:N (a build with `--features cuda`).
    #[arg(long, global = true, default_value = "cpu")]
    device: String,
    /// Allow TensorFloat-32 in cuDNN convolutions (faster, inputs rounded to 10 mantissa bits).
    #[arg(long, global = true)]
    tf32: bool,
    /// Only cuDNN convolution algorithms that give the same bits on every run (on a GPU the
    /// fastest backward ones often add with atomics, in an order that varies).
    #[arg(long, global = true)]
    deterministic: bool,
    /// Run eval-mode BatchNorm as its own pass instead of folding it into the convolution before
    /// it (the fold is on by default; this is for measuring what it gains).
    #[arg(long, global = true)]
    no_fold: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List every tensor of a safetensors file (name, dtype, shape), the parameter count, and the
    /// architecture and config detected from the names and shapes.
    Inspect {
        file: PathBuf,
        #[command(flatten)]
        arch: ArchArgs,
    },
    /// Eval-mode logits of a batch of images, written as tensor `logits`.
    Predict {
        /// Weights: a PyTorch state_dict in safetensors (f32, f16 or bf16).
        #[arg(long)]
        weights: PathBuf,
        /// Images: an NCHW f32 tensor with values in [0, 1].
        #[arg(long)]
        input: PathBuf,
        /// Name of the image tensor in --input.
        #[arg(long, default_value = "input")]
        tensor: String,
        #[arg(long)]
        output: PathBuf,
        /// Images per forward pass.
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
        #[command(flatten)]
        arch: ArchArgs,
    },
    /// Train a model from scratch: natural, PGD-AT or TRADES (teachers and baselines).
    Train(TrainArgs),
    /// Distill a robust student from a teacher with MMARD or a baseline.
    Distill(DistillArgs),
    /// Accuracy under attack on a test set: clean, FGSM, PGD-20, CW∞, APGD-CE, APGD-T.
    Eval(EvalArgs),
    /// Write adversarial examples of a batch to safetensors.
    Attack(AttackArgs),
    /// Benchmarks: `bench step` times one training step by phase, `bench kernels` the memory-bound kernels alone.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCmd),
    /// Tables and SVG plots of a study (mean ± std over seeds) from its result files and run folders.
    Report(cmd::report::ReportArgs),
    /// What this build and machine can run: the CPU, and with `--device cuda` the driver, the GPU,
    /// the CUDA libraries loaded (paths) and each kernel module against its CPU twin. Exits non-zero
    /// naming what failed.
    Doctor,
    /// The README's main job: on Fashion-MNIST, distill students with RSLAD and MMARD from a robust
    /// teacher, train a natural student for contrast, and compare their robustness.
    Demo(cmd::demo::DemoArgs),
}

fn main() {
    // Output piped into a reader that stops early (`mmard report … | head -1`) ends mmard quietly,
    // as a Unix tool does, instead of panicking in println! on the broken pipe.
    // SAFETY: restores the default action of one signal, before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    mmard::alloc::keep_freed_pages();
    let cli = Cli::parse();
    let group = cmd::ranks::join().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    // From here an error ends every rank at once (MPI_Abort), naming the rank that saw it.
    let fail = |e: &dyn std::fmt::Display| -> ! {
        match group.size() {
            1 => eprintln!("error: {e}"),
            n => eprintln!("error on rank {} of {n}: {e}", group.rank()),
        }
        group.abort(1)
    };
    if group.size() > 1 {
        // A panic on one rank must end them all: unwinding would finalize MPI, which waits for
        // ranks that wait in a collective for this one. (Weak: the group must drop at the end of
        // main, which finalizes MPI.)
        let (all, report) = (std::sync::Arc::downgrade(&group), std::panic::take_hook());
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            if let Some(g) = all.upgrade() {
                eprintln!("(that panic was on rank {} of {}; ending every rank)", g.rank(), g.size());
                g.abort(101)
            }
        }));
        if !matches!(cli.cmd, Cmd::Train(_) | Cmd::Distill(_) | Cmd::Eval(_) | Cmd::Attack(_) | Cmd::Bench(_)) {
            fail(
                &"under mpirun only train, distill, eval, attack and bench share their work; run this command in one process",
            );
        }
    }
    if let Some(t) = cli.threads.or(cmd::ranks::threads(&*group))
        && let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(t.max(1)).build_global()
    {
        fail(&format!("--threads {t}: {e}"));
    }
    let gpu_opts = mmard::GpuOptions { tf32: cli.tf32, deterministic: cli.deterministic };
    // the doctor opens the device itself, to report what fails instead of stopping at it
    if let Cmd::Doctor = cli.cmd {
        std::process::exit(cmd::doctor::doctor(&cli.device, gpu_opts));
    }
    cmd::ranks::check(&*group).unwrap_or_else(|e| fail(&e));
    let place = match mmard::Device::open_for_rank(&cli.device, gpu_opts, cmd::ranks::local_rank(&*group)) {
        Ok(device) => mmard::nn::Placement { device, fold: !cli.no_fold, group: group.clone() },
        Err(e) => fail(&e),
    };
    let p = &place;
    let result = match cli.cmd {
        Cmd::Inspect { file, arch } => cmd::weights::inspect(&file, &arch, p),
        Cmd::Predict { weights, input, tensor, output, batch_size, arch } => {
            cmd::weights::predict(&weights, &input, &tensor, &output, batch_size, &arch, p)
        }
        Cmd::Train(a) => cmd::train::train(&a, p),
        Cmd::Distill(a) => cmd::train::distill(&a, p),
        Cmd::Eval(a) => cmd::eval::eval(&a, p),
        Cmd::Attack(a) => cmd::eval::attack(&a, p),
        Cmd::Demo(a) => cmd::demo::demo(&a, p),
        Cmd::Report(a) => cmd::report::report(&a),
        Cmd::Bench(b) => cmd::bench::bench(&b, p),
        Cmd::Doctor => unreachable!("handled before the device is opened"),
    };
    if let Err(e) = result {
        fail(&e);
    }
}

#[global_allocator]
static ALLOC: mmard::alloc::MiMalloc = mmard::alloc::MiMalloc;
