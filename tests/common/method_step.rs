//! The `method_step` fixtures (../shared/fixtures-methods, README there): one training step of a
//! method against an independent float64 implementation of docs/methods.md. The step runs through
//! the training loop's own `Stepper` (`batch`, `inner`, `outer`), with the stored start noise
//! given instead of drawn. The inner half is checked on x′; the outer half starts from the stored
//! x′ and is checked on the loss and every tensor of the student after one SGD step.
use super::{Check, case_model, close, labels, meta_f32, meta_str, meta_usize, r, sgd_cfg, t};
use mmard::ard::methods::{Method, Objective};
use mmard::ard::step::{InnerPgd, Noise, Stepper};
use mmard::ard::terms::Logit;
use mmard::io::safetensors::TensorFile;
use mmard::nn::Model;
use mmard::nn::optim::Sgd;
use std::path::Path;

pub fn method_case(f: &TensorFile, dir: &Path) -> Check {
    let (mut student, _) = case_model(f, dir, "student_")?;
    let (mut teacher, _) = case_model(f, dir, "teacher_")?;
    let obj = objective(f)?;
    let (x, y) = (t(f, "input")?, labels(f)?);
    let pgd = InnerPgd { eps: meta_f32(f, "eps")?, step: meta_f32(f, "alpha")?, steps: meta_usize(f, "steps")? };
    let mut st = Stepper::new(obj, pgd);
    let dev = student.device();
    let b = st.batch(&dev, Some(&mut teacher), &x, &y).map_err(|e| e.to_string())?;
    let xa = if st.obj.attacks() {
        if meta_str(f, "x_adv_check")? == "stepwise" {
            // One step from each stored iterate, where PyTorch float32 itself strays on the final x′.
            let (steps, input) = (r(f, "x_adv_steps")?, r(f, "input")?);
            let per = input.numel();
            st.pgd.steps = 1;
            for k in 0..pgd.steps {
                let noise = match k {
                    0 => r(f, "start_noise")?,
                    _ => {
                        let prev = &steps.data()[(k - 1) * per..][..per];
                        let u = prev.iter().zip(input.data()).map(|(a, x)| a - x).collect();
                        mmard::Tensor::from_vec(input.shape(), u)
                    }
                };
                let got = st.inner(&mut student, Some(&mut teacher), &b, Noise::Given(&noise.to_device(&dev)));
                x_adv_rule(&format!("x_adv_steps[{k}]"), &got.host(), &steps.data()[k * per..][..per], y.len())?;
            }
        } else {
            let noise = t(f, "start_noise")?;
            let got = st.inner(&mut student, Some(&mut teacher), &b, Noise::Given(&noise));
            x_adv_rule("x_adv", &got.host(), r(f, "x_adv")?.data(), y.len())?;
        }
        Some(t(f, "x_adv")?)
    } else {
        None
    };
    let cfg = sgd_cfg(f)?;
    if meta_f32(f, "dampening")? != 0.0 {
        return Err("dampening other than 0 is not mmard's SGD".into());
    }
    if cfg.weight_decay != st.obj.method.weight_decay() {
        return Err(format!(
            "weight decay: the reference trains {} with {}, mmard's default is {}",
            st.obj.method.name(),
            cfg.weight_decay,
            st.obj.method.weight_decay()
        ));
    }
    let mut opt = Sgd::new(cfg, &student.params);
    let stats = st.outer(&mut student, Some(&mut teacher), &mut opt, &b, xa.as_ref()).map_err(|e| e.to_string())?;
    let want = r(f, "outer_loss")?.data()[0] as f64;
    let atol = meta_f32(f, "outer_loss_atol")? as f64;
    if (stats.loss - want).abs() > 1e-5 * want.abs() + atol {
        return Err(format!("outer_loss {} against {want} (allowed 1e-5 relative + {atol:e})", stats.loss));
    }
    after_rule(f, &student)
}

