//! PyTorch's CPU random stream, so that the attacks of AutoAttack draw what the reference draws:
//! `torch.manual_seed(s)` seeds an MT19937 with `s mod 2³²` (`init_genrand`), and `torch.rand` in
//! f32 turns each 32-bit output into `(u & 0xFFFFFF) · 2⁻²⁴`, element by element in row-major
//! order. The reference draws on the CPU generator even when its model runs on a GPU, so the stream
//! does not depend on the device. `rand_mt` is the reference MT19937. Tests: below.
use rand_mt::Mt;

pub struct TorchRng(Mt);

impl TorchRng {
    /// The generator as `torch.manual_seed(seed)` leaves it.
    pub fn manual_seed(seed: u64) -> TorchRng {
        TorchRng(Mt::new(seed as u32))
    }

    /// One value of `torch.rand`, in [0, 1).
    pub fn rand(&mut self) -> f32 {
        (self.0.next_u32() & 0xFF_FFFF) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// `torch.sign(2 * torch.rand(..) - 1)`: ±1 (0 when the draw is exactly ½, as the reference).
    pub fn sign(&mut self) -> f32 {
        let t = 2.0 * self.rand() - 1.0;
        if t > 0.0 {
            1.0
        } else if t < 0.0 {
            -1.0
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torch 2.15: `torch.manual_seed(0); torch.rand(3)` and the raw MT outputs for seed 0.
    #[test]
    fn matches_torch_rand() {
        let mut mt = Mt::new(0);
        assert_eq!([mt.next_u32(), mt.next_u32(), mt.next_u32()], [2357136044, 2546248239, 3071714933]);
        let mut r = TorchRng::manual_seed(0);
        let want = [2357136044u32, 2546248239, 3071714933].map(|u| (u & 0xFF_FFFF) as f32 / 16_777_216.0);
        assert_eq!([r.rand(), r.rand(), r.rand()], want);
        assert_eq!(want.map(f64::from), [0.49625658988952637, 0.7682217955589294, 0.08847743272781372]);
        assert_eq!(TorchRng::manual_seed((1 << 32) + 5).rand(), TorchRng::manual_seed(5).rand());
    }
}
