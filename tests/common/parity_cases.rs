//! The fixture cases (parity with PyTorch), dispatched on their metadata `kind`, with the
//! tolerances of the fixtures' README, on any device: inputs and models go to the device
//! `run_folder` is given, results come back to the host for the comparison. Used by
//! `tests/parity.rs` (CPU) and `tests/cuda_parity.rs` (GPU).
use mmard::attack::fab;
use mmard::io::safetensors::TensorFile;
use mmard::nn::optim::Sgd;
use mmard::nn::{Arch, DmWideResNetCfg, Model, Overrides};
use mmard::ops::conv2d::{ConvCfg, conv2d};
use mmard::ops::sgd::SgdCfg;
use mmard::ops::{batchnorm, linear, loss, pgd, pool};
use mmard::tape::{GradMode, Param, Tape};
use mmard::{Device, Tensor};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[path = "method_step.rs"]
pub(crate) mod method_step;

pub(crate) type Check = Result<(), String>;
type UnaryOp = fn(&mut Tape, &mmard::Var) -> mmard::Var;

thread_local! {
    static DEVICE: RefCell<Device> = const { RefCell::new(Device::Cpu) };
}

pub(crate) fn dev() -> Device {
    DEVICE.with(|d| d.borrow().clone())
}

/// ‖a − b‖ ≤ rel·‖b‖ + abs.
pub(crate) fn close(what: &str, a: &[f32], b: &[f32], rel: f64, abs: f64) -> Check {
    if a.len() != b.len() {
        return Err(format!("{what}: {} values, reference has {}", a.len(), b.len()));
    }
    let norm = |it: &mut dyn Iterator<Item = f64>| it.map(|v| v * v).sum::<f64>().sqrt();
    let diff = norm(&mut a.iter().zip(b).map(|(x, y)| *x as f64 - *y as f64));
    let refn = norm(&mut b.iter().map(|&y| y as f64));
    if diff.is_finite() && diff <= rel * refn + abs {
        Ok(())
    } else {
        Err(format!("{what}: ‖a−b‖ = {diff:.3e} > {rel:.0e}·‖b‖ ({refn:.3e}) + {abs:.1e}"))
    }
}

/// The fixtures' rule for input gradients in eval mode, where samples are independent: each of the
/// `n` samples within 1e-4 of its own norm, except at most one, which must be within 2e-2 (a ReLU
/// whose float64 input lies within float32 rounding of zero may switch in any float32 engine).
fn per_sample(what: &str, a: &[f32], b: &[f32], n: usize) -> Check {
    if a.len() != b.len() || n == 0 || !a.len().is_multiple_of(n) {
        return Err(format!("{what}: {} values for {n} samples, reference has {}", a.len(), b.len()));
    }
    let per = a.len() / n;
    let outside: Vec<(usize, String)> = (0..n)
        .filter_map(|i| {
            let r = i * per..(i + 1) * per;
            close(&format!("{what} sample {i}"), &a[r.clone()], &b[r], 1e-4, 0.0).err().map(|e| (i, e))
        })
        .collect();
    match outside.as_slice() {
        [] => Ok(()),
        [(i, _)] => close(
            &format!("{what} sample {i} (the one allowed past 1e-4)"),
            &a[i * per..][..per],
            &b[i * per..][..per],
            2e-2,
            0.0,
        ),
        more => Err(format!(
            "{what}: {} samples past 1e-4 (at most one may be): {}",
            more.len(),
            more.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>().join("; ")
        )),
    }
}

/// The ops tolerance: 1e-5 relative plus 1e-6·√n for references that are ~0.
fn close_op(what: &str, a: &Tensor, f: &TensorFile, name: &str) -> Check {
    let b = f.tensor(name).map_err(|e| e.to_string())?;
    if a.shape() != b.shape() {
        return Err(format!("{what}: shape {:?}, reference {:?}", a.shape(), b.shape()));
    }
    close(what, &a.host(), b.data(), 1e-5, 1e-6 * (b.numel() as f64).sqrt())
}

