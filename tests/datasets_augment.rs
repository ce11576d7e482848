//! The training augmentation: shift-and-flip of one image, the seeded crop and flip of a batch,
//! and the seeded shuffle of an epoch.
use mmard::Tensor;
use mmard::io::augment::{augment, shift_flip, shuffled};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// One channel of a 3×3 image 1..=9 under a shift and flip.
fn small(shift: (isize, isize), flip: bool) -> Vec<f32> {
    let src: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let mut dst = vec![-1.0; 9];
    shift_flip(&src, &mut dst, 3, 3, shift, flip);
    dst
}

#[test]
fn shift_flip_moves_content_where_expected() {
    assert_eq!(small((0, 0), false), [1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    // Output (y, x) reads input (y + dy, x + dx): content moves up, or right for dx < 0.
    assert_eq!(small((1, 0), false), [4., 5., 6., 7., 8., 9., 0., 0., 0.]);
    assert_eq!(small((0, -1), false), [0., 1., 2., 0., 4., 5., 0., 7., 8.]);
    assert_eq!(small((0, 0), true), [3., 2., 1., 6., 5., 4., 9., 8., 7.]);
    // Crop first, then flip (as RandomCrop then RandomHorizontalFlip).
    assert_eq!(small((0, 1), true), [0., 3., 2., 0., 6., 5., 0., 9., 8.]);
    assert_eq!(small((5, 0), false), [0.; 9]);

    // A CIFAR-sized image: one bright pixel at channel 1, (10, 20).
    let mut src = vec![0.0; 3 * 32 * 32];
    src[1024 + 10 * 32 + 20] = 1.0;
    let mut dst = vec![0.0; src.len()];
    shift_flip(&src, &mut dst, 32, 32, (3, -2), false);
    assert_eq!(dst.iter().position(|&v| v == 1.0), Some(1024 + 7 * 32 + 22));
    assert_eq!(dst.iter().sum::<f32>(), 1.0);
    shift_flip(&src, &mut dst, 32, 32, (3, -2), true);
    assert_eq!(dst.iter().position(|&v| v == 1.0), Some(1024 + 7 * 32 + 9));
}

#[test]
fn augment_is_a_seeded_crop_and_flip_per_image() {
    let mut rng = StdRng::seed_from_u64(1);
    let n = 64;
    // Positive values everywhere, so a shift's zeros are recognisable.
    let x = Tensor::from_vec(&[n, 3, 32, 32], (0..n * 3072).map(|_| rng.random_range(0.1f32..1.0)).collect());
    let run = |seed| {
        let mut y = x.clone();
        augment(&mut y, &mut StdRng::seed_from_u64(seed));
        y
    };
    let (a, b) = (run(7), run(7));
    assert_eq!(a.shape(), x.shape());
    assert_eq!(a.data(), b.data());
    assert_ne!(a.data(), run(8).data());

    // Every output image is one of the 9·9·2 crops and flips of its input; over 64 images
    // both flips and the extreme shifts turn up.
    let mut seen = Vec::new();
    for (src, out) in x.data().chunks(3072).zip(a.data().chunks(3072)) {
        let mut dst = vec![0.0; 3072];
        let found = (-4..=4).flat_map(|dy| (-4..=4).flat_map(move |dx| [false, true].map(|f| ((dy, dx), f)))).find(
            |&(shift, flip)| {
                shift_flip(src, &mut dst, 32, 32, shift, flip);
                dst == out
            },
        );
        seen.push(found.expect("augmented image is a crop and flip of its input"));
    }
    assert!(seen.iter().any(|s| s.1) && seen.iter().any(|s| !s.1));
    assert!(seen.iter().any(|s| s.0.0 == -4 || s.0.1 == -4) && seen.iter().any(|s| s.0.0 == 4 || s.0.1 == 4));
}

#[test]
fn shuffled_is_a_seeded_permutation() {
    let p = shuffled(100, &mut StdRng::seed_from_u64(3));
    let mut sorted = p.clone();
    sorted.sort();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    assert_eq!(p, shuffled(100, &mut StdRng::seed_from_u64(3)));
    assert_ne!(p, shuffled(100, &mut StdRng::seed_from_u64(4)));
    assert!(shuffled(0, &mut StdRng::seed_from_u64(3)).is_empty());
}
