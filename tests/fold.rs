//! Eval-mode BatchNorm folded into the output pass of the convolution before it (on by default):
//! folded against unfolded on every architecture, logits and input gradients (the inner loop's and
//! the attacks' view), bit for bit, also after the running statistics change; and the fused
//! convolution + ReLU equal to the two ops it replaces on every convolution path.
use mmard::Tensor;
use mmard::nn::{Arch, ArchName, Model};
use mmard::ops::conv2d::{ConvCfg, conv2d, conv2d_fused};
use mmard::ops::elementwise::relu;
use mmard::ops::loss;
use mmard::tape::{GradMode, Param, Tape};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::sync::Arc;

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    Tensor::from_vec(shape, (0..shape.iter().product()).map(|_| rng.random_range(0.0f32..1.0)).collect())
}

/// Logits and the input gradient of the summed CE, in eval mode, folded or not.
fn eval(m: &mut Model, x: &Tensor, y: &[usize], fold: bool) -> (Vec<f32>, Vec<f32>) {
    m.fold = fold;
    let mut tape = Tape::new(GradMode::Input);
    let xv = tape.input(x.clone());
    let z = m.forward(&mut tape, &xv, false);
    let g = loss::cross_entropy(&z.val, y).grads.remove(0);
    tape.backward(vec![(&z, g)]);
    (z.val.to_vec(), tape.grad(&xv).unwrap().to_vec())
}

fn rel(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
    (d / b.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()).sqrt()
}

/// Running statistics and BN affine parameters away from their initial 0/1, so the fold matters.
fn perturb_bn(m: &mut Model, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let bn = |n: &str| n.contains("bn") || n.contains("batchnorm") || n.contains("shortcut.1");
    let ids: Vec<usize> = (0..m.params.len()).filter(|&i| bn(m.params.name(i))).collect();
    for id in ids {
        let name = m.params.name(id).to_string();
        let t = m.params.get_mut(id);
        if t.shape().len() != 1 {
            continue;
        }
        for v in t.data_mut() {
            *v = if name.ends_with("running_var") || name.ends_with("weight") {
                rng.random_range(0.5..1.5)
            } else {
                rng.random_range(-0.3..0.3)
            };
        }
    }
}

#[test]
fn folded_equals_unfolded_on_every_architecture() {
    let archs = [
        (ArchName::SmallCnn, serde_json::json!({"widths": [8, 16, 32]}), [1, 28, 28]),
        (ArchName::ResNet18, serde_json::json!({"width": 8}), [3, 32, 32]),
        (ArchName::PreActResNet18, serde_json::json!({"width": 8}), [3, 32, 32]),
        (ArchName::WideResNet, serde_json::json!({"depth": 10, "widen": 2}), [3, 32, 32]),
        (ArchName::MobileNetV2, serde_json::json!({}), [3, 32, 32]),
        (ArchName::DmWideResNet, serde_json::json!({"depth": 10, "width": 1, "activation": "relu"}), [3, 32, 32]),
    ];
    assert_eq!(archs.len(), ArchName::ALL.len(), "every architecture is checked");
    let swish =
        (ArchName::DmWideResNet, serde_json::json!({"depth": 10, "width": 1, "activation": "swish"}), [3, 32, 32]);
    for (name, cfg, [c, h, w]) in archs.into_iter().chain([swish]) {
        let arch = Arch::from_config(name, &cfg).unwrap();
        let mut m = Model::new(&arch, Some(3));
        perturb_bn(&mut m, 4);
        let x = random(&[3, c, h, w], 5);
        let y = [1, 4, 7];
        let (z0, g0) = eval(&mut m, &x, &y, false);
        let (z1, g1) = eval(&mut m, &x, &y, true);
        assert!(
            z1 == z0 && g1 == g0,
            "{name}: logits differ by {:.2e}, gradients by {:.2e}",
            rel(&z1, &z0),
            rel(&g1, &g0)
        );
        // New running statistics (as a train-mode forward leaves them) reach the folded path.
        perturb_bn(&mut m, 6);
        let (z2, _) = eval(&mut m, &x, &y, true);
        assert!(z2 != z1 && z2 == eval(&mut m, &x, &y, false).0, "{name} after new statistics");
    }
}

/// conv2d_fused(relu) is relu(conv2d(..)) exactly, forward and input gradient, on the im2col
/// (scattered and per-image), Winograd and depthwise paths.
#[test]
fn fused_relu_is_conv_then_relu() {
    for (n, cin, cout, hw, k, stride, groups) in
        [(2, 4, 6, 5, 3, 2, 1), (2, 4, 6, 17, 3, 1, 1), (2, 32, 32, 6, 3, 1, 1), (2, 8, 8, 6, 3, 1, 8)]
    {
        let cfg = ConvCfg { stride, pad: k / 2, groups };
        let w = random(&[cout, cin / groups, k, k], 7).into_vec().iter().map(|v| v - 0.5).collect();
        let w = Param { id: 0, val: Arc::new(Tensor::from_vec(&[cout, cin / groups, k, k], w)) };
        let b = Param {
            id: 1,
            val: Arc::new(Tensor::from_vec(&[cout], (0..cout).map(|i| i as f32 * 0.1 - 0.3).collect())),
        };
        let x = random(&[n, cin, hw, hw], 8);
        let run = |fused: bool| {
            let mut tape = Tape::new(GradMode::Input);
            let xv = tape.input(x.clone());
            let y = if fused {
                conv2d_fused(&mut tape, &xv, &w, Some(&b), cfg, None, true)
            } else {
                let c = conv2d(&mut tape, &xv, &w, Some(&b), cfg);
                relu(&mut tape, &c)
            };
            let gy = random(y.shape(), 9);
            tape.backward(vec![(&y, gy)]);
            (y.val.to_vec(), tape.grad(&xv).unwrap().to_vec())
        };
        assert_eq!(run(true), run(false), "{cin}->{cout} {hw}x{hw} k{k} s{stride} groups {groups}");
    }
}
