//! Data parallelism under Open MPI's `mpirun` (`--features mpi`; .ci/run installs Open MPI): two
//! ranks against one process on the real Fashion-MNIST (its test split and the first training
//! images), the same global batch. Training with `--sync-bn` agrees with one process up to the
//! order of its sums, sharded `eval` and `attack` (AutoAttack included) give one process's
//! figures and images exactly, a killed rank ends the job naming it, the run resumes with any
//! number of ranks, and ranks that disagree are refused.
#![cfg(feature = "mpi")]
use mmard::io::datasets::{Dataset, DatasetKind, Split};
use mmard::io::safetensors::{TensorFile, Values, save};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TEACHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/teacher_fmnist_small_cnn_pgd_at.safetensors");

/// mmard alone (`ranks` 0) or under `mpirun -np ranks`.
fn command(ranks: usize, args: &[&str]) -> Command {
    let mmard = env!("CARGO_BIN_EXE_mmard");
    let mut c = match ranks {
        0 => Command::new(mmard),
        n => {
            let mut c = Command::new("mpirun");
            c.args(["--oversubscribe", "-np", &n.to_string(), mmard]);
            // CI machines run as root; Open MPI refuses that unless told
            c.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
            c
        }
    };
    c.args(args);
    c
}

fn run(ranks: usize, args: &[&str]) -> Output {
    let out = command(ranks, args).output().expect("mpirun (Open MPI's openmpi-bin) is installed");
    assert!(
        out.status.success(),
        "{ranks} ranks: mmard {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mpi").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn weights(path: &Path) -> BTreeMap<String, Vec<f32>> {
    let f = TensorFile::load(path).unwrap();
    f.tensors
        .iter()
        .filter_map(|(k, v)| match &v.values {
            Values::F32(d) if !k.starts_with("optimizer") => Some((k.clone(), d.clone())),
            _ => None,
        })
        .collect()
}

/// The largest difference over tensors, relative to each tensor's largest value.
fn distance(a: &Path, b: &Path) -> f64 {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .map(|(k, x)| {
            let top = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12) as f64;
            x.iter().zip(&b[k]).map(|(p, q)| (p - q).abs() as f64).fold(0.0, f64::max) / top
        })
        .fold(0.0, f64::max)
}

fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
        .collect()
}

const DATA: [&str; 4] = ["--dataset", "fashion-mnist", "--eval-limit", "0"];

/// One process sums a batch's gradient in one pass, two ranks in two halves and then adds them:
/// float32 rounding of sums over 64 images, about 1e-7 of a weight per step (measured 1e-7 after
/// one step, 9e-7 after four). 1e-5 leaves room without hiding a wrong term (a missing share or BN
/// over half a batch is off by 1e-2 or more, as the run without --sync-bn below shows).
const SUMMATION: f64 = 1e-5;

#[test]
fn two_ranks_with_sync_bn_train_as_one_process() {
    let d = dir("natural");
    let args = |out: &Path, more: &[&str]| -> Vec<String> {
        let mut a: Vec<String> =
            "train --method natural --arch small_cnn --widths 8,16,32 --limit 256 --batch-size 64 \
                                  --epochs 1 --lr 0.05"
                .split(' ')
                .map(String::from)
                .collect();
        a.extend(DATA.iter().chain(more).map(|s| s.to_string()));
        a.extend(["--out".into(), s(out).into()]);
        a
    };
    let go = |ranks, name: &str, more: &[&str]| {
        let out = d.join(name);
        let a = args(&out, more);
        run(ranks, &a.iter().map(String::as_str).collect::<Vec<_>>());
        out
    };
    let one = go(0, "one", &[]);
    let one_sync = go(0, "one-sync", &["--sync-bn"]);
    let two = go(2, "two", &["--sync-bn"]);
    let two_own_bn = go(2, "two-own-bn", &[]);
    let model = |p: &Path| std::fs::read(p.join("model.safetensors")).unwrap();
    assert_eq!(model(&one), model(&one_sync), "--sync-bn changed a one-process run");
    let (l1, l2) = (losses(&one), losses(&two));
    assert!((l1[0] - l2[0]).abs() <= 1e-6 * l1[0], "losses {l1:?} and {l2:?}");
    let d2 = distance(&one.join("model.safetensors"), &two.join("model.safetensors"));
    assert!(d2 <= SUMMATION, "two ranks with --sync-bn are {d2:e} from one process");
    let own = distance(&one.join("model.safetensors"), &two_own_bn.join("model.safetensors"));
    assert!(own > 100.0 * SUMMATION, "BatchNorm over each rank's half should differ, is {own:e} away");
}

