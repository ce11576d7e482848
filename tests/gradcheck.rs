//! Finite-difference gradchecks for every op's backward: the analytic gradient of
//! L = Σ r ⊙ op(inputs, params) (r random) against central differences of L, on a sample of
//! coordinates of every input and parameter. f32 forward, f64 sums; inputs are kept away from
//! the kinks of ReLU and max-pool so the differences measure the slope and not a jump.
use mmard::Tensor;
use mmard::ops::batchnorm::{self, Stats};
use mmard::ops::conv2d::{ConvCfg, conv2d};
use mmard::ops::{elementwise, linear, loss, pad, pool};
use mmard::tape::{GradMode, Param, Tape, Var};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::sync::Arc;

const H: f32 = 1e-2;
const SAMPLES: usize = 24;

/// Values drawn uniformly from (−scale, scale).
fn uniform(rng: &mut StdRng, shape: &[usize], scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| rng.random_range(-1.0f32..1.0) * scale).collect())
}

/// Values whose magnitudes are at least `gap`, so no finite-difference step crosses zero.
fn away_from_zero(rng: &mut StdRng, shape: &[usize], gap: f32) -> Tensor {
    let mut t = uniform(rng, shape, 1.0);
    t.data_mut().iter_mut().for_each(|v| *v = v.signum() * (v.abs() + gap));
    t
}

type Op = dyn Fn(&mut Tape, &[Var], &[Param]) -> Var;

fn params_of(ts: &[Tensor]) -> Vec<Param> {
    ts.iter().enumerate().map(|(id, t)| Param { id, val: Arc::new(t.clone()) }).collect()
}

fn objective(op: &Op, inputs: &[Tensor], params: &[Tensor], r: &Tensor) -> f64 {
    let mut tape = Tape::new(GradMode::None);
    let vars: Vec<Var> = inputs.iter().map(|t| tape.var(t.clone())).collect();
    let y = op(&mut tape, &vars, &params_of(params));
    y.val.data().iter().zip(r.data()).map(|(&a, &b)| a as f64 * b as f64).sum()
}

fn gradcheck(name: &str, inputs: Vec<Tensor>, params: Vec<Tensor>, op: &Op) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut tape = Tape::new(GradMode::Params);
    let vars: Vec<Var> = inputs.iter().map(|t| tape.var(t.clone())).collect();
    let y = op(&mut tape, &vars, &params_of(&params));
    let r = uniform(&mut rng, y.shape(), 1.0);
    tape.backward(vec![(&y, r.clone())]);
    let analytic: Vec<Tensor> = vars
        .iter()
        .map(|v| tape.grad(v).expect("input got no gradient").clone())
        .chain((0..params.len()).map(|i| tape.param_grad(i).expect("parameter got no gradient").clone()))
        .collect();
    let n_in = inputs.len();
    for (k, ana) in analytic.iter().enumerate() {
        let (mut num, mut an) = (Vec::new(), Vec::new());
        for _ in 0..SAMPLES.min(ana.numel()) {
            let i = rng.random_range(0..ana.numel());
            let eval = |delta: f32| {
                let (mut ins, mut ps) = (inputs.clone(), params.clone());
                let t = if k < n_in { &mut ins[k] } else { &mut ps[k - n_in] };
                t.data_mut()[i] += delta;
                objective(op, &ins, &ps, &r)
            };
            num.push((eval(H) - eval(-H)) / (2.0 * H as f64));
            an.push(ana.data()[i] as f64);
        }
        let diff = num.iter().zip(&an).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        let norm = an.iter().map(|a| a * a).sum::<f64>().sqrt();
        assert!(
            diff <= 2e-3 * norm + 1e-3,
            "{name}, operand {k}: ‖numeric − analytic‖ = {diff:.3e}, ‖analytic‖ = {norm:.3e}"
        );
    }
}

