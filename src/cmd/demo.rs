//! `demo`: the README's main job. On Fashion-MNIST (ε = 0.1) it distills small students from a
//! robust SmallCNN teacher with RSLAD and MMARD, trains a natural student for contrast, and prints
//! clean / PGD-20 / APGD-CE accuracy side by side. The teacher ships inside the binary (made by the
//! command in `TEACHER_RECIPE`); `--train-teacher` makes it from scratch instead.
use super::data::DataArgs;
use super::progress::Bar;
use clap::Args;
use mmard::Result;
use mmard::ard::methods::Method;
use mmard::ard::step::InnerPgd;
use mmard::ard::train::{RunDir, Schedule, TrainCfg, train};
use mmard::attack::{Attack, robust_accuracy};
use mmard::dist::Solo;
use mmard::io::datasets::{DatasetKind, Split};
use mmard::io::safetensors::TensorFile;
use mmard::nn::{Arch, Model, Overrides, Placement, SmallCnnCfg};
use std::path::PathBuf;
use std::time::Instant;

/// The shipped teacher: `mmard train` with `TEACHER_RECIPE`'s flags.
const TEACHER: &[u8] = include_bytes!("../../assets/teacher_fmnist_small_cnn_pgd_at.safetensors");
pub const TEACHER_RECIPE: &str = "--method pgd_at --arch small_cnn --dataset fashion-mnist --limit 30000 --epochs 3 --schedule cosine --lr 0.1 --seed 0";

#[derive(Args)]
pub struct DemoArgs {
    /// Folder with the Fashion-MNIST idx files (default: /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Train the teacher from scratch (PGD-AT, TEACHER_RECIPE) instead of using the shipped one.
    #[arg(long)]
    pub train_teacher: bool,
    /// Training images for the students.
    #[arg(long, default_value_t = 8000)]
    pub limit: usize,
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    /// Test images for the evaluation.
    #[arg(long, default_value_t = 500)]
    pub eval: usize,
    /// Where the students' runs go.
    #[arg(long, default_value = "mmard-demo")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn cfg(method: Method, epochs: usize, seed: u64, lr: f32) -> TrainCfg {
    TrainCfg {
        epochs,
        batch: 128,
        lr,
        momentum: 0.9,
        weight_decay: method.weight_decay(),
        schedule: Schedule::Cosine,
        warmup: 0.0,
        seed,
        augment: false,
        pgd: InnerPgd { eps: 0.1, step: 0.025, steps: 10 },
        objective: method.objective(),
        ranks: Default::default(),
    }
}

/// Clean, PGD-20 and APGD-CE accuracy in percent.
fn evaluate(m: &mut Model, x: &mmard::Tensor, y: &[usize], seed: u64) -> Result<[f64; 3]> {
    let mut out = [0.0; 3];
    for (o, name) in out.iter_mut().zip(["clean", "pgd20", "apgd-ce"]) {
        *o = robust_accuracy(m, x, y, &name.parse::<Attack>()?, 0.1, 250, seed, &Solo);
    }
    Ok(out)
}

pub fn demo(a: &DemoArgs, p: &Placement) -> Result<()> {
    let started = Instant::now();
    let data =
        |limit| DataArgs { dataset: DatasetKind::FashionMnist, data_dir: a.data_dir.clone(), limit: Some(limit) };
    let train_set = data(a.limit).load(Split::Train)?;
    let test = data(a.eval).load(Split::Test)?;
    let (x, y) = test.batch(&(0..test.len()).collect::<Vec<_>>());
    let quiet = |epochs| Bar::new(epochs, |_: &_, _: &mut Model| Ok(serde_json::Value::Null));

    let mut teacher = p.place(if a.train_teacher {
        eprintln!("training the teacher: mmard train {TEACHER_RECIPE}");
        let full = data(30000).load(Split::Train)?;
        let mut t = p.place(Model::new(
            &Arch::SmallCnn(SmallCnnCfg { in_channels: 1, size: 28, widths: [32, 64, 128], classes: 10 }),
            Some(0),
        ));
        train(
            &cfg(Method::PgdAt, 3, 0, 0.1),
            &mut t,
            None,
            &full,
            &RunDir(a.out.join("teacher")),
            false,
            &mut quiet(3),
        )?;
        t
    } else {
        Model::from_file(&TensorFile::from_bytes("embedded teacher", TEACHER)?, &Overrides::default(), true)?.model
    });
    let student = Arch::SmallCnn(SmallCnnCfg { in_channels: 1, size: 28, widths: [16, 32, 64], classes: 10 });
    eprintln!(
        "teacher {}; students {} on {} Fashion-MNIST images, {} epochs, ε = 0.1",
        teacher.arch,
        student,
        train_set.len(),
        a.epochs
    );

    let mut rows = vec![("teacher (pgd_at)".to_string(), evaluate(&mut teacher, &x, &y, a.seed)?, 0.0)];
    for method in [Method::Natural, Method::Rslad, Method::Mmard] {
        let t0 = Instant::now();
        eprintln!("{}: training …", method.name());
        let mut s = p.place(Model::new(&student, Some(a.seed)));
        let lr = if method == Method::Natural { 0.05 } else { 0.1 };
        let t = method.objective().needs_teacher().then_some(&mut teacher);
        train(
            &cfg(method, a.epochs, a.seed, lr),
            &mut s,
            t,
            &train_set,
            &RunDir(a.out.join(method.name())),
            false,
            &mut quiet(a.epochs),
        )?;
        let secs = t0.elapsed().as_secs_f64();
        rows.push((method.name().to_string(), evaluate(&mut s, &x, &y, a.seed)?, secs));
    }

    println!("\nFashion-MNIST, ε = 0.1, {} test images (accuracy %)", test.len());
    println!("{:<18} {:>7} {:>7} {:>8} {:>9}", "model", "clean", "PGD-20", "APGD-CE", "train s");
    for (name, [c, p, ap], secs) in &rows {
        let secs = if *secs > 0.0 { format!("{secs:.0}") } else { "shipped".into() };
        println!("{name:<18} {c:>7.1} {p:>7.1} {ap:>8.1} {secs:>9}");
    }
    println!("\nstudents' runs in {}; {:.0} s in all", a.out.display(), started.elapsed().as_secs_f64());
    // AA is left out of the demo's budget: its stages cost minutes per student on 2 cores
    println!(
        "AutoAttack for a student: mmard eval --weights {}/mmard/model.safetensors --dataset fashion-mnist --limit {} --eps 0.1 --attacks aa",
        a.out.display(),
        test.len()
    );
    Ok(())
}
