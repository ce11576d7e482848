//! Zero padding of NCHW maps by different amounts on each side, as `F.pad(x, (left, right, top,
//! bottom))`: the DeepMind WideResNet's stride-2 convolutions read their input padded by 0 on the
//! left and top and 1 on the right and bottom, which no symmetric convolution padding (nor cuDNN's)
//! can express. Its backward crops the gradient. Tests: `tests/gradcheck.rs`, the
//! `dm_wide_resnet` fixtures (`tests/parity.rs`); kernels in `kernels/pad.cu`.
use crate::tape::{Backward, Grads, Tape, Var};
use crate::tensor::Tensor;
use rayon::prelude::*;

/// Padding on each side of a map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pad {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

/// Copies the (h, w) planes of `src` into the (h + top + bottom, w + left + right) planes of the
/// result at (top, left) when `grow`, or the reverse (the crop) when not.
fn frame(src: &Tensor, p: Pad, grow: bool) -> Tensor {
    let (n, c, sh, sw) = src.dims4();
    let (h, w) = if grow { (sh, sw) } else { (sh - p.top - p.bottom, sw - p.left - p.right) };
    let (ph, pw) = (h + p.top + p.bottom, w + p.left + p.right);
    let shape = if grow { [n, c, ph, pw] } else { [n, c, h, w] };
    crate::on_gpu!(src, |g| {
        let total = shape.iter().product::<usize>();
        let mut out = g.empty(total);
        let a = [h, w, p.top, p.left, ph, pw, total].map(|v| v as i32);
        let [h, w, top, left, ph, pw, total_i] = a;
        if grow {
            crate::cuda::kernels::pad2d(&g, g.grid(total), src.cu(), &mut out, h, w, top, left, ph, pw, total_i);
        } else {
            crate::cuda::kernels::crop2d(&g, g.grid(total), src.cu(), &mut out, h, w, top, left, ph, pw, total_i);
        }
        Tensor::from_cuda(&g, &shape, out)
    });
    let mut out = Tensor::zeros(&shape);
    let (big, small) = ((ph, pw), (h, w));
    let sd = src.data();
    out.data_mut().par_chunks_mut(if grow { big.0 * big.1 } else { small.0 * small.1 }).enumerate().for_each(
        |(i, o)| {
            for r in 0..h {
                if grow {
                    o[(r + p.top) * pw + p.left..][..w].copy_from_slice(&sd[i * h * w + r * w..][..w]);
                } else {
                    o[r * w..][..w].copy_from_slice(&sd[i * ph * pw + (r + p.top) * pw + p.left..][..w]);
                }
            }
        },
    );
    out
}

struct PadNode(Pad);

impl Backward for PadNode {
    fn backward(&self, gy: &Tensor, _: &[bool], _: bool) -> Grads {
        Grads { inputs: vec![Some(frame(gy, self.0, false))], params: Vec::new() }
    }
}

/// `x` zero-padded by `p`, as a recorded op.
pub fn pad2d(tape: &mut Tape, x: &Var, p: Pad) -> Var {
    tape.record(frame(&x.val, p, true), &[x], false, |_| PadNode(p))
}
