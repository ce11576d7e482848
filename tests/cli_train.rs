//! train, distill, eval and attack from the command line, on a tiny synthetic Fashion-MNIST. The
//! teacher and the student the tests share are trained once, by the first test that needs them.
use mmard::io::datasets::{Dataset, DatasetKind, Split};
use mmard::io::safetensors::{TensorFile, Values, save};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn mmard(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mmard")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// idx files of `n` 28x28 images per split; class k is a bright band at rows 2k..2k+2.
fn write_fmnist(dir: &Path, n: u32) {
    for split in ["train", "t10k"] {
        let mut img = vec![0, 0, 8, 3];
        let mut lab = vec![0, 0, 8, 1];
        img.extend(n.to_be_bytes());
        lab.extend(n.to_be_bytes());
        img.extend(28u32.to_be_bytes());
        img.extend(28u32.to_be_bytes());
        for i in 0..n {
            let y = (i % 10) as usize;
            lab.push(y as u8);
            img.extend(
                (0..784).map(
                    |p| {
                        if p / 28 >= 2 * y && p / 28 < 2 * y + 3 { 200 } else { (p * 7 + i as usize) as u8 % 40 }
                    },
                ),
            );
        }
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), img).unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), lab).unwrap();
    }
}

/// The data the tests share, 60 images a split, in a folder under the target's temporary folder
/// (emptied at the start of each run and kept after it, to be looked at when a test fails).
fn data_dir() -> &'static str {
    static DATA: OnceLock<String> = OnceLock::new();
    DATA.get_or_init(|| {
        let data = shared_root().join("data");
        std::fs::create_dir_all(&data).unwrap();
        write_fmnist(&data, 60);
        data.to_str().unwrap().into()
    })
}

fn shared_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_train");
        let _ = std::fs::remove_dir_all(&root);
        root
    })
    .clone()
}

/// The settings of every train and distill run: two tiny steps an epoch, a quick evaluation.
fn common(data: &str) -> [&str; 14] {
    [
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        data,
        "--schedule",
        "constant",
        "--batch-size",
        "20",
        "--steps",
        "2",
        "--eval-limit",
        "20",
        "--widths",
        "4,8,8",
    ]
}

/// A finished run: its folder and what it printed on stderr.
struct Run {
    dir: String,
    stderr: String,
}

impl Run {
    fn weights(&self) -> String {
        format!("{}/model.safetensors", self.dir)
    }
}

/// A small_cnn adversarially trained (PGD-AT) for 2 epochs.
fn teacher() -> &'static Run {
    static TEACHER: OnceLock<Run> = OnceLock::new();
    TEACHER.get_or_init(|| {
        let dir = shared_root().join("teacher").to_str().unwrap().to_string();
        let mut args = vec!["train", "--method", "pgd_at", "--arch", "small_cnn", "--out", &dir, "--epochs", "2"];
        args.extend(common(data_dir()));
        let (ok, _, stderr) = mmard(&args);
        assert!(ok, "{stderr}");
        Run { dir, stderr }
    })
}

/// RSLAD with MMARD's inner loop from `teacher()` into a small_cnn in `out`, for `epochs` in all.
fn distill(out: &str, epochs: &str, resume: bool) -> (bool, String, String) {
    let weights = teacher().weights();
    let mut args = vec![
        "distill",
        "--method",
        "rslad",
        "--inner",
        "mmard",
        "--teacher",
        &weights,
        "--student",
        "small_cnn",
        "--out",
        out,
        "--epochs",
        epochs,
    ];
    if resume {
        args.push("--resume");
    }
    args.extend(common(data_dir()));
    mmard(&args)
}

/// The student `distill` makes in 2 epochs.
fn student() -> &'static Run {
    static STUDENT: OnceLock<Run> = OnceLock::new();
    STUDENT.get_or_init(|| {
        let dir = shared_root().join("student").to_str().unwrap().to_string();
        let (ok, _, stderr) = distill(&dir, "2", false);
        assert!(ok, "{stderr}");
        Run { dir, stderr }
    })
}

