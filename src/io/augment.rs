//! Training-time shuffling and augmentation: a random crop with zero padding 4 and a random
//! horizontal flip per image, as torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip
//! do for CIFAR. Everything is deterministic given the rng state.
use crate::tensor::Tensor;
use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// RandomCrop's zero padding: the largest shift in each direction.
const PAD: i32 = 4;

/// A random permutation of `0..n`.
pub fn shuffled(n: usize, rng: &mut StdRng) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(rng);
    idx
}

/// Per image of an N×C×H×W batch: a shift by dy, dx ∈ [-4, 4] with zeros filling what it
/// uncovers (a 32×32 crop of the image padded by 4), then a left-right flip with probability 1/2.
pub fn augment(x: &mut Tensor, rng: &mut StdRng) {
    let (_, c, h, w) = x.dims4();
    let m = c * h * w;
    if m == 0 {
        return;
    }
    let mut src = vec![0.0; m];
    for img in x.data_mut().chunks_exact_mut(m) {
        // rand samples no isize (its width varies by platform): draw i32.
        let dy = rng.random_range(-PAD..=PAD) as isize;
        let dx = rng.random_range(-PAD..=PAD) as isize;
        let flip = rng.random_bool(0.5);
        src.copy_from_slice(img);
        shift_flip(&src, img, h, w, (dy, dx), flip);
    }
}

/// One C×H×W image (`src` and `dst` the same length): `dst` pixel (y, x) = `src` pixel
/// (y + dy, x + dx), 0 where that falls outside; then mirrored left-right when `flip`.
pub fn shift_flip(src: &[f32], dst: &mut [f32], h: usize, w: usize, (dy, dx): (isize, isize), flip: bool) {
    if h * w == 0 {
        return;
    }
    let inside = |v: isize, len: usize| (0..len as isize).contains(&v).then_some(v as usize);
    for (s, d) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(h * w)) {
        for (y, row) in d.chunks_exact_mut(w).enumerate() {
            let Some(sy) = inside(y as isize + dy, h) else {
                row.fill(0.0);
                continue;
            };
            let s_row = &s[sy * w..(sy + 1) * w];
            for (x, v) in row.iter_mut().enumerate() {
                // Flipping after the crop: output column x shows cropped column w - 1 - x.
                let cx = if flip { w - 1 - x } else { x };
                *v = inside(cx as isize + dx, w).map_or(0.0, |sx| s_row[sx]);
            }
        }
    }
}