/// A conv layer of `n` images `cin × hw × hw` to `cout` channels, kernel k, stride, groups, bias.
fn conv_case(
    name: &str,
    (n, cin, cout, hw): (usize, usize, usize, usize),
    (k, stride, groups): (usize, usize, usize),
    bias: bool,
) {
    let mut rng = StdRng::seed_from_u64(1);
    let x = uniform(&mut rng, &[n, cin, hw, hw], 1.0);
    let mut params = vec![uniform(&mut rng, &[cout, cin / groups, k, k], 0.5)];
    if bias {
        params.push(uniform(&mut rng, &[cout], 0.5));
    }
    let cfg = ConvCfg { stride, pad: k / 2, groups };
    gradcheck(name, vec![x], params, &move |t, v, p| conv2d(t, &v[0], &p[0], p.get(1), cfg));
}

#[test]
fn conv2d_3x3_stride1() {
    conv_case("conv 3x3 s1", (2, 3, 4, 6), (3, 1, 1), false);
}

/// 32 channels each side: the Winograd path (forward, input and filter gradients: the map has
/// 64 outputs or more), on an odd map whose tiles overhang its edge.
#[test]
fn conv2d_3x3_stride1_winograd_bias() {
    conv_case("conv 3x3 s1 32->32 bias (Winograd)", (2, 32, 32, 9), (3, 1, 1), true);
}

/// 16 -> 16: im2col forward, Winograd input gradient (conv2d's `Plan::is_winograd`).
#[test]
fn conv2d_3x3_stride1_winograd_input_gradient_only() {
    conv_case("conv 3x3 s1 16->16 (Winograd input gradient)", (2, 16, 16, 5), (3, 1, 1), false);
}

#[test]
fn conv2d_3x3_stride2_bias() {
    conv_case("conv 3x3 s2 bias", (2, 4, 5, 7), (3, 2, 1), true);
}

#[test]
fn conv2d_1x1_stride2() {
    conv_case("conv 1x1 s2", (2, 4, 6, 6), (1, 2, 1), false);
}

/// Maps of >= 256 output pixels take conv2d's per-image GEMM path (forward writes NCHW in place,
/// backward-data reads gy in place); check it with groups and bias, against loops for the forward.
#[test]
fn conv2d_large_maps_grouped_with_bias() {
    for (hw, stride) in [(16, 1), (32, 2)] {
        let (n, cin, cout, k, groups) = (2, 4, 6, 3, 2);
        let mut rng = StdRng::seed_from_u64(7);
        let x = uniform(&mut rng, &[n, cin, hw, hw], 1.0);
        let (w, b) = (Arc::new(uniform(&mut rng, &[cout, cin / groups, k, k], 0.5)), uniform(&mut rng, &[cout], 0.5));
        let cfg = ConvCfg { stride, pad: 1, groups };
        let y = mmard::ops::conv2d::forward(&x, &w, Some(&b), cfg);
        let oh = (hw + 2 - k) / stride + 1;
        assert!(oh * oh >= 256, "the case must take the per-image path");
        let (og, cg) = (cout / groups, cin / groups);
        for (i, &got) in y.data().iter().enumerate() {
            let (ni, co, oy, ox) = (i / (cout * oh * oh), i / (oh * oh) % cout, i / oh % oh, i % oh);
            let mut want = b.data()[co] as f64;
            for c in 0..cg {
                for ki in 0..k {
                    for kj in 0..k {
                        let (iy, ix) = ((oy * stride + ki) as isize - 1, (ox * stride + kj) as isize - 1);
                        if iy < 0 || ix < 0 || iy >= hw as isize || ix >= hw as isize {
                            continue;
                        }
                        let xv = x.data()[((ni * cin + co / og * cg + c) * hw + iy as usize) * hw + ix as usize];
                        want += xv as f64 * w.data()[((co * cg + c) * k + ki) * k + kj] as f64;
                    }
                }
            }
            assert!((got as f64 - want).abs() < 1e-4, "{hw}x{hw} s{stride}: y[{i}] = {got}, loops give {want}");
        }
    }
    conv_case("conv 16x16 groups 2 bias (per-image GEMMs)", (2, 4, 6, 16), (3, 1, 2), true);
}

#[test]
fn conv2d_grouped() {
    conv_case("conv groups 2", (2, 4, 6, 5), (3, 1, 2), false);
}

#[test]
fn conv2d_depthwise() {
    conv_case("conv depthwise s1", (2, 5, 5, 6), (3, 1, 5), false);
    conv_case("conv depthwise s2", (2, 5, 5, 7), (3, 2, 5), false);
}