#[test]
fn train_writes_weights_and_a_metrics_line_an_epoch() {
    let t = teacher();
    assert!(t.stderr.contains("epoch 2/2") && t.stderr.contains("PGD-20"), "{}", t.stderr);
    assert!(Path::new(&t.weights()).is_file());
    let metrics = std::fs::read_to_string(format!("{}/metrics.jsonl", t.dir)).unwrap();
    assert_eq!(metrics.lines().count(), 2);
    assert!(metrics.contains("\"test_pgd20\""), "{metrics}");
}

#[test]
fn train_refuses_distillation_methods() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let out = out.to_str().unwrap();
    let (ok, _, err) =
        mmard(&["train", "--method", "rslad", "--arch", "small_cnn", "--out", out, "--data-dir", data_dir()]);
    assert!(!ok && err.contains("mmard distill"), "{err}");
}

#[test]
fn distill_writes_the_student() {
    let s = student();
    assert!(s.stderr.contains("epoch 2/2"), "{}", s.stderr);
    assert!(Path::new(&s.weights()).is_file());
}

#[test]
fn resume_past_the_end_extends_the_run_by_one_epoch() {
    // On a copy of the student, which the other tests read.
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&student().dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    let (ok, _, err) = distill(tmp.path().to_str().unwrap(), "3", true);
    assert!(ok, "{err}");
    assert!(err.contains("epoch 3/3") && !err.contains("epoch 1/3"), "{err}");
}

#[test]
fn eval_prints_every_attack_and_writes_the_autoattack_record() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("eval.json");
    let (ok, out, err) = mmard(&[
        "eval",
        "--weights",
        &student().weights(),
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        data_dir(),
        "--limit",
        "30",
        "--attacks",
        "clean,fgsm,pgd20,cw,apgd-ce,apgd-t,fab-t,square,aa",
        "--aa-batch",
        "12",
        "--seed",
        "4",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("apgd-t") && out.contains("after square"), "{out}");
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["n"], 30);
    let clean = j["clean"].as_f64().unwrap();
    for a in ["fgsm", "pgd20", "cw", "apgd-ce", "apgd-t", "fab-t", "square", "aa"] {
        assert!(j[a].as_f64().unwrap() <= clean, "{a} above clean: {j}");
    }
    // AutoAttack's record: the protocol's settings and each stage, its accuracy never rising.
    let p = &j["aa_protocol"];
    assert_eq!((p["seed"].as_u64(), p["batch"].as_u64(), p["clean"].as_f64()), (Some(4), Some(12), Some(clean)));
    let stages = p["stages"].as_array().unwrap();
    let accs: Vec<f64> = stages.iter().map(|s| s["accuracy"].as_f64().unwrap()).collect();
    assert!(accs.windows(2).all(|w| w[1] <= w[0]) && accs.last() == j["aa"].as_f64().as_ref(), "{p}");
    assert_eq!(stages[0]["attack"], "apgd-ce");
}

#[test]
fn eval_refuses_a_negative_eps() {
    let sw = student().weights();
    let (ok, _, err) = mmard(&["eval", "--weights", &sw, "--data-dir", data_dir(), "--limit", "5", "--eps=-0.1"]);
    assert!(!ok && err.contains("--eps must be ≥ 0"), "{err}");
}

/// `mmard attack` with the teacher's weights and ε = 0.1, from `input` into `output`, with `more`.
fn attack(input: &Path, output: &Path, more: &[&str]) -> (bool, String, String) {
    let weights = teacher().weights();
    let (input, output) = (input.to_str().unwrap(), output.to_str().unwrap());
    let mut args = vec!["attack", "--weights", &weights, "--input", input, "--eps", "0.1", "--output", output];
    args.extend(more);
    mmard(&args)
}

