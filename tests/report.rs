//! `mmard report` on small folders: the tables and plots from result files and run folders, and a
//! clear message, naming the file, for each missing or broken input.
use std::path::Path;
use std::process::Command;

fn mmard(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mmard")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A result file as scripts/study.sh writes it, under a name that means nothing: the report reads
/// the config, part, method and teacher from the fields alone.
fn result(dir: &Path, (config, part, method): (&str, &str, &str), seed: u64, figures: [f64; 3], teacher: Option<&str>) {
    let mut r = serde_json::json!({
        "config": config, "part": part, "method": method, "seed": seed,
        "clean": figures[0], "pgd20": figures[1], "aa": figures[2], "train_seconds": 10.0,
        "metrics": [{"epoch": 1, "loss": 1.5, "test_clean": 60.0, "test_pgd20": 40.0}, {"epoch": 2, "loss": 1.1, "test_clean": 65.0, "test_pgd20": 44.0}],
    });
    if let Some(t) = teacher {
        r["teacher"] = t.into();
    }
    let n = std::fs::read_dir(dir).unwrap().count();
    std::fs::write(dir.join(format!("run{n}.json")), r.to_string()).unwrap();
}

#[test]
fn report_makes_tables_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    std::fs::create_dir(&res).unwrap();
    for seed in 0..3 {
        let s = seed as f64;
        result(&res, ("rslad", "methods", "rslad"), seed, [74.0 + s, 51.0, 47.0 + s], Some("big"));
        result(&res, ("mmard", "methods", "mmard"), seed, [73.0, 52.0 - s, 49.0], Some("big"));
        result(&res, ("rslad@small", "sensitivity", "rslad"), seed, [70.0, 45.0, 42.0], Some("small"));
        result(&res, ("mmard@small", "sensitivity", "mmard"), seed, [70.0, 47.0, 45.0], Some("small"));
        result(&res, ("rslad+inner", "plug", "rslad"), seed, [73.0, 51.0, 48.0], Some("big"));
        result(&res, ("mmard-lambda2", "ablation", "mmard"), seed, [72.0, 51.0, 48.5], Some("big"));
    }
    for (t, aa) in [("big", 60.0), ("small", 50.0)] {
        let r = serde_json::json!({"config": format!("teacher-{t}"), "part": "teacher", "teacher": t, "seed": 0,
            "clean": 75.0, "pgd20": 62.0, "aa": aa});
        std::fs::write(res.join(format!("t-{t}.json")), r.to_string()).unwrap();
    }
    // a bare run folder: curves only
    let run = tmp.path().join("natural-s0");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(
        run.join("metrics.jsonl"),
        "{\"epoch\":1,\"loss\":0.9,\"test_clean\":80.0}\n{\"epoch\":2,\"loss\":0.6}\n",
    )
    .unwrap();
    let out = tmp.path().join("report");
    let (ok, stdout, err) =
        mmard(&["report", res.to_str().unwrap(), run.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(stdout.contains("19 runs"), "{stdout}");
    let page = std::fs::read_to_string(out.join("report.md")).unwrap();
    // rslad's AA over seeds 47, 48, 49: mean 48, sample std 1
    assert!(page.contains("| rslad | 3 | 75.0 ± 1.0 | 51.0 ± 0.0 | 48.0 ± 1.0 | 10 |"), "{page}");
    for section in [
        "## Every method",
        "## Plug-and-play",
        "## Ablations",
        "## Teachers",
        "## MMARD's settings against the best baseline",
    ] {
        assert!(page.contains(section), "{section} missing:\n{page}");
    }
    // mmard follows the teacher by (49 − 45) / 10 AA points per teacher point, exactly; rslad by
    // 0.6, its seeds 47, 48, 49 against 42 (×3) leaving residuals −1, 0, 1: SE = √((2 / 4) / 150)
    assert!(page.contains("| mmard | 2 |") && page.contains("| 0.40 ± 0.00 * |"), "{page}");
    assert!(page.contains("| 0.60 ± 0.06 * |"), "{page}");
    for svg in ["curves.svg", "accuracy-methods.svg", "accuracy-plug.svg", "accuracy-ablations.svg", "teachers.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap_or_else(|e| panic!("{svg}: {e}"));
        assert!(text.starts_with("<svg") && (text.contains("accuracy") || text.contains("loss")), "{svg}");
        assert!(page.contains(&format!("]({svg})")), "{svg} not on the page");
    }
}

#[test]
fn missing_and_broken_inputs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = d.join("out");
    let run = |inputs: &[&Path]| {
        let mut args: Vec<&str> = vec!["report", "--out", out.to_str().unwrap()];
        args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
        mmard(&args)
    };
    let (ok, _, err) = run(&[&d.join("nowhere")]);
    assert!(!ok && err.contains("nowhere") && err.contains("no such file"), "{err}");
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (ok, _, err) = run(&[&empty]);
    assert!(!ok && err.contains("empty") && err.contains("no result files"), "{err}");
    let bad = d.join("bad-s0.json");
    std::fs::write(&bad, "{\"clean\": 70").unwrap();
    let (ok, _, err) = run(&[&bad]);
    assert!(!ok && err.contains("bad-s0.json") && err.contains("not valid JSON"), "{err}");
    let fields = "\"config\": \"rslad\", \"method\": \"rslad\", \"seed\": 0";
    std::fs::write(&bad, format!("{{{fields}, \"part\": \"methods\", \"clean\": 70, \"pgd20\": 50}}")).unwrap();
    let (ok, _, err) = run(&[&bad]);
    assert!(!ok && err.contains("bad-s0.json") && err.contains("`aa`"), "{err}");
    // the part of the study is stated, never guessed from the name
    std::fs::write(&bad, format!("{{{fields}, \"clean\": 70, \"pgd20\": 50, \"aa\": 40}}")).unwrap();
    let (ok, _, err) = run(&[&bad]);
    assert!(!ok && err.contains("bad-s0.json") && err.contains("`part`"), "{err}");
    std::fs::write(&bad, format!("{{{fields}, \"part\": \"main\", \"clean\": 70, \"pgd20\": 50, \"aa\": 40}}"))
        .unwrap();
    let (ok, _, err) = run(&[&bad]);
    assert!(!ok && err.contains("part `main`") && err.contains("methods, plug"), "{err}");
    // a run killed while writing its metrics: the half line is named
    let partial = d.join("rslad-s1");
    std::fs::create_dir(&partial).unwrap();
    std::fs::write(partial.join("metrics.jsonl"), "{\"epoch\":1,\"loss\":0.9}\n{\"epoch\":2,\"lo").unwrap();
    let (ok, _, err) = run(&[&partial]);
    assert!(!ok && err.contains("metrics.jsonl") && err.contains("line 2"), "{err}");
    std::fs::write(partial.join("metrics.jsonl"), "").unwrap();
    let (ok, _, err) = run(&[&partial]);
    assert!(!ok && err.contains("no epoch finished"), "{err}");
    std::fs::write(partial.join("metrics.jsonl"), "{\"epoch\":1,\"loss\":0.9}\n").unwrap();
    std::fs::write(partial.join("model.safetensors"), b"truncated").unwrap();
    let (ok, _, err) = run(&[&partial]);
    assert!(!ok && err.contains("model.safetensors"), "{err}");
}
