//! Layers as models use them: each holds the ids of its tensors in the model's `ParamStore` and
//! records its ops on the tape through a `Ctx`.
use super::params::{Kind, ParamStore};
use crate::ops::batchnorm::{self, Affine, Stats};
use crate::ops::conv2d::{ConvCfg, conv2d, conv2d_fused};
use crate::ops::{elementwise, linear};
use crate::tape::{Param, ParamId, Tape, Var};
use crate::tensor::Tensor;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::sync::Arc;

/// A network's forward pass; the ops it records decide what backward can reach.
pub trait Net: Send + Sync {
    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var;
}

/// What a forward pass needs besides its input.
pub struct Ctx<'a> {
    pub tape: &'a mut Tape,
    pub params: &'a mut ParamStore,
    /// BatchNorm normalises with batch statistics (and moves its running ones) when set.
    pub bn_train: bool,
    pub bn_momentum: f32,
    pub bn_eps: f32,
    /// Conv–BN pairs run as one convolution with the BN in its output pass (`ConvBn`).
    pub fold: bool,
    /// Train-mode BatchNorm normalises over the batches of these ranks (`--sync-bn`).
    pub sync_bn: Option<&'a Arc<dyn crate::dist::Group>>,
}

impl Ctx<'_> {
    pub fn relu(&mut self, x: &Var) -> Var {
        elementwise::relu(self.tape, x)
    }
    pub fn add(&mut self, a: &Var, b: &Var) -> Var {
        elementwise::add(self.tape, a, b)
    }
}

/// Registers tensors under PyTorch names with PyTorch's default initialisation, or zeros when the
/// weights are about to be loaded from a file.
pub struct Builder {
    pub store: ParamStore,
    rng: Option<StdRng>,
}

impl Builder {
    pub fn new(seed: Option<u64>) -> Self {
        Builder { store: ParamStore::default(), rng: seed.map(StdRng::seed_from_u64) }
    }

    /// U(−bound, bound), PyTorch's default for conv and linear layers with bound = 1/√fan_in.
    fn uniform(&mut self, name: String, shape: &[usize], bound: f32) -> ParamId {
        let n = shape.iter().product();
        let data = match &mut self.rng {
            Some(r) => (0..n).map(|_| r.random_range(-bound..bound)).collect(),
            None => vec![0.0; n],
        };
        self.store.add(name, Kind::Param, Tensor::from_vec(shape, data))
    }

    pub fn conv(&mut self, name: &str, cin: usize, cout: usize, k: usize, stride: usize, groups: usize) -> Conv {
        let bound = 1.0 / ((cin / groups * k * k) as f32).sqrt();
        let w = self.uniform(format!("{name}.weight"), &[cout, cin / groups, k, k], bound);
        Conv { w, cfg: ConvCfg { stride, pad: k / 2, groups } }
    }

    pub fn bn(&mut self, name: &str, c: usize) -> Bn {
        let mut add = |s: &str, kind, v| self.store.add(format!("{name}.{s}"), kind, Tensor::full(&[c], v));
        let (weight, bias) = (add("weight", Kind::Param, 1.0), add("bias", Kind::Param, 0.0));
        let (mean, var) = (add("running_mean", Kind::Buffer, 0.0), add("running_var", Kind::Buffer, 1.0));
        let count = self.store.add_counter(format!("{name}.num_batches_tracked"));
        Bn { weight, bias, mean, var, count }
    }

    /// A convolution and the BatchNorm on its output.
    pub fn conv_bn(
        &mut self,
        conv: &str,
        bn: &str,
        (cin, cout): (usize, usize),
        k: usize,
        stride: usize,
        groups: usize,
    ) -> ConvBn {
        ConvBn { conv: self.conv(conv, cin, cout, k, stride, groups), bn: self.bn(bn, cout) }
    }

    pub fn linear(&mut self, name: &str, fin: usize, fout: usize) -> Linear {
        let bound = 1.0 / (fin as f32).sqrt();
        let w = self.uniform(format!("{name}.weight"), &[fout, fin], bound);
        let b = self.uniform(format!("{name}.bias"), &[fout], bound);
        Linear { w, b }
    }
}