/// Distillation's inner loop steps on the sign of the input gradient, so a difference in the
/// weights, however small, can flip steps and grow: moving every weight of a PGD-AT SmallCNN by one
/// ulp after its first step put it 3e-2 away three steps later (measured on these 64 images; this
/// MMARD run stays near 6e-7, with no step flipped). So after step 1 the ranks must agree with one
/// process to summation order, and after more steps they may be no further from it than the
/// one-ulp run is, plus summation order.
#[test]
fn two_ranks_distill_as_one_process_up_to_the_attack_amplifying_rounding() {
    let d = dir("distill");
    let go = |ranks, out: &Path, epochs: &str, more: &[&str]| {
        let mut a = vec!["distill", "--method", "mmard", "--teacher", TEACHER, "--student", "small_cnn"];
        a.extend(["--widths", "8,16,32", "--limit", "64", "--batch-size", "64", "--steps", "2", "--schedule"]);
        a.extend(["constant", "--epochs", epochs, "--sync-bn", "--out", s(out)]);
        a.extend(DATA.iter().chain(more));
        run(ranks, &a);
    };
    let (one, two, ulp) = (d.join("one"), d.join("two"), d.join("ulp"));
    go(0, &one, "1", &[]);
    go(2, &two, "1", &[]);
    let first = distance(&one.join("model.safetensors"), &two.join("model.safetensors"));
    assert!(first <= SUMMATION, "after one step two ranks are {first:e} from one process");
    assert!((losses(&one)[0] - losses(&two)[0]).abs() <= 1e-6 * losses(&one)[0]);
    // the same checkpoint for all three continuations, one of them with every weight one ulp up
    std::fs::copy(one.join("checkpoint.safetensors"), two.join("checkpoint.safetensors")).unwrap();
    std::fs::create_dir_all(&ulp).unwrap();
    let f = TensorFile::load(one.join("checkpoint.safetensors")).unwrap();
    let tensors: Vec<_> = f
        .tensors
        .iter()
        .map(|(k, v)| {
            let values = match &v.values {
                Values::F32(d) if k.ends_with("weight") && !k.starts_with("optimizer") => {
                    Values::F32(d.iter().map(|x| f32::from_bits(x.to_bits() + 1)).collect())
                }
                other => other.clone(),
            };
            (k.clone(), v.shape.clone(), values)
        })
        .collect();
    save(ulp.join("checkpoint.safetensors"), &tensors, Some(f.metadata.clone().into_iter().collect())).unwrap();
    go(0, &one, "4", &["--resume"]);
    go(0, &ulp, "4", &["--resume"]);
    go(2, &two, "4", &["--resume"]);
    let model = |p: &Path| p.join("model.safetensors");
    let (ranks, rounding) = (distance(&model(&one), &model(&two)), distance(&model(&one), &model(&ulp)));
    eprintln!("after 4 steps: two ranks {ranks:e}, one ulp {rounding:e} from one process");
    assert!(ranks <= rounding + SUMMATION, "two ranks are {ranks:e} from one process, one ulp {rounding:e}");
}