pub(crate) fn meta_usize(f: &TensorFile, k: &str) -> Result<usize, String> {
    f.meta(k)
        .map_err(|e| e.to_string())?
        .as_u64()
        .map(|v| v as usize)
        .ok_or(format!("metadata {k} is not a whole number"))
}

pub(crate) fn meta_str(f: &TensorFile, k: &str) -> Result<String, String> {
    f.meta(k).map_err(|e| e.to_string())?.as_str().map(str::to_owned).ok_or(format!("metadata {k} is not a string"))
}

pub(crate) fn meta_f32(f: &TensorFile, k: &str) -> Result<f32, String> {
    f.meta(k).map_err(|e| e.to_string())?.as_f64().map(|v| v as f32).ok_or(format!("metadata {k} is not a number"))
}

/// A reference tensor, on the host.
pub(crate) fn r(f: &TensorFile, name: &str) -> Result<Tensor, String> {
    f.tensor(name).map_err(|e| e.to_string())
}

/// An input tensor, on the device under test.
pub(crate) fn t(f: &TensorFile, name: &str) -> Result<Tensor, String> {
    Ok(r(f, name)?.to_device(&dev()))
}

pub(crate) fn labels(f: &TensorFile) -> Result<Vec<usize>, String> {
    Ok(f.i64s("labels").map_err(|e| e.to_string())?.into_iter().map(|v| v as usize).collect())
}

fn param(id: usize, t: Tensor) -> Param {
    Param { id, val: Arc::new(t) }
}

fn conv_case(f: &TensorFile) -> Check {
    if meta_usize(f, "dilation")? != 1 {
        return Err("dilation other than 1 is not supported".into());
    }
    let cfg =
        ConvCfg { stride: meta_usize(f, "stride")?, pad: meta_usize(f, "padding")?, groups: meta_usize(f, "groups")? };
    let has_bias = f.tensors.contains_key("b");
    let mut tape = Tape::new(GradMode::Params);
    let x = tape.var(t(f, "x")?);
    let b = if has_bias { Some(param(1, t(f, "b")?)) } else { None };
    let y = conv2d(&mut tape, &x, &param(0, t(f, "w")?), b.as_ref(), cfg);
    close_op("y", &y.val, f, "y")?;
    tape.backward(vec![(&y, t(f, "grad_y")?)]);
    close_op("grad_x", tape.grad(&x).unwrap(), f, "grad_x")?;
    close_op("grad_w", tape.param_grad(0).unwrap(), f, "grad_w")?;
    if has_bias {
        close_op("grad_b", tape.param_grad(1).unwrap(), f, "grad_b")?;
    }
    Ok(())
}

fn bn_case(f: &TensorFile) -> Check {
    let (momentum, eps) = (meta_f32(f, "momentum")?, meta_f32(f, "eps")?);
    let (gamma, beta) = (param(0, t(f, "gamma")?), param(1, t(f, "beta")?));
    for train in [true, false] {
        // each mode starts from the stored statistics, as the reference does
        let (mut rm, mut rv) = (t(f, "running_mean")?, t(f, "running_var")?);
        let mut tape = Tape::new(GradMode::Params);
        let x = tape.var(t(f, "x")?);
        let stats = if train {
            batchnorm::Stats::Batch { running_mean: &mut rm, running_var: &mut rv, momentum, sync: None }
        } else {
            batchnorm::Stats::Running { mean: &rm, var: &rv }
        };
        let y = batchnorm::batch_norm(&mut tape, &x, &gamma, &beta, stats, eps);
        let tag = if train { "train" } else { "eval" };
        close_op(&format!("y_{tag}"), &y.val, f, &format!("y_{tag}"))?;
        tape.backward(vec![(&y, t(f, "grad_y")?)]);
        close_op(&format!("grad_x_{tag}"), tape.grad(&x).unwrap(), f, &format!("grad_x_{tag}"))?;
        if train {
            close_op("grad_gamma_train", tape.param_grad(0).unwrap(), f, "grad_gamma_train")?;
            close_op("grad_beta_train", tape.param_grad(1).unwrap(), f, "grad_beta_train")?;
            close_op("running_mean_after", &rm, f, "running_mean_after")?;
            close_op("running_var_after", &rv, f, "running_var_after")?;
        }
    }
    Ok(())
}

