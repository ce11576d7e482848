//! What a convolution's output pass applies to each value it writes: its bias, then an eval-mode
//! BatchNorm as its affine map (`batchnorm::Affine`, in BN's own f64 arithmetic, so the result is
//! bit for bit conv then BN), then a ReLU (NaN kept, as `elementwise::relu_forward`). Fused there,
//! the BN and the ReLU after a convolution cost no pass of their own. Tests: `tests/fold.rs`.
use super::batchnorm::Affine;

#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub bn: Option<&'a Affine>,
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Whether it changes anything.
    pub fn is_some(&self) -> bool {
        self.bias.is_some() || self.bn.is_some() || self.relu
    }

    /// One output value of channel `co`.
    #[inline(always)]
    pub fn at(&self, v: f32, co: usize) -> f32 {
        let (bias, a, b) = self.channel(co);
        self.one(v, bias, a, b)
    }

    /// Channel `co`'s bias and BN coefficients, read once per plane or lane block.
    #[inline(always)]
    fn channel(&self, co: usize) -> (f32, f64, f64) {
        let bias = self.bias.map_or(0.0, |b| b[co]);
        self.bn.map_or((bias, 1.0, 0.0), |bn| (bias, bn.a[co], bn.b[co]))
    }

    /// The epilogue on one value, given its channel's coefficients (no lookups, so loops over it
    /// vectorise).
    #[inline(always)]
    fn one(&self, v: f32, bias: f32, a: f64, b: f64) -> f32 {
        let v = if self.bias.is_some() { v + bias } else { v };
        let v = if self.bn.is_some() { (v as f64 * a + b) as f32 } else { v };
        if self.relu && v < 0.0 { 0.0 } else { v }
    }

    /// A plane of channel `co`, in place.
    pub fn plane(&self, p: &mut [f32], co: usize) {
        if self.is_some() {
            let (bias, a, b) = self.channel(co);
            p.iter_mut().for_each(|v| *v = self.one(*v, bias, a, b));
        }
    }

    /// Every channel's coefficients, laid out for `lanes`.
    pub fn coefficients(&self, channels: usize) -> Coefficients {
        let (bias, (a, b)): (Vec<f32>, (Vec<f64>, Vec<f64>)) =
            (0..channels).map(|c| self.channel(c)).map(|(bias, a, b)| (bias, (a, b))).unzip();
        Coefficients { bias, a, b }
    }

    /// `l` consecutive channels from `c0`, one per lane (the Winograd output transform's layout),
    /// with `c` from `coefficients`.
    #[inline(always)]
    pub fn lanes<const L: usize>(&self, v: &mut [f32; L], c: &Coefficients, c0: usize, l: usize) {
        if !self.is_some() {
            return;
        }
        if l < L {
            v.iter_mut()
                .enumerate()
                .take(l)
                .for_each(|(i, v)| *v = self.one(*v, c.bias[c0 + i], c.a[c0 + i], c.b[c0 + i]));
            return;
        }
        let (bias, a, b): (&[f32; L], &[f64; L], &[f64; L]) = (
            c.bias[c0..c0 + L].try_into().expect("L channels"),
            c.a[c0..c0 + L].try_into().expect("L channels"),
            c.b[c0..c0 + L].try_into().expect("L channels"),
        );
        for i in 0..L {
            v[i] = self.one(v[i], bias[i], a[i], b[i]);
        }
    }
}

/// Per-channel bias and BN coefficients, one array each, so that a block of lanes loads them as vectors.
pub struct Coefficients {
    bias: Vec<f32>,
    a: Vec<f64>,
    b: Vec<f64>,
}
