//! cuDNN's convolution algorithms chosen by measurement: `--deterministic` keeps only deterministic
//! ones, and a launch that fails falls back to the next candidate. Run on a GPU or the emulated
//! one, whose `cudnnFind*` reports the backward passes' non-deterministic algorithm 0 fastest and
//! whose launches of the algorithms MMARD_EMU_CUDNN_FAIL lists fail.
#![cfg(feature = "cuda")]
use mmard::{Device, GpuOptions};
use std::process::Command;

/// The GPU with `opts`, or None with a printed reason (a failure under MMARD_REQUIRE_GPU).
fn gpu(opts: GpuOptions) -> Option<std::sync::Arc<mmard::cuda::Gpu>> {
    match Device::open("cuda", opts) {
        Ok(Device::Cuda(g)) => Some(g),
        Ok(Device::Cpu) => unreachable!("cuda opens a GPU"),
        Err(e) if std::env::var_os("MMARD_REQUIRE_GPU").is_some() => panic!("MMARD_REQUIRE_GPU is set: {e}"),
        Err(e) => {
            println!("skipped: {e}");
            None
        }
    }
}

fn emulated(g: &mmard::cuda::Gpu) -> bool {
    g.name.contains("emulated")
}

/// The input gradient of a 3×3 convolution, with the algorithm it ran.
fn backward_data(g: &mmard::cuda::Gpu) -> (u32, Vec<f32>) {
    let (x, w) = ([2, 3, 6, 5], [4, 3, 3, 3]);
    let p = g.conv_plan(x, w, 1, 1, 1);
    let wv: Vec<f32> = (0..108).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
    let dy: Vec<f32> = (0..p.out.iter().product::<usize>()).map(|i| (i % 5) as f32 - 2.0).collect();
    let mut dx = g.zeros::<f32>(x.iter().product());
    g.conv_backward_data(&p, &g.upload(&dy), &g.upload(&wv), &mut dx);
    (g.conv_algorithm(&p, false), g.download(&dx))
}

#[test]
fn deterministic_keeps_only_deterministic_algorithms() {
    let Some(fastest) = gpu(GpuOptions::default()) else { return };
    let Some(det) = gpu(GpuOptions { deterministic: true, ..Default::default() }) else { return };
    let ((a, dx_a), (b, dx_b)) = (backward_data(&fastest), backward_data(&det));
    if emulated(&fastest) {
        // the emulator measures the atomics-based algorithm 0 fastest
        assert_eq!(a, 0, "without --deterministic the fastest algorithm is taken");
    }
    assert_ne!(b, 0, "--deterministic took CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, which adds with atomics");
    let worst = dx_a.iter().zip(&dx_b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "the two algorithms' input gradients differ by {worst}");
}

/// `mmard --device cuda doctor` with the emulator's launches of `failing` refused.
fn doctor_refusing(failing: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mmard"))
        .args(["--device", "cuda", "doctor"])
        .env("MMARD_EMU_CUDNN_FAIL", failing)
        .output()
        .expect("mmard runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_failing_algorithm_falls_back_to_the_next() {
    let Some(g) = gpu(GpuOptions::default()) else { return };
    if !emulated(&g) {
        println!("skipped: failures are injected by the emulated GPU only");
        return;
    }
    // each direction's fastest fails: the next ones give the doctor's results
    let (ok, out) = doctor_refusing("forward:0,data:0,filter:0");
    assert!(ok, "the doctor failed with each direction's first algorithm refused:\n{out}");
    // every forward algorithm fails: the error names the convolution and each attempt
    let (ok, out) = doctor_refusing("forward:0,forward:1,forward:2");
    assert!(!ok, "the doctor passed with every forward algorithm refused:\n{out}");
    assert!(out.contains("cuDNN Forward failed") && out.contains("algorithm 2"), "{out}");
}
