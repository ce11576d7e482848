//! The L∞ attacks on a small random CNN: the ball and the box, accuracy never above clean,
//! determinism, the losses they climb, the DLR gradient, and APGD's checkpoint schedule. The
//! AutoAttack protocol's own invariants are in `tests/autoattack.rs`.
#[path = "common/attack_setup.rs"]
mod attack_setup;

use attack_setup::{EPS, N, confident, correct, setup};
use mmard::Tensor;
use mmard::attack::apgd::checkpoints;
use mmard::attack::losses::{cw_margin, dlr_targeted};
use mmard::attack::{Attack, AttackLoss, Pgd, robust_accuracy};
use mmard::dist::Solo;
use mmard::nn::Model;
use mmard::nn::eval::logits;
use mmard::ops::loss::{LossOut, cross_entropy};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn short_attacks() -> Vec<Attack> {
    vec![
        Attack::Clean,
        Attack::Fgsm,
        "pgd10".parse().unwrap(),
        Attack::Cw(Pgd { steps: 10, step: None, random_start: true }),
        Attack::ApgdCe { iters: 20, restarts: 2 },
        Attack::ApgdT { iters: 10, targets: 3 },
        Attack::FabT { iters: 20, targets: 3 },
        Attack::Square { queries: 300, p_init: 0.8, seed: 0 },
    ]
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&v| v as f64).sum::<f64>() / v.len() as f64
}