#[test]
fn sharded_eval_and_attacks_equal_one_process() {
    let d = dir("eval");
    let model = d.join("model");
    let train =
        "train --method pgd_at --arch small_cnn --widths 8,16,32 --limit 512 --batch-size 64 --epochs 1 --steps 3";
    let mut a: Vec<&str> = train.split(' ').collect();
    a.extend(DATA);
    a.extend(["--out", s(&model)]);
    run(0, &a);
    let w = model.join("model.safetensors");
    let figures = |ranks, name: &str| {
        let json = d.join(name);
        let mut a = vec!["eval", "--weights", s(&w), "--dataset", "fashion-mnist", "--limit", "48", "--eps", "0.1"];
        a.extend(["--attacks", "clean,pgd20,apgd-ce,aa", "--batch-size", "16", "--aa-batch", "12", "--json", s(&json)]);
        run(ranks, &a);
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        for stage in v["aa_protocol"]["stages"].as_array_mut().unwrap() {
            stage.as_object_mut().unwrap().remove("seconds");
        }
        v
    };
    let (one, two) = (figures(0, "one.json"), figures(2, "two.json"));
    assert_eq!(one, two, "sharded eval differs from one process");
    assert!(one["aa_protocol"]["stages"].as_array().unwrap().len() >= 2, "AutoAttack ended before its second stage");
    // `attack`'s images, on the first 40 test images
    let input = d.join("input.safetensors");
    let fmnist = DatasetKind::FashionMnist;
    let test = Dataset::load(fmnist, &fmnist.default_dir().unwrap(), Split::Test).unwrap();
    let (x, y) = test.batch(&(0..40).collect::<Vec<_>>());
    let labels = Values::I64(y.iter().map(|&v| v as i64).collect());
    save(
        &input,
        &[("input".into(), x.shape().to_vec(), Values::F32(x.to_vec())), ("labels".into(), vec![40], labels)],
        None,
    )
    .unwrap();
    for attack in ["pgd20", "aa"] {
        let adv = |ranks, name: &str| {
            let out = d.join(name);
            let a = ["attack", "--weights", s(&w), "--input", s(&input), "--attack", attack, "--eps", "0.1"];
            let mut a = a.to_vec();
            a.extend(["--batch-size", "16", "--aa-batch", "12", "--output", s(&out)]);
            run(ranks, &a);
            std::fs::read(out).unwrap()
        };
        assert!(adv(0, "one.adv") == adv(2, "two.adv"), "sharded `attack --attack {attack}` wrote other images");
    }
}

/// The pids of the ranks `mpirun` started, by rank.
fn ranks_of(mpirun: u32) -> BTreeMap<usize, u32> {
    let children = Command::new("pgrep").args(["-P", &mpirun.to_string()]).output().unwrap();
    String::from_utf8_lossy(&children.stdout)
        .split_whitespace()
        .filter_map(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let rank = env.split(|&b| b == 0).find_map(|v| v.strip_prefix(b"OMPI_COMM_WORLD_RANK="))?;
            Some((std::str::from_utf8(rank).ok()?.parse().ok()?, pid.parse().ok()?))
        })
        .collect()
}

