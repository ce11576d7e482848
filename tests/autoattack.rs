//! AutoAttack's standard protocol on a small random CNN (every stage at its standard settings):
//! outputs in the box and the ball, accuracy never rising from stage to stage, ε = 0 giving the
//! clean accuracy, the returned batch reproducing AA, a model without robustness falling to 0%,
//! and AA at most what its deterministic parts find alone.
#[path = "common/attack_setup.rs"]
mod attack_setup;

use attack_setup::{EPS, N, confident, correct, model_and_images, setup};
use mmard::attack::{Attack, AutoAttack, robust_accuracy};
use mmard::dist::Solo;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn percent(flags: &[bool]) -> f64 {
    100.0 * flags.iter().filter(|&&f| f).count() as f64 / flags.len() as f64
}

#[test]
fn the_protocol_keeps_its_invariants() {
    for (setup, batch) in [(setup as fn() -> _, 5), (confident, N)] {
        let (mut model, x, y) = setup();
        let clean = percent(&correct(&mut model, &x, &y));
        let r = AutoAttack { eps: EPS, batch, seed: 0 }.run(&mut model, &x, &y, &Solo, |_| {});
        assert_eq!(r.clean, clean);
        // x ± ε rounds to f32: one ulp of the pixels' scale (1) of slack.
        for (&a, &c) in r.x_adv.data().iter().zip(x.data()) {
            assert!((0.0..=1.0).contains(&a) && (a - c).abs() <= EPS + f32::EPSILON, "{a} from {c}");
        }
        let mut last = clean;
        for s in &r.stages {
            assert!(s.accuracy <= last, "{} raised the accuracy: {last}% -> {}%", s.name, s.accuracy);
            last = s.accuracy;
        }
        assert_eq!(r.accuracy(), last);
        // The returned batch, evaluated again, is AA, point by point.
        assert_eq!(correct(&mut model, &r.x_adv, &y), r.robust);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }
}

#[test]
fn at_eps_zero_aa_is_the_clean_accuracy() {
    let (mut model, x, y) = setup();
    let r = AutoAttack { eps: 0.0, batch: N, seed: 0 }.run(&mut model, &x, &y, &Solo, |_| {});
    assert_eq!(r.accuracy(), r.clean);
    assert_eq!(r.x_adv.data(), x.data());
}

#[test]
fn a_model_without_robustness_falls_to_zero() {
    let (mut model, x) = model_and_images(0.0);
    let y = mmard::nn::eval::predictions(&mmard::nn::eval::logits(&mut model, &x, N));
    let r = AutoAttack { eps: 0.3, batch: N, seed: 0 }.run(&mut model, &x, &y, &Solo, |_| {});
    assert_eq!(r.clean, 100.0);
    assert_eq!(r.accuracy(), 0.0, "stages: {:?}", r.stages);
}

/// In one batch, AA's first stage is APGD-CE alone with the same seed, and FAB-T, deterministic,
/// never leaves a point robust that AA breaks.
#[test]
fn aa_is_at_most_its_parts() {
    let (mut model, x, y) = confident();
    let r = AutoAttack { eps: 0.15, batch: N, seed: 3 }.run(&mut model, &x, &y, &Solo, |_| {});
    let alone = |a: &str, model: &mut _| {
        let attack: Attack = a.parse().unwrap();
        robust_accuracy(model, &x, &y, &attack, 0.15, N, 3, &Solo)
    };
    assert_eq!(r.stages[0].accuracy, alone("apgd-ce", &mut model));
    assert!(r.accuracy() <= alone("fab-t", &mut model));
    assert!(r.accuracy() < r.clean, "AA broke nothing at eps 0.15: {:?}", r.stages);
}

#[test]
fn aa_by_name_runs_the_protocol() {
    let (mut model, x, y) = setup();
    let a: Attack = "aa".parse::<Attack>().unwrap().with_aa_batch(5).with_seed(1);
    assert_eq!(a, Attack::Aa { batch: 5, seed: 1 });
    let via_run = a.run(&mut model, &x, &y, EPS, &mut StdRng::seed_from_u64(0));
    let direct = AutoAttack { eps: EPS, batch: 5, seed: 1 }.run(&mut model, &x, &y, &Solo, |_| {});
    assert_eq!(via_run.data(), direct.x_adv.data());
    assert!(a.check_classes(3).is_err() && a.check_classes(10).is_ok());
}
