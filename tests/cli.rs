//! The command line as a user meets it: `inspect` and `predict` on shipped fixtures, and the
//! errors for broken or mismatched files, each of which must name the file or tensor at fault.
use mmard::io::safetensors::{self as st, TensorFile, Values};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// (success, stdout, stderr) of `mmard ARGS`.
fn mmard(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mmard")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The tensors of a fixture weights file, as (name, shape, values).
fn weights(name: &str) -> Vec<(String, Vec<usize>, Values)> {
    TensorFile::load(fixture(name)).unwrap().tensors.into_iter().map(|(k, s)| (k, s.shape, s.values)).collect()
}

/// Every command lists, in `--help`, each name its flags accept: the lists come from the one
/// definition of each enum (`named_enum!`, `Attack`'s table), and a wrong name is refused with them.
#[test]
fn help_lists_every_name_the_parsers_accept() {
    use mmard::ard::methods::{Inner, Method, Outer};
    use mmard::attack::Attack;
    use mmard::nn::ArchName;
    let archs: Vec<_> = ArchName::ALL.iter().map(|a| a.name()).collect();
    let methods: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
    let inner: Vec<_> = Inner::ALL.iter().map(|m| m.name()).collect();
    let outer: Vec<_> = Outer::ALL.iter().map(|m| m.name()).collect();
    let attacks: Vec<_> = Attack::names().collect();
    let datasets: Vec<_> = mmard::io::datasets::DatasetKind::ALL.iter().map(|d| d.name()).collect();
    let cases: [(&[&str], Vec<&[&str]>); 7] = [
        (&["train", "--help"], vec![&archs, &methods, &inner, &outer, &datasets]),
        (&["distill", "--help"], vec![&archs, &methods, &inner, &outer, &datasets]),
        (&["bench", "step", "--help"], vec![&archs, &methods]),
        (&["eval", "--help"], vec![&archs, &attacks, &datasets]),
        (&["attack", "--help"], vec![&archs, &attacks]),
        (&["inspect", "--help"], vec![&archs]),
        (&["predict", "--help"], vec![&archs]),
    ];
    for (cmd, lists) in cases {
        let (ok, out, _) = mmard(cmd);
        assert!(ok, "{cmd:?}");
        for name in lists.iter().flat_map(|l| l.iter()) {
            assert!(out.contains(&format!("- {name}:")), "{cmd:?} does not list `{name}`:\n{out}");
        }
    }
    for (args, listed) in [
        (&["train", "--arch", "vgg", "--method", "natural", "--out", "x"][..], &archs),
        (&["train", "--arch", "small_cnn", "--method", "fast", "--out", "x"], &methods),
        (&["eval", "--weights", "w", "--attacks", "clean,fab"], &attacks),
    ] {
        let (ok, _, err) = mmard(args);
        assert!(!ok && listed.iter().all(|n| err.contains(n)), "{args:?}: {err}");
    }
}

#[test]
fn inspect_lists_tensors_and_detects_architecture() {
    let (ok, out, _) = mmard(&["inspect", p(&fixture("model_resnet18_w16.weights.safetensors"))]);
    assert!(ok);
    assert!(out.contains("layer4.1.bn2.num_batches_tracked") && out.contains("I64"), "{out}");
    assert!(out.contains("conv1.weight") && out.contains("[16, 3, 3, 3]"), "{out}");
    assert!(out.contains(r#"architecture: resnet18 {"classes":10,"in_channels":3,"width":16}"#), "{out}");
    assert!(out.contains("parameters: 701466 trainable"), "{out}");
}

/// `mmard predict` on a fixture's weights gives the fixture's eval-mode logits (PyTorch's).
fn predict_matches(case: &str, flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("logits.safetensors");
    let weights = fixture(&case.replace(".safetensors", ".weights.safetensors"));
    let case = fixture(case);
    let mut args =
        vec!["predict", "--weights", p(&weights), "--input", p(&case), "--output", p(&out), "--batch-size", "3"];
    args.extend(flags);
    let (ok, _, err) = mmard(&args);
    assert!(ok, "{err}");
    let ours = TensorFile::load(&out).unwrap().tensor("logits").unwrap();
    let want = TensorFile::load(&case).unwrap().tensor("logits_eval").unwrap();
    assert_eq!(ours.shape(), want.shape());
    let diff: f64 = ours.data().iter().zip(want.data()).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = want.data().iter().map(|b| (*b as f64).powi(2)).sum::<f64>().sqrt();
    assert!(diff <= 1e-4 * norm, "{case:?}: {diff} vs {norm}");
}

#[test]
fn predict_matches_pytorch_logits() {
    predict_matches("model_small_cnn_28.safetensors", &[]);
    predict_matches("model_dm_wrn10_1_swish.safetensors", &["--activation", "swish"]);
    predict_matches("model_dm_wrn10_1_relu_c100.safetensors", &["--activation", "relu"]);
}

/// A RobustBench DM WideResNet checkpoint: detected from its names, its activation asked for (the
/// state_dict does not hold it), RobustBench's normalisation assumed with a notice; saved by mmard,
/// it loads again with no flags.
#[test]
fn robustbench_checkpoints_need_their_activation_and_mmard_files_need_nothing() {
    let w = fixture("model_dm_wrn10_1_swish.weights.safetensors");
    let (ok, out, _) = mmard(&["inspect", p(&w)]);
    assert!(ok && out.contains("not recognised") && out.contains("--activation"), "{out}");
    let (ok, out, err) = mmard(&["inspect", p(&w), "--activation", "swish"]);
    assert!(ok && out.contains("architecture: dm_wide_resnet") && out.contains(r#""activation":"swish""#), "{out}");
    assert!(err.contains("notice") && err.contains("CIFAR-10"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("dm.safetensors");
    let o = mmard::nn::Overrides { activation: Some(mmard::nn::Activation::Swish), ..Default::default() };
    mmard::nn::Model::load(&w, &o, false).unwrap().model.save(&saved).unwrap();
    let (ok, out, err) = mmard(&["inspect", p(&saved)]);
    assert!(ok && out.contains(r#""activation":"swish""#) && !err.contains("notice"), "{out}{err}");
    let (ok, _, err) = mmard(&["predict", "--weights", p(&w), "--input", p(&w), "--output", p(&saved)]);
    assert!(!ok && err.contains("--activation"), "{err}");
}

#[test]
fn truncated_file_names_file_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("model_small_cnn_28.weights.safetensors")).unwrap();
    let path = dir.path().join("cut.safetensors");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) = mmard(&["inspect", p(&path)]);
    assert!(!ok);
    assert!(
        err.contains("cut.safetensors")
            && err.contains(&format!("expected {} bytes", bytes.len()))
            && err.contains("truncated"),
        "{err}"
    );
    std::fs::write(&path, &bytes[..12]).unwrap();
    let (ok, _, err) = mmard(&["inspect", p(&path)]);
    assert!(!ok && err.contains("cut.safetensors") && err.contains("truncated"), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = weights("model_small_cnn_28.weights.safetensors");
    t.retain(|(k, _, _)| k != "bn2.running_var");
    let w = dir.path().join("w.safetensors");
    st::save(&w, &t, None).unwrap();
    let (ok, _, err) = mmard(&[
        "predict",
        "--weights",
        p(&w),
        "--input",
        p(&fixture("model_small_cnn_28.safetensors")),
        "--output",
        p(&dir.path().join("o.safetensors")),
    ]);
    assert!(!ok && err.contains("bn2.running_var") && err.contains("missing"), "{err}");
}

#[test]
fn wrong_shape_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = mmard(&[
        "predict",
        "--weights",
        p(&fixture("model_resnet18_w16.weights.safetensors")),
        "--width",
        "32",
        "--input",
        p(&fixture("model_resnet18_w16.safetensors")),
        "--output",
        p(&dir.path().join("o.safetensors")),
    ]);
    assert!(
        !ok && err.contains("conv1.weight") && err.contains("[32, 3, 3, 3]") && err.contains("[16, 3, 3, 3]"),
        "{err}"
    );
}

#[test]
fn unknown_dtype_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u8.safetensors");
    let data = [1u8, 2, 3];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![3], &data).unwrap();
    safetensors::serialize_to_file([("pixels", view)], None, &path).unwrap();
    let (ok, _, err) = mmard(&["inspect", p(&path)]);
    assert!(!ok && err.contains("pixels") && err.contains("U8"), "{err}");
}

#[test]
fn extra_tensors_warn_or_fail_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = weights("model_small_cnn_28.weights.safetensors");
    t.push(("sub_block1.conv.weight".into(), vec![2], Values::F32(vec![0.0, 1.0])));
    let w = dir.path().join("w.safetensors");
    st::save(&w, &t, None).unwrap();
    let (ok, out, err) = mmard(&["inspect", p(&w)]);
    assert!(
        ok && err.contains("warning") && err.contains("sub_block1.conv.weight") && out.contains("small_cnn"),
        "{err}"
    );
    let (ok, _, err) = mmard(&["inspect", "--strict", p(&w)]);
    assert!(!ok && err.contains("--strict") && err.contains("sub_block1.conv.weight"), "{err}");
    let (ok, _, err) = mmard(&[
        "predict",
        "--strict",
        "--weights",
        p(&w),
        "--input",
        p(&fixture("model_small_cnn_28.safetensors")),
        "--output",
        p(&dir.path().join("o.safetensors")),
    ]);
    assert!(!ok && err.contains("sub_block1.conv.weight"), "{err}");
}

#[test]
fn wrong_input_channels_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = mmard(&[
        "predict",
        "--weights",
        p(&fixture("model_small_cnn_28.weights.safetensors")),
        "--input",
        p(&fixture("model_resnet18_w16.safetensors")),
        "--output",
        p(&dir.path().join("o.safetensors")),
    ]);
    assert!(!ok && err.contains("model_resnet18_w16.safetensors") && err.contains("expects 1 channels"), "{err}");
}

#[test]
fn bench_step_reports_every_phase_as_json() {
    let (ok, out, err) = mmard(&[
        "bench",
        "step",
        "--student",
        "small_cnn",
        "--student-config",
        r#"{"widths":[4,8,8]}"#,
        "--teacher",
        "small_cnn",
        "--method",
        "mmard",
        "--batch",
        "4",
        "--pgd-steps",
        "2",
        "--input",
        "1x16x16",
        "--repeats",
        "1",
        "--json",
    ]);
    assert!(ok, "{err}");
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for k in ["teacher_forward", "inner", "outer", "total", "peak_rss_mib"] {
        assert!(j[k].as_f64().unwrap() > 0.0, "{k}: {j}");
    }
    let (ok, _, err) = mmard(&["bench", "step", "--student", "small_cnn", "--method", "rslad", "--input", "1x16x16"]);
    assert!(!ok && err.contains("--teacher"), "{err}");
}

/// `bench kernels` times every memory-bound kernel against the copy of the same tensor, and says
/// whether the device is the emulated GPU.
#[test]
fn bench_kernels_reports_each_kernel_against_the_copy() {
    let (ok, out, err) = mmard(&["bench", "kernels", "--batch", "2", "--repeats", "2", "--json"]);
    assert!(ok, "{err}");
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["emulated"], false, "{j}");
    assert_eq!(j["shape"], serde_json::json!([2, 32, 32, 32]), "{j}");
    let kernels = j["kernels"].as_array().unwrap();
    let names: Vec<&str> = kernels.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "copy");
    for want in ["relu_forward", "add", "maxpool_fwd_bwd", "bn_train_fwd_bwd", "pgd_step", "triangle_loss_128x10"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for k in kernels {
        let (ms, gib, share) =
            (k["ms"].as_f64().unwrap(), k["gib_s"].as_f64().unwrap(), k["share_of_copy"].as_f64().unwrap());
        assert!(ms > 0.0 && gib.is_finite() && gib > 0.0 && share > 0.0, "{k}");
    }
    let (ok, _, err) = mmard(&["bench", "kernels", "--repeats", "0"]);
    assert!(!ok && err.contains("--repeats"), "{err}");
    let (ok, _, err) = mmard(&["bench", "kernels", "--batch", "1000000"]);
    assert!(!ok && err.contains("--batch 1000000") && err.contains("at most 4096"), "{err}");
}

/// Output into a pipe nobody reads (`mmard … | head` after head has quit) ends mmard by SIGPIPE,
/// as any Unix tool, not by a panic in println!. The read end is closed before mmard starts, so
/// its first line meets the broken pipe.
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mmard"))
        .args(["bench", "objective", "--method", "mmard"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    const SIGPIPE: i32 = 13;
    assert_eq!(out.status.signal(), Some(SIGPIPE), "{:?}: {stderr}", out.status);
}