#[test]
fn a_killed_rank_ends_the_job_naming_it_and_the_run_resumes_with_any_ranks() {
    let d = dir("kill");
    let run_dir = d.join("run");
    let mut a = vec!["train", "--method", "pgd_at", "--arch", "small_cnn", "--widths", "8,16,32", "--limit", "1024"];
    a.extend(["--batch-size", "64", "--steps", "2", "--schedule", "constant", "--epochs", "3", "--out", s(&run_dir)]);
    a.extend(DATA);
    let mut job = command(2, &a).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // kill rank 1 once the first epoch's checkpoint is written
    let started = Instant::now();
    while !run_dir.join("checkpoint.safetensors").exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint after 2 minutes");
        assert!(job.try_wait().unwrap().is_none(), "the job ended before its first checkpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pids = ranks_of(job.id());
    assert_eq!(pids.len(), 2, "ranks of mpirun: {pids:?}");
    Command::new("kill").args(["-9", &pids[&1].to_string()]).status().unwrap();
    let killed = Instant::now();
    loop {
        if job.try_wait().unwrap().is_some() {
            break;
        }
        if killed.elapsed() > Duration::from_secs(60) {
            job.kill().unwrap();
            panic!("the job still ran a minute after rank 1 was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = job.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the job succeeded with a rank killed");
    assert!(said.contains("rank 1"), "the job's end does not name rank 1:\n{said}");
    // resumed by one process and then by three ranks, the run ends with its three epochs
    let done = |p: &Path| TensorFile::load(p.join("checkpoint.safetensors")).unwrap().metadata["epochs_done"].clone();
    let resume = |ranks, epochs| {
        let mut r = a.clone();
        let at = r.iter().position(|&v| v == "--epochs").unwrap();
        r[at + 1] = epochs;
        r.push("--resume");
        run(ranks, &r);
    };
    resume(0, "2");
    assert_eq!(done(&run_dir), "2");
    resume(3, "3");
    assert_eq!(done(&run_dir), "3");
    assert_eq!(losses(&run_dir).len(), 3);
    assert!(run_dir.join("model.safetensors").exists());
}

#[test]
fn ranks_that_disagree_are_refused() {
    let d = dir("mismatch");
    // rank 1 asks for another seed
    let out = Command::new("mpirun")
        .args(["--oversubscribe", "-np", "2", "sh", "-c"])
        .arg(format!(
            "exec {} train --method natural --arch small_cnn --limit 64 --epochs 1 --dataset fashion-mnist \
             --seed $OMPI_COMM_WORLD_RANK --out {}",
            env!("CARGO_BIN_EXE_mmard"),
            s(&d.join("run"))
        ))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("ranks 0 and 1 run with a different command line"), "{said}");
    // a last batch smaller than the number of ranks
    let out =
        command(2, &["train", "--method", "natural", "--arch", "small_cnn", "--limit", "65", "--batch-size", "64"])
            .args(DATA)
            .args(["--epochs", "1", "--out", s(&d.join("run2"))])
            .output()
            .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("leave a last batch of 1, fewer than the 2 ranks"));
}

/// With `--device cuda` the ranks sum their gradients on the GPUs with NCCL (on the emulated GPU,
/// its stand-in libnccl between the processes). With BatchNorm per rank on both sides, two ranks
/// on GPUs must train as two ranks on CPUs within one process's GPU-against-CPU difference after a
/// step (1e-6 measured for both; 1e-5 as `tests/cuda_parity.rs` allows a step's loss); with
/// `--sync-bn`, two ranks on GPUs as one process on a GPU, to summation order.
#[cfg(feature = "cuda")]
#[test]
fn ranks_on_gpus_sum_with_nccl_as_ranks_on_cpus_and_as_one_gpu() {
    if let Err(e) = mmard::Device::open("cuda", Default::default()) {
        assert!(std::env::var_os("MMARD_REQUIRE_GPU").is_none(), "MMARD_REQUIRE_GPU is set: {e}");
        return println!("skipped: {e}");
    }
    let d = dir("nccl");
    let go = |ranks, device: &str, out: &Path, more: &[&str]| {
        let mut a = vec!["--device", device, "distill", "--method", "mmard", "--teacher", TEACHER];
        a.extend(["--student", "small_cnn", "--widths", "8,16,32", "--limit", "64", "--batch-size", "64"]);
        a.extend(["--steps", "1", "--epochs", "1", "--out", s(out)]);
        a.extend(DATA.iter().chain(more));
        String::from_utf8_lossy(&run(ranks, &a).stderr).into_owned()
    };
    let model = |p: &Path| p.join("model.safetensors");
    let (gpus, cpus) = (d.join("gpus"), d.join("cpus"));
    let said = go(2, "cuda", &gpus, &[]);
    assert!(said.contains("2 ranks (gradients summed by NCCL)"), "{said}");
    go(2, "cpu", &cpus, &[]);
    let apart = distance(&model(&gpus), &model(&cpus));
    assert!(apart <= SUMMATION, "two ranks on GPUs are {apart:e} from two on CPUs");
    assert!((losses(&gpus)[0] - losses(&cpus)[0]).abs() <= 1e-5 * losses(&cpus)[0]);
    let (one, synced) = (d.join("one-gpu"), d.join("gpus-sync-bn"));
    go(0, "cuda", &one, &[]);
    let said = go(2, "cuda", &synced, &["--sync-bn"]);
    assert!(said.contains("BatchNorm synchronised"), "{said}");
    let apart = distance(&model(&one), &model(&synced));
    assert!(apart <= SUMMATION, "two ranks on GPUs with --sync-bn are {apart:e} from one GPU");
}
