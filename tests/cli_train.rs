//! train, distill, eval and attack from the command line, on a tiny synthetic Fashion-MNIST.
use std::path::Path;
use std::process::Command;

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

#[test]
fn train_distill_eval_attack() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    write_fmnist(&data, 60);
    let d = data.to_str().unwrap();
    let run = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let common = [
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        d,
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
    ];

    let teacher = run("teacher");
    let mut args = vec!["train", "--method", "pgd_at", "--arch", "small_cnn", "--out", &teacher, "--epochs", "2"];
    args.extend(common);
    let (ok, _, err) = mmard(&args);
    assert!(ok, "{err}");
    assert!(err.contains("epoch 2/2") && err.contains("PGD-20"), "{err}");
    let weights = format!("{teacher}/model.safetensors");
    let metrics = std::fs::read_to_string(format!("{teacher}/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);
    assert!(metrics.contains("\"test_pgd20\""), "{metrics}");

    // train refuses distillation methods; distill plugs MMARD's inner loop into RSLAD
    let (ok, _, err) =
        mmard(&["train", "--method", "rslad", "--arch", "small_cnn", "--out", &run("x"), "--data-dir", d]);
    assert!(!ok && err.contains("mmard distill"), "{err}");
    let student = run("student");
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
        &student,
        "--epochs",
        "2",
    ];
    args.extend(common);
    let (ok, _, err) = mmard(&args);
    assert!(ok, "{err}");

    // resume past the end extends the run by one epoch
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
        &student,
        "--resume",
        "--epochs",
        "3",
    ];
    args.extend(common);
    let (ok, _, err) = mmard(&args);
    assert!(ok, "{err}");
    assert!(err.contains("epoch 3/3") && !err.contains("epoch 1/3"), "{err}");

    let json = run("eval.json");
    let sw = format!("{student}/model.safetensors");
    let (ok, out, err) = mmard(&[
        "eval",
        "--weights",
        &sw,
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        d,
        "--limit",
        "30",
        "--attacks",
        "clean,fgsm,pgd20,cw,apgd-ce,apgd-t,fab-t,square,aa",
        "--aa-batch",
        "12",
        "--seed",
        "4",
        "--json",
        &json,
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
    let (ok, _, err) = mmard(&["eval", "--weights", &sw, "--data-dir", d, "--limit", "5", "--eps=-0.1"]);
    assert!(!ok && err.contains("--eps must be ≥ 0"), "{err}");

    let (ok, out, err) = mmard(&[
        "attack",
        "--weights",
        &weights,
        "--input",
        &run("none.safetensors"),
        "--eps",
        "0.1",
        "--output",
        &run("adv.safetensors"),
    ]);
    assert!(!ok && err.contains("none.safetensors"), "{out}{err}");

    // attack: a batch with labels in, adversarial examples within ε out
    use mmard::io::datasets::{Dataset, DatasetKind, Split};
    use mmard::io::safetensors::{TensorFile, Values, save};
    let test = Dataset::load(DatasetKind::FashionMnist, &data, Split::Test).unwrap();
    let (x, y) = test.batch(&(0..12).collect::<Vec<_>>());
    let batch = run("batch.safetensors");
    save(
        &batch,
        &[
            ("input".into(), x.shape().to_vec(), Values::F32(x.data().to_vec())),
            ("labels".into(), vec![12], Values::I64(y.iter().map(|&v| v as i64).collect())),
        ],
        None,
    )
    .unwrap();
    let adv = run("adv.safetensors");
    for attack in ["apgd-ce", "aa"] {
        let (ok, out, err) = mmard(&[
            "attack",
            "--weights",
            &weights,
            "--input",
            &batch,
            "--attack",
            attack,
            "--eps",
            "0.1",
            "--output",
            &adv,
            "--batch-size",
            "5",
            "--aa-batch",
            "7",
        ]);
        assert!(ok && out.contains("of 12 still classified correctly"), "{attack}: {out}{err}");
        let f = TensorFile::load(&adv).unwrap();
        let xa = f.tensor("adversarial").unwrap();
        assert_eq!(xa.shape(), x.shape());
        assert!(
            xa.data().iter().zip(x.data()).all(|(a, b)| (a - b).abs() <= 0.1 + 1e-6 && (0.0..=1.0).contains(a)),
            "{attack}"
        );
        assert_eq!(f.i64s("labels").unwrap(), y.iter().map(|&v| v as i64).collect::<Vec<_>>());
    }
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