#[test]
fn every_attack_stays_in_the_ball_and_the_box_and_never_beats_clean() {
    // Diverse labels with two samples misclassified from the start, where every attack breaks
    // something; and confident class-0 images, where samples survive and APGD returns its best points.
    for (setup, must_break) in [(setup as fn() -> _, true), (confident, false)] {
        let (mut model, x, y) = setup();
        let clean = correct(&mut model, &x, &y);
        let clean_acc = 100.0 * clean.iter().filter(|&&c| c).count() as f64 / N as f64;
        for attack in short_attacks() {
            let x_adv = attack.run(&mut model, &x, &y, EPS, &mut StdRng::seed_from_u64(0));
            assert_eq!(x_adv.shape(), x.shape());
            for (&a, &c) in x_adv.data().iter().zip(x.data()) {
                assert!((a - c).abs() <= EPS + 1e-6 && (0.0..=1.0).contains(&a), "{attack}: {a} from {c}");
            }
            let adv = correct(&mut model, &x_adv, &y);
            for s in 0..N {
                assert!(clean[s] || !adv[s], "{attack}: sample {s} misclassified clean, correct under attack");
                if !clean[s] {
                    assert_eq!(
                        x_adv.data()[s * 784..][..784],
                        x.data()[s * 784..][..784],
                        "{attack}: misclassified sample {s} was moved"
                    );
                }
            }
            // Five images at a time: the last batch holds one.
            let acc = robust_accuracy(&mut model, &x, &y, &attack, EPS, 5, 0, &Solo);
            assert!(acc <= clean_acc, "{attack}: {acc}% under attack, {clean_acc}% clean");
            if attack == Attack::Clean {
                assert_eq!(acc, clean_acc);
            } else if must_break {
                assert!(acc < clean_acc, "{attack} broke nothing at eps {EPS}");
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_points() {
    let (mut model, x, y) = setup();
    for attack in short_attacks() {
        let a = attack.run(&mut model, &x, &y, EPS, &mut StdRng::seed_from_u64(3));
        let b = attack.run(&mut model, &x, &y, EPS, &mut StdRng::seed_from_u64(3));
        assert_eq!(a.data(), b.data(), "{attack}");
    }
    let pgd: Attack = "pgd10".parse().unwrap();
    let a = pgd.run(&mut model, &x, &y, EPS, &mut StdRng::seed_from_u64(3));
    let b = pgd.run(&mut model, &x, &y, EPS, &mut StdRng::seed_from_u64(4));
    assert_ne!(a.data(), b.data(), "another seed, another random start");
}

#[test]
fn pgd_with_zero_steps_and_no_random_start_returns_x() {
    let (mut model, x, y) = setup();
    let attack = Attack::Pgd(Pgd { steps: 0, step: None, random_start: false });
    assert_eq!(attack.run(&mut model, &x, &y, EPS, &mut StdRng::seed_from_u64(0)).data(), x.data());
}

#[test]
fn pgd_raises_the_cross_entropy() {
    // At this eps nothing breaks, so no sample is frozen and every one climbs for all steps.
    let (mut model, x, y) = confident();
    let x_adv = Attack::Pgd(Pgd { steps: 10, step: None, random_start: false }).run(
        &mut model,
        &x,
        &y,
        0.05,
        &mut StdRng::seed_from_u64(0),
    );
    let before = cross_entropy(&logits(&mut model, &x, N), &y).per_sample.into_vec();
    let after = cross_entropy(&logits(&mut model, &x_adv, N), &y).per_sample.into_vec();
    assert!(mean(&after) > mean(&before), "CE {} after PGD, {} before", mean(&after), mean(&before));
}

#[test]
fn apgd_ce_is_at_least_as_strong_as_pgd20() {
    let (mut model, x, y) = confident();
    let pgd20: Attack = "pgd20".parse().unwrap();
    let apgd: Attack = "apgd-ce".parse().unwrap();
    // At eps 0.05 nothing breaks and both return their last / best points: compare the loss there.
    let ce = |model: &mut Model, a: &Attack| {
        let x_adv = a.run(model, &x, &y, 0.05, &mut StdRng::seed_from_u64(0));
        mean(cross_entropy(&logits(model, &x_adv, N), &y).per_sample.data())
    };
    let (l_pgd, l_apgd) = (ce(&mut model, &pgd20), ce(&mut model, &apgd));
    assert!(l_apgd >= l_pgd, "CE: APGD-CE {l_apgd}, PGD-20 {l_pgd}");
    // At eps 0.1 samples break: compare how many.
    let acc = |model: &mut Model, a: &Attack| robust_accuracy(model, &x, &y, a, 0.1, N, 0, &Solo);
    let (a_pgd, a_apgd) = (acc(&mut model, &pgd20), acc(&mut model, &apgd));
    assert!(a_apgd <= a_pgd && a_apgd < 100.0, "robust accuracy: APGD-CE {a_apgd}%, PGD-20 {a_pgd}%");
}

/// Central differences of the summed loss against its analytic logit gradient.
fn check_logit_gradient(z: &Tensor, f: impl Fn(&Tensor) -> LossOut) {
    let g = f(z).grads.remove(0);
    let h = 1e-3;
    for j in 0..z.numel() {
        let shifted = |d: f32| {
            let mut t = z.clone();
            t.data_mut()[j] += d;
            f(&t).sum()
        };
        let fd = (shifted(h) - shifted(-h)) / (2.0 * h as f64);
        assert!(
            (fd - g.data()[j] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
            "logit {j}: finite difference {fd}, analytic {}",
            g.data()[j]
        );
    }
}

#[test]
fn dlr_targeted_value_and_gradient() {
    // Distinct logits, at least 0.1 apart, so no step of the differences reorders them.
    let z = Tensor::from_vec(&[2, 5], vec![2.0, -1.0, 0.5, 1.2, -0.3, 0.1, 0.9, -2.0, 0.4, 1.7]);
    let (y, t) = ([0, 4], [3, 1]);
    let out = dlr_targeted(&z, &y, &t);
    // row 0: π = (2.0, 1.2, 0.5, -0.3): −(2.0 − 1.2) / (2.0 − (0.5 − 0.3)/2)
    assert!((out.per_sample.data()[0] - (-0.8 / 1.9)).abs() < 1e-6);
    check_logit_gradient(&z, |z| dlr_targeted(z, &y, &t));
}

#[test]
fn cw_margin_value_and_gradient() {
    let z = Tensor::from_vec(&[2, 4], vec![2.0, -1.0, 0.5, 1.2, 0.1, 0.9, -2.0, 0.4]);
    let out = cw_margin(&z, &[0, 2]);
    assert!((out.per_sample.data()[0] - (1.2 - 2.0)).abs() < 1e-6 && (out.per_sample.data()[1] - 2.9).abs() < 1e-6);
    check_logit_gradient(&z, |z| cw_margin(z, &[0, 2]));
    assert_eq!(AttackLoss::Margin.eval(&z, &[0, 2]).grads[0].data(), out.grads[0].data());
}

#[test]
fn apgd_checkpoints_follow_the_reference() {
    // The reference's integer schedule: intervals 22, 19, 16, 13, 10, 7, 6, 6 (next would pass 100).
    assert_eq!(checkpoints(100), [0, 22, 41, 57, 70, 80, 87, 93, 99]);
    assert_eq!(checkpoints(10), [0, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(checkpoints(0), [0]);
}

#[test]
fn attacks_parse_by_name() {
    for name in Attack::names() {
        assert_eq!(name.parse::<Attack>().unwrap().to_string(), name);
    }
    assert_eq!("pgd20".parse::<Attack>().unwrap(), Attack::Pgd(Pgd { steps: 20, step: None, random_start: true }));
    assert_eq!("cw".parse::<Attack>().unwrap(), Attack::Cw(Pgd { steps: 30, step: None, random_start: true }));
    assert_eq!("apgd-t".parse::<Attack>().unwrap(), Attack::ApgdT { iters: 100, targets: 9 });
    assert_eq!("pgd7".parse::<Attack>().unwrap().to_string(), "pgd7");
    let e = "deepfool".parse::<Attack>().unwrap_err().to_string();
    assert!(e.contains("deepfool") && Attack::names().all(|n| e.contains(n)), "{e}");
}