fn pool_linear_case(f: &TensorFile) -> Check {
    let pools: [(&str, UnaryOp); 2] = [("maxpool", pool::maxpool2), ("avgpool", pool::avgpool)];
    for (tag, op) in pools {
        let mut tape = Tape::new(GradMode::Params);
        let x = tape.var(t(f, "x")?);
        let y = op(&mut tape, &x);
        close_op(&format!("{tag}_y"), &y.val, f, &format!("{tag}_y"))?;
        tape.backward(vec![(&y, t(f, &format!("{tag}_grad_y"))?)]);
        close_op(&format!("{tag}_grad_x"), tape.grad(&x).unwrap(), f, &format!("{tag}_grad_x"))?;
    }

    let mut tape = Tape::new(GradMode::Params);
    let a = tape.var(t(f, "linear_x")?);
    let y = linear::linear(&mut tape, &a, &param(0, t(f, "linear_w")?), &param(1, t(f, "linear_b")?));
    close_op("linear_y", &y.val, f, "linear_y")?;
    tape.backward(vec![(&y, t(f, "linear_grad_y")?)]);
    close_op("linear_grad_x", tape.grad(&a).unwrap(), f, "linear_grad_x")?;
    close_op("linear_grad_w", tape.param_grad(0).unwrap(), f, "linear_grad_w")?;
    close_op("linear_grad_b", tape.param_grad(1).unwrap(), f, "linear_grad_b")
}