/// Convolution without bias, padding k/2 unless `padded` says otherwise.
pub struct Conv {
    w: ParamId,
    cfg: ConvCfg,
}

impl Conv {
    /// The same convolution with padding `pad` on every side.
    pub fn padded(self, pad: usize) -> Conv {
        Conv { cfg: ConvCfg { pad, ..self.cfg }, ..self }
    }

    pub fn fwd(&self, cx: &mut Ctx, x: &Var) -> Var {
        conv2d(cx.tape, x, &cx.params.param(self.w), None, self.cfg)
    }
}

pub struct Bn {
    weight: ParamId,
    bias: ParamId,
    mean: ParamId,
    var: ParamId,
    count: usize,
}

impl Bn {
    pub fn fwd(&self, cx: &mut Ctx, x: &Var) -> Var {
        self.apply(cx, x, batchnorm::batch_norm)
    }

    /// BN then ReLU, fused into one op.
    pub fn relu(&self, cx: &mut Ctx, x: &Var) -> Var {
        self.apply(cx, x, batchnorm::batch_norm_relu)
    }

    /// Runs `op` (plain or fused BN) with the statistics the mode asks for.
    fn apply(&self, cx: &mut Ctx, x: &Var, op: fn(&mut Tape, &Var, &Param, &Param, Stats, f32) -> Var) -> Var {
        let (g, b) = (cx.params.param(self.weight), cx.params.param(self.bias));
        if !cx.bn_train {
            let stats = Stats::Running { mean: cx.params.get(self.mean), var: cx.params.get(self.var) };
            return op(cx.tape, x, &g, &b, stats, cx.bn_eps);
        }
        // The running statistics are taken out of the store while BN moves them (gamma and beta
        // stay borrowed from it).
        let (mut rm, mut rv) = (cx.params.get(self.mean).clone(), cx.params.get(self.var).clone());
        let (momentum, sync) = (cx.bn_momentum, cx.sync_bn);
        let stats = Stats::Batch { running_mean: &mut rm, running_var: &mut rv, momentum, sync };
        let y = op(cx.tape, x, &g, &b, stats, cx.bn_eps);
        *cx.params.get_mut(self.mean) = rm;
        *cx.params.get_mut(self.var) = rv;
        cx.params.bump_counter(self.count);
        y
    }
}

/// A convolution followed by BatchNorm (and, as the caller asks, a ReLU). Where the context folds
/// (BN on its running statistics, no parameter gradients: the inner loop, attacks, evaluation, on the
/// CPU), the BN and the ReLU run in the convolution's output pass, in BN's own arithmetic: the same
/// values as the two ops, without their passes.
pub struct ConvBn {
    conv: Conv,
    bn: Bn,
}

impl ConvBn {
    /// The same pair with the convolution padded by `pad`.
    pub fn padded(self, pad: usize) -> ConvBn {
        ConvBn { conv: self.conv.padded(pad), ..self }
    }

    pub fn fwd(&self, cx: &mut Ctx, x: &Var, relu: bool) -> Var {
        let on_cpu = x.val.device() == crate::Device::Cpu;
        if !(cx.fold && on_cpu) {
            let y = self.conv.fwd(cx, x);
            return if relu { self.bn.relu(cx, &y) } else { self.bn.fwd(cx, &y) };
        }
        let (b, p) = (&self.bn, &*cx.params);
        let affine = Affine::eval(p.get(b.weight), p.get(b.bias), p.get(b.mean), p.get(b.var), cx.bn_eps);
        conv2d_fused(cx.tape, x, &p.param(self.conv.w), None, self.conv.cfg, Some(Arc::new(affine)), relu)
    }
}

pub struct Linear {
    w: ParamId,
    b: ParamId,
}

impl Linear {
    pub fn fwd(&self, cx: &mut Ctx, x: &Var) -> Var {
        linear::linear(cx.tape, x, &cx.params.param(self.w), &cx.params.param(self.b))
    }
}