#[test]
fn attack_names_a_missing_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, out, err) = attack(&tmp.path().join("none.safetensors"), &tmp.path().join("adv.safetensors"), &[]);
    assert!(!ok && err.contains("none.safetensors"), "{out}{err}");
}

/// `mmard attack --attack <attack_name>` on a batch of 12 test images with their labels: adversarial
/// examples within ε = 0.1 of them come out, beside the labels.
fn attack_writes_examples_within_eps(attack_name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (batch, adv) = (tmp.path().join("batch.safetensors"), tmp.path().join("adv.safetensors"));
    let test = Dataset::load(DatasetKind::FashionMnist, Path::new(data_dir()), Split::Test).unwrap();
    let (x, y) = test.batch(&(0..12).collect::<Vec<_>>());
    save(
        &batch,
        &[
            ("input".into(), x.shape().to_vec(), Values::F32(x.data().to_vec())),
            ("labels".into(), vec![12], Values::I64(y.iter().map(|&v| v as i64).collect())),
        ],
        None,
    )
    .unwrap();
    let (ok, out, err) = attack(&batch, &adv, &["--attack", attack_name, "--batch-size", "5", "--aa-batch", "7"]);
    assert!(ok && out.contains("of 12 still classified correctly"), "{attack_name}: {out}{err}");
    let f = TensorFile::load(&adv).unwrap();
    let xa = f.tensor("adversarial").unwrap();
    assert_eq!(xa.shape(), x.shape());
    assert!(
        xa.data().iter().zip(x.data()).all(|(a, b)| (a - b).abs() <= 0.1 + 1e-6 && (0.0..=1.0).contains(a)),
        "{attack_name}"
    );
    assert_eq!(f.i64s("labels").unwrap(), y.iter().map(|&v| v as i64).collect::<Vec<_>>());
}

#[test]
fn attack_apgd_ce_writes_examples_within_eps() {
    attack_writes_examples_within_eps("apgd-ce");
}

#[test]
fn attack_aa_writes_examples_within_eps() {
    attack_writes_examples_within_eps("aa");
}

#[test]
fn missing_dataset_says_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) =
        mmard(&["demo", "--data-dir", tmp.path().to_str().unwrap(), "--out", tmp.path().join("o").to_str().unwrap()]);
    assert!(
        !ok && err.contains("train-images-idx3-ubyte") && err.contains("apt-get install dataset-fashion-mnist"),
        "{err}"
    );
    let (ok, _, err) = mmard(&["eval", "--weights", "w.safetensors", "--dataset", "cifar10"]);
    assert!(!ok && (err.contains("--data-dir") || err.contains("w.safetensors")), "{err}");
    let (ok, _, err) = mmard(&["eval", "--weights", "w.safetensors", "--dataset", "svhn"]);
    assert!(!ok && err.contains("svhn") && err.contains("fashion-mnist"), "{err}");
}

/// A DeepMind WideResNet teacher's activation is not in its file: distill asks for
/// `--teacher-activation`, and with it loads the teacher (then refuses this 3-channel teacher for
/// a 1-channel student).
#[test]
fn distill_takes_the_teacher_activation_from_its_flag() {
    let teacher =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model_dm_wrn10_1_swish.weights.safetensors");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let base = [
        "distill",
        "--method",
        "rslad",
        "--teacher",
        teacher.to_str().unwrap(),
        "--student",
        "small_cnn",
        "--out",
        out,
    ];
    let mut args = base.to_vec();
    args.extend(common(data_dir()));
    let (ok, _, err) = mmard(&args);
    assert!(!ok && err.contains("--teacher-activation"), "{err}");
    args.extend(["--teacher-activation", "swish"]);
    let (ok, _, err) = mmard(&args);
    assert!(!ok && err.contains("disagree on classes or input channels") && err.contains("swish"), "{err}");
}