#[test]
fn batchnorm_train_and_eval() {
    let mut rng = StdRng::seed_from_u64(2);
    let x = uniform(&mut rng, &[3, 4, 3, 3], 2.0);
    let params = vec![uniform(&mut rng, &[4], 0.5), uniform(&mut rng, &[4], 0.5)];
    gradcheck("bn train", vec![x.clone()], params.clone(), &|t, v, p| {
        let (mut m, mut s) = (Tensor::zeros(&[4]), Tensor::full(&[4], 1.0));
        batchnorm::batch_norm(
            t,
            &v[0],
            &p[0],
            &p[1],
            Stats::Batch { running_mean: &mut m, running_var: &mut s, momentum: 0.1, sync: None },
            1e-5,
        )
    });
    let (rm, rv) = (uniform(&mut rng, &[4], 0.3), Tensor::from_vec(&[4], vec![0.5, 1.0, 1.5, 2.0]));
    gradcheck("bn eval", vec![x], params, &move |t, v, p| {
        batchnorm::batch_norm(t, &v[0], &p[0], &p[1], Stats::Running { mean: &rm, var: &rv }, 1e-5)
    });
}

/// The fused BN+ReLU gives exactly what BN then ReLU give, forward and backward, in both modes
/// (each of those is gradchecked on its own; a finite difference across the ReLU's kink is not a
/// fair check of the composition, since a batch statistic moves every output at once).
#[test]
fn bn_relu_is_bn_then_relu() {
    let mut rng = StdRng::seed_from_u64(5);
    let x = uniform(&mut rng, &[3, 4, 5, 5], 2.0);
    let gy = uniform(&mut rng, &[3, 4, 5, 5], 1.0);
    let (gamma, beta) = (
        Param { id: 0, val: Arc::new(uniform(&mut rng, &[4], 0.5)) },
        Param { id: 1, val: Arc::new(uniform(&mut rng, &[4], 0.5)) },
    );
    for train in [true, false] {
        let mut outs = Vec::new();
        for fused in [false, true] {
            let (mut rm, mut rv) = (Tensor::zeros(&[4]), Tensor::full(&[4], 1.0));
            let (rm0, rv0) = (rm.clone(), rv.clone());
            let stats = if train {
                Stats::Batch { running_mean: &mut rm, running_var: &mut rv, momentum: 0.1, sync: None }
            } else {
                Stats::Running { mean: &rm0, var: &rv0 }
            };
            let mut t = Tape::new(GradMode::Params);
            let xv = t.var(x.clone());
            let y = if fused {
                batchnorm::batch_norm_relu(&mut t, &xv, &gamma, &beta, stats, 1e-5)
            } else {
                let h = batchnorm::batch_norm(&mut t, &xv, &gamma, &beta, stats, 1e-5);
                elementwise::relu(&mut t, &h)
            };
            let yv = (*y.val).clone();
            t.backward(vec![(&y, gy.clone())]);
            outs.push([
                yv,
                t.grad(&xv).unwrap().clone(),
                t.param_grad(0).unwrap().clone(),
                t.param_grad(1).unwrap().clone(),
                rm,
                rv,
            ]);
        }
        for (i, (a, b)) in outs[0].iter().zip(&outs[1]).enumerate() {
            assert_eq!(a.data(), b.data(), "train {train}: output {i} of BN then ReLU and of the fused op differ");
        }
    }
}

#[test]
fn relu_and_add() {
    let mut rng = StdRng::seed_from_u64(3);
    let (a, b) = (away_from_zero(&mut rng, &[2, 3, 4, 4], 0.05), uniform(&mut rng, &[2, 3, 4, 4], 1.0));
    gradcheck("relu", vec![a.clone()], vec![], &|t, v, _| elementwise::relu(t, &v[0]));
    gradcheck("add", vec![a, b], vec![], &|t, v, _| elementwise::add(t, &v[0], &v[1]));
}