fn losses_case(f: &TensorFile) -> Check {
    let (s, tl, y) = (t(f, "student_logits")?, t(f, "teacher_logits")?, labels(f)?);
    let vec_close = |what: &str, v: &[f32], name: &str| -> Check {
        let b = r(f, name)?;
        close(what, v, b.data(), 1e-5, 1e-6 * (b.numel() as f64).sqrt())
    };
    let ce = loss::cross_entropy(&s, &y);
    vec_close("ce", &ce.per_sample.host(), "ce")?;
    close_op("ce_grad_student", &ce.grads[0], f, "ce_grad_student")?;
    let mut taus = 0;
    for name in f.tensors.keys() {
        let Some(tag) = name.strip_prefix("kl_teacher_student_t").filter(|t| t.chars().all(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        let tau: f32 = tag.parse().map_err(|_| format!("bad temperature tag in {name}"))?;
        let kl = loss::kl_div(&tl, &s, tau);
        vec_close(name, &kl.per_sample.host(), name)?;
        close_op(&format!("{name}_grad_teacher"), &kl.grads[0], f, &format!("{name}_grad_teacher"))?;
        close_op(&format!("{name}_grad_student"), &kl.grads[1], f, &format!("{name}_grad_student"))?;
        taus += 1;
    }
    if taus == 0 {
        return Err("no kl_teacher_student_tN tensors".into());
    }
    let rev = loss::kl_div(&s, &tl, 1.0);
    vec_close("kl_student_teacher_t1", &rev.per_sample.host(), "kl_student_teacher_t1")?;
    close_op("kl_student_teacher_t1_grad_student", &rev.grads[0], f, "kl_student_teacher_t1_grad_student")?;
    close_op("kl_student_teacher_t1_grad_teacher", &rev.grads[1], f, "kl_student_teacher_t1_grad_teacher")
}

/// The case's model, built from its metadata (`<side>arch`, `<side>config`, `<side>weights`, BN
/// constants; `side` is "" or a method case's "student_" / "teacher_"), and its weights file. The
/// weights are also run through detection, which must find the same architecture.
pub(crate) fn case_model(f: &TensorFile, dir: &Path, side: &str) -> Result<(Model, TensorFile), String> {
    let name = meta_str(f, &format!("{side}arch"))?;
    let name = name.parse().map_err(|e: mmard::Error| e.to_string())?;
    let cfg = f.meta(&format!("{side}config")).map_err(|e| e.to_string())?;
    let arch = Arch::from_config(name, &cfg).map_err(|e| e.to_string())?;
    // What a state_dict cannot say (a DM WideResNet's activation and normalisation) is given as a
    // user would give it, on the command line.
    let unsaid = match &arch {
        Arch::DmWideResNet(DmWideResNetCfg { activation, mean, std, .. }) => Overrides {
            activation: Some(*activation),
            mean: Some(mean.clone()),
            std: Some(std.clone()),
            ..Default::default()
        },
        _ => Overrides::default(),
    };
    let wf = TensorFile::load(dir.join(meta_str(f, &format!("{side}weights"))?)).map_err(|e| e.to_string())?;
    let loaded = Model::from_file(&wf, &unsaid, false).map_err(|e| e.to_string())?;
    if loaded.model.arch != arch {
        return Err(format!("detected {} but the case says {arch}", loaded.model.arch));
    }
    if let Some(bad) = loaded.extra.iter().find(|n| !n.starts_with("sub_block1.")) {
        return Err(format!("weights tensor {bad} is not used by the model"));
    }
    let mut m = loaded.model;
    m.to_device(&dev());
    if f.metadata.contains_key("bn_momentum") {
        m.bn_momentum = meta_f32(f, "bn_momentum")?;
        m.bn_eps = meta_f32(f, "bn_eps")?;
    }
    Ok((m, wf))
}

/// The gradient of the batch-mean cross-entropy, as the references seed their backward.
fn mean_ce_grad(logits: &Tensor, y: &[usize]) -> Tensor {
    let mut g = loss::cross_entropy(logits, y).grads.remove(0);
    g.scale(1.0 / y.len() as f32);
    g
}

fn model_case(f: &TensorFile, dir: &Path) -> Check {
    let (mut m, wf) = case_model(f, dir, "")?;
    let (x, y) = (t(f, "input")?, labels(f)?);
    // eval: logits and d mean-CE / d input
    let mut tape = Tape::new(GradMode::Input);
    let xv = tape.input(x.clone());
    let logits = m.forward(&mut tape, &xv, false);
    close("logits_eval", &logits.val.host(), r(f, "logits_eval")?.data(), 1e-4, 0.0)?;
    tape.backward(vec![(&logits, mean_ce_grad(&logits.val, &y))]);
    per_sample("grad_input_eval", &tape.grad(&xv).unwrap().host(), r(f, "grad_input_eval")?.data(), y.len())?;
    // train: batch-stat BN, parameter gradients, buffers after one forward
    let mut tape = Tape::new(GradMode::Params);
    let xv = tape.input(x);
    let logits = m.forward(&mut tape, &xv, true);
    close("logits_train", &logits.val.host(), r(f, "logits_train")?.data(), 1e-4, 0.0)?;
    tape.backward(vec![(&logits, mean_ce_grad(&logits.val, &y))]);
    let refs: Vec<(&String, Tensor)> = f
        .tensors
        .keys()
        .filter(|k| k.starts_with("grad."))
        .map(|k| Ok((k, r(f, k)?)))
        .collect::<Result<_, String>>()?;
    let gmax =
        refs.iter().map(|(_, g)| g.data().iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt()).fold(0.0, f64::max);
    let trainable: Vec<usize> = m.params.trainable().collect();
    if refs.len() != trainable.len() {
        return Err(format!(
            "{} parameter gradients in the case, {} parameters in the model",
            refs.len(),
            trainable.len()
        ));
    }
    for (k, g) in &refs {
        let pname = &k["grad.".len()..];
        let id = m.params.id(pname).ok_or(format!("{k}: no parameter {pname}"))?;
        let ours = tape.param_grad(id).ok_or(format!("{k}: no gradient computed"))?;
        close(k, &ours.host(), g.data(), 2e-2, 2e-3 * gmax)?;
    }
    for k in f.tensors.keys().filter(|k| k.starts_with("buffer_after_train.")) {
        let bname = &k["buffer_after_train.".len()..];
        // Buffers of modules outside the forward (TRADES' sub_block1) keep their stored values; a
        // DM WideResNet's normalisation constants are buffers outside its state_dict.
        let ours = match (m.params.id(bname), &m.arch, bname) {
            (Some(id), _, _) => m.params.get(id).clone(),
            (None, Arch::DmWideResNet(DmWideResNetCfg { mean, .. }), "mean") => {
                Tensor::from_vec(&[mean.len()], mean.clone())
            }
            (None, Arch::DmWideResNet(DmWideResNetCfg { std, .. }), "std") => {
                Tensor::from_vec(&[std.len()], std.clone())
            }
            _ => r(&wf, bname)?,
        };
        close(k, &ours.host(), r(f, k)?.data(), 1e-4, 0.0)?;
    }
    Ok(())
}

fn pgd_case(f: &TensorFile, dir: &Path) -> Check {
    let (mut m, _) = case_model(f, dir, "")?;
    let (x0, y) = (t(f, "input")?, labels(f)?);
    let (eps, alpha, steps) = (meta_f32(f, "eps")?, meta_f32(f, "alpha")?, meta_usize(f, "steps")?);
    match (
        f.meta("loss").map_err(|e| e.to_string())?.as_str(),
        f.meta("random_start").map_err(|e| e.to_string())?.as_bool(),
    ) {
        (Some("cross_entropy"), Some(false)) => {}
        other => return Err(format!("unsupported pgd case (loss, random_start) = {other:?}")),
    }
    let mut xa = x0.clone();
    let mut tape = Tape::new(GradMode::Input);
    for _ in 0..steps {
        tape.clear();
        let xv = tape.input(xa.clone());
        let logits = m.forward(&mut tape, &xv, false);
        let ce = loss::cross_entropy(&logits.val, &y); // gradient of the sum, as the reference
        tape.backward(vec![(&logits, ce.grads.into_iter().next().unwrap())]);
        let g = tape.grad(&xv).unwrap().clone();
        pgd::step(&mut xa, &g, &x0, alpha, eps);
    }
    let want = r(f, "x_adv")?;
    let same = xa.host().iter().zip(want.data()).filter(|(a, b)| (*a - *b).abs() <= 1e-5).count();
    let frac = same as f64 / want.numel() as f64;
    if frac >= 0.995 { Ok(()) } else { Err(format!("x_adv: only {:.3}% of pixels within 1e-5", 100.0 * frac)) }
}

/// The case's SGD settings (lr, momentum, weight_decay, nesterov).
pub(crate) fn sgd_cfg(f: &TensorFile) -> Result<SgdCfg, String> {
    let nesterov = f.meta("nesterov").map_err(|e| e.to_string())?.as_bool();
    Ok(SgdCfg {
        lr: meta_f32(f, "lr")?,
        momentum: meta_f32(f, "momentum")?,
        weight_decay: meta_f32(f, "weight_decay")?,
        nesterov: nesterov.ok_or("metadata nesterov is not a boolean")?,
    })
}

fn sgd_case(f: &TensorFile, dir: &Path) -> Check {
    let (mut m, _) = case_model(f, dir, "")?;
    let (x, y) = (t(f, "input")?, labels(f)?);
    let mut opt = Sgd::new(sgd_cfg(f)?, &m.params);
    let mut losses = Vec::new();
    let mut tape = Tape::new(GradMode::Params);
    for _ in 0..meta_usize(f, "steps")? {
        tape.clear();
        let xv = tape.input(x.clone());
        let logits = m.forward(&mut tape, &xv, true);
        losses.push(loss::cross_entropy(&logits.val, &y).mean() as f32);
        tape.backward(vec![(&logits, mean_ce_grad(&logits.val, &y))]);
        opt.step(&mut m.params, &tape);
    }
    close("losses", &losses, r(f, "losses")?.data(), 1e-4, 0.0)?;
    // max(1e-4, 2·f32_rel) where the case records PyTorch float32's own error per tensor.
    let f32_rel = f.meta("f32_rel").ok();
    let mut n = 0;
    for k in f.tensors.keys().filter(|k| k.starts_with("after.")) {
        let name = &k["after.".len()..];
        let id = m.params.id(name).ok_or(format!("{k}: no tensor {name} in the model"))?;
        let own = f32_rel.as_ref().and_then(|j| j.get(k)).and_then(|v| v.as_f64()).unwrap_or(0.0);
        close(k, &m.params.get(id).host(), r(f, k)?.data(), (2.0 * own).max(1e-4), 0.0)?;
        n += 1;
    }
    if n == m.params.len() { Ok(()) } else { Err(format!("{n} after.* tensors for {} model tensors", m.params.len())) }
}

/// FAB's `projection_linf` on the reference's rows, one batch per width D (tensors suffixed `_dD`):
/// within 1e-6 per value (the reference's f32 dot products differ from ours by an ulp or so).
fn projection_case(f: &TensorFile) -> Check {
    let dims: Vec<usize> =
        serde_json::from_value(f.meta("dims").map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    for d in dims {
        let (t, w, b, want) = (
            r(f, &format!("points_to_project_d{d}"))?,
            r(f, &format!("w_hyperplane_d{d}"))?,
            r(f, &format!("b_hyperplane_d{d}"))?,
            r(f, &format!("result_d{d}"))?,
        );
        let n = b.numel();
        for i in 0..n {
            let mut got = vec![0.0; d];
            fab::project_linf(&t.data()[i * d..][..d], &w.data()[i * d..][..d], b.data()[i], &mut got);
            let diffs = got.iter().zip(&want.data()[i * d..][..d]).map(|(a, b)| (a - b).abs());
            if let Some(worst) = diffs.filter(|&e| e.is_nan() || e > 1e-6).reduce(f32::max) {
                return Err(format!("projection D = {d}, row {i}: differs from the reference by {worst:.2e}"));
            }
        }
    }
    Ok(())
}

fn run_case(path: &Path) -> Check {
    let f = TensorFile::load(path).map_err(|e| e.to_string())?;
    let dir = path.parent().unwrap();
    let kind = f.meta("kind").map_err(|e| e.to_string())?;
    match kind.as_str().unwrap_or("") {
        "conv2d" => conv_case(&f),
        "batchnorm2d" => bn_case(&f),
        "pool_linear" => pool_linear_case(&f),
        "losses" => losses_case(&f),
        "model" => model_case(&f, dir),
        "pgd" => pgd_case(&f, dir),
        "sgd_steps" => sgd_case(&f, dir),
        "fab_projection_linf" => projection_case(&f),
        "method_step" => method_step::method_case(&f, dir),
        other => Err(format!("unknown fixture kind {other:?}")),
    }
}

/// Runs every case of a folder on `device`, reporting all failures at once.
pub fn run_folder(dir: &Path, device: &Device) {
    DEVICE.with(|d| *d.borrow_mut() = device.clone());
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        // `<case>.safetensors` is a case; `<case>.<role>.safetensors` its weights (weights, student, teacher).
        .filter(|p| {
            p.extension().is_some_and(|e| e == "safetensors")
                && !p.file_stem().is_some_and(|s| s.to_string_lossy().contains('.'))
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixture cases in {}", dir.display());
    let mut failures = Vec::new();
    println!("fixtures of {} on {device}", dir.display());
    for c in &cases {
        let started = std::time::Instant::now();
        let r = run_case(c);
        println!(
            "{:<60} {} ({:.2}s)",
            c.file_name().unwrap().to_string_lossy(),
            if r.is_ok() { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        if let Err(e) = r {
            failures.push(format!("{}: {e}", c.display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// The repository root: cargo's when run through cargo, else the current folder when it holds
/// `tests/fixtures` (a test binary copied to a GPU machine and run from a checkout there), else the
/// folder the binary was built in.
fn root() -> PathBuf {
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(d) => PathBuf::from(d),
        None if Path::new("tests/fixtures").is_dir() => PathBuf::from("."),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// The folder `$var` names, else `../shared/<default>` when it exists (None, with a printed
/// reason, when not): `MMARD_FIXTURES` and `fixtures`, `MMARD_RB_FIXTURES` and `fixtures-robustbench`.
pub fn shared_folder(var: &str, default: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os(var) {
        Some(d) => PathBuf::from(d),
        None => root().join("../shared").join(default),
    };
    if !dir.exists() && std::env::var_os(var).is_none() {
        println!("skipped: {} does not exist (set {var} to a fixture folder)", dir.display());
        return None;
    }
    Some(dir)
}

/// The fixtures shipped with the repository.
pub fn shipped_folder() -> PathBuf {
    root().join("tests/fixtures")
}