/// The case's objective: its method's own (the part of a plugged case's name before `_inner_`),
/// with the inner and outer halves it names. Its coefficients, start and teacher vertex must be
/// mmard's defaults for that method: a difference is a disagreement about the method itself.
fn objective(f: &TensorFile) -> Result<Objective, String> {
    let name = meta_str(f, "method")?;
    let method: Method = name.split("_inner_").next().unwrap_or("").parse().map_err(|e: mmard::Error| e.to_string())?;
    let mut o = method.objective();
    o.inner = meta_str(f, "inner")?.parse().map_err(|e: mmard::Error| e.to_string())?;
    o.outer = meta_str(f, "outer")?.parse().map_err(|e: mmard::Error| e.to_string())?;
    let coefficients = f.meta("coefficients").map_err(|e| e.to_string())?;
    let coefficients = coefficients.as_object().ok_or("metadata coefficients is not an object")?;
    let c = &o.c;
    for (k, v) in coefficients {
        let ours = match k.as_str() {
            "tau" => c.tau,
            "alpha" => c.alpha,
            "beta" => c.beta,
            "beta_iad" => c.iad_beta,
            "lambda" => c.lambda,
            "a" => c.tri.teacher_adv,
            "b" => c.tri.teacher_nat,
            "c" => c.tri.adv_nat,
            _ => return Err(format!("coefficient {k} is not one of mmard's")),
        };
        let v = v.as_f64().ok_or(format!("coefficient {k} is not a number"))?;
        if (ours as f64 - v).abs() > 1e-6 * v.abs() {
            return Err(format!("{name}: the reference's {k} is {v}, mmard's default {ours}"));
        }
    }
    let teacher_adv = f.meta("teacher_adv").map_err(|e| e.to_string())?.as_bool() == Some(true);
    if (c.tri_teacher == Logit::TeacherAdv) != teacher_adv {
        return Err(format!("{name}: the triangle's teacher vertex differs (reference teacher_adv = {teacher_adv})"));
    }
    let start = meta_str(f, "start_noise")?;
    let radius = o.start.radius(meta_f32(f, "eps")?);
    if o.attacks() && start != format!("uniform(-{radius}, {radius})") {
        return Err(format!("{name}: the reference starts from {start}, mmard from uniform(±{radius})"));
    }
    o.validate().map_err(|e| e.to_string())?;
    Ok(o)
}

/// x′ of `n` independent samples: every sample but at most one has at least 99.5% of its pixels
/// within 1e-5 (a max-pool or ReLU tie within float32 rounding can move one whole sample).
pub(crate) fn x_adv_rule(what: &str, a: &[f32], b: &[f32], n: usize) -> Check {
    let per = b.len() / n.max(1);
    if a.len() != b.len() || per * n != b.len() {
        return Err(format!("{what}: {} values, reference has {} for {n} samples", a.len(), b.len()));
    }
    let agree: Vec<f64> = (0..n)
        .map(|i| {
            let r = i * per..(i + 1) * per;
            a[r.clone()].iter().zip(&b[r]).filter(|(p, q)| (*p - *q).abs() <= 1e-5).count() as f64 / per as f64
        })
        .collect();
    let off: Vec<String> =
        agree.iter().enumerate().filter(|(_, f)| **f < 0.995).map(|(i, f)| format!("{i}: {:.1}%", 100.0 * f)).collect();
    if off.len() <= 1 {
        Ok(())
    } else {
        Err(format!("{what}: {} samples below 99.5% of pixels within 1e-5 ({})", off.len(), off.join(", ")))
    }
}

/// Every tensor of the student after the step: ‖a − b‖ ≤ max(1e-5, 2·f32_rel)·‖b‖, with f32_rel
/// PyTorch float32's own error on that tensor; the case must cover every tensor of the model.
fn after_rule(f: &TensorFile, m: &Model) -> Check {
    let rel = f.meta("f32_rel").map_err(|e| e.to_string())?;
    let mut n = 0;
    for k in f.tensors.keys().filter(|k| k.starts_with("after.")) {
        let name = &k["after.".len()..];
        let id = m.params.id(name).ok_or(format!("{k}: no tensor {name} in the student"))?;
        let bound = rel.get(k).and_then(|v| v.as_f64()).ok_or(format!("f32_rel has no {k}"))?;
        close(k, &m.params.get(id).host(), r(f, k)?.data(), (2.0 * bound).max(1e-5), 0.0)?;
        n += 1;
    }
    if n == m.params.len() {
        Ok(())
    } else {
        Err(format!("{n} after.* tensors for {} student tensors", m.params.len()))
    }
}