#[test]
fn swish_standardize_and_pad() {
    let mut rng = StdRng::seed_from_u64(9);
    let x = uniform(&mut rng, &[2, 3, 5, 4], 3.0);
    gradcheck("swish", vec![x.clone()], vec![], &|t, v, _| elementwise::swish(t, &v[0]));
    let s = elementwise::Standardize { mean: vec![0.49, 0.48, 0.45], std: vec![0.25, 0.24, 0.26] };
    gradcheck("standardize", vec![x.clone()], vec![], &move |t, v, _| elementwise::standardize(t, &v[0], &s));
    let p = pad::Pad { top: 0, bottom: 1, left: 2, right: 1 };
    gradcheck("pad2d", vec![x], vec![], &move |t, v, _| pad::pad2d(t, &v[0], p));
}

#[test]
fn pooling() {
    let mut rng = StdRng::seed_from_u64(4);
    // A permutation of well-separated values: every 2x2 window has a unique maximum by a margin.
    let n = 2 * 3 * 5 * 5;
    let mut vals: Vec<f32> = (0..n).map(|i| i as f32 * 0.05).collect();
    for i in (1..n).rev() {
        vals.swap(i, rng.random_range(0..=i));
    }
    let x = Tensor::from_vec(&[2, 3, 5, 5], vals);
    gradcheck("maxpool2", vec![x.clone()], vec![], &|t, v, _| pool::maxpool2(t, &v[0]));
    gradcheck("avgpool", vec![x], vec![], &|t, v, _| pool::avgpool(t, &v[0]));
}

#[test]
fn linear_layer() {
    let mut rng = StdRng::seed_from_u64(5);
    let x = uniform(&mut rng, &[4, 7], 1.0);
    gradcheck("linear", vec![x], vec![uniform(&mut rng, &[3, 7], 0.5), uniform(&mut rng, &[3], 0.5)], &|t, v, p| {
        linear::linear(t, &v[0], &p[0], &p[1])
    });
    // a feature map is read as [n, c·h·w], as SmallCNN's head does, and its gradient keeps the shape
    let map = uniform(&mut rng, &[2, 3, 2, 2], 1.0);
    gradcheck(
        "linear on a map",
        vec![map],
        vec![uniform(&mut rng, &[4, 12], 0.5), uniform(&mut rng, &[4], 0.5)],
        &|t, v, p| linear::linear(t, &v[0], &p[0], &p[1]),
    );
}

/// Central differences of a loss's batch sum against the gradients it returns for each logit set.
fn loss_gradcheck(name: &str, sets: Vec<Tensor>, f: &dyn Fn(&[Tensor]) -> loss::LossOut) {
    let out = f(&sets);
    let mut rng = StdRng::seed_from_u64(6);
    for (k, g) in out.grads.iter().enumerate() {
        for _ in 0..SAMPLES {
            let i = rng.random_range(0..g.numel());
            let eval = |d: f32| {
                let mut s = sets.clone();
                s[k].data_mut()[i] += d;
                f(&s).sum()
            };
            let num = (eval(H) - eval(-H)) / (2.0 * H as f64);
            let ana = g.data()[i] as f64;
            assert!(
                (num - ana).abs() <= 2e-3 * ana.abs() + 2e-4,
                "{name}, logit set {k}, index {i}: numeric {num:.6e}, analytic {ana:.6e}"
            );
        }
    }
}

#[test]
fn losses() {
    let mut rng = StdRng::seed_from_u64(8);
    let (a, b, c) = (uniform(&mut rng, &[5, 6], 2.0), uniform(&mut rng, &[5, 6], 2.0), uniform(&mut rng, &[5, 6], 2.0));
    let labels = [0, 5, 2, 2, 4];
    loss_gradcheck("cross_entropy", vec![a.clone()], &|s| loss::cross_entropy(&s[0], &labels));
    for tau in [1.0, 4.0] {
        loss_gradcheck("kl_div", vec![a.clone(), b.clone()], &|s| loss::kl_div(&s[0], &s[1], tau));
    }
    let w = loss::Triangle { teacher_adv: 5.0 / 6.0, teacher_nat: 1.0 / 6.0, adv_nat: 1.0 };
    for tau in [1.0, 3.0] {
        loss_gradcheck("triangle", vec![a.clone(), b.clone(), c.clone()], &|s| {
            loss::triangle(&s[0], &s[1], &s[2], w, tau)
        });
    }
}
