//! The emulator against itself: C++ programs (tests/*.cpp) that drive the libcuda stand-in, built
//! with g++ and run as subprocesses. Positive: kernels of kernels/*.cu match references bit for
//! bit under two seeds. Negative controls: each planted bug (tests/planted.cpp) must be caught.
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

const LIB_DIR: &str = env!("MMARD_EMU_LIB_DIR");
const SIGABRT: i32 = 6;

/// Builds tests/NAME.cpp once per test run (one g++ at a time).
fn program(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("emu-{name}"));
    if !built.iter().any(|b| b == name) {
        let o = Command::new("g++")
            .args(["-O1", "-g", "-std=c++17", "-ffp-contract=off", "-fstack-clash-protection", "-x", "c++"])
            .args(["-include", "cuda_emu.h"])
            .arg("-I")
            .arg(here.join("include"))
            .arg(here.join("tests").join(format!("{name}.cpp")))
            .arg("-L")
            .arg(LIB_DIR)
            .arg("-lcuda")
            .arg(format!("-Wl,-rpath,{LIB_DIR}"))
            .arg("-o")
            .arg(&exe)
            .output()
            .expect("g++");
        assert!(o.status.success(), "g++ {name}.cpp failed:\n{}", String::from_utf8_lossy(&o.stderr));
        built.push(name.to_string());
    }
    exe
}

fn run(name: &str, args: &[&str], seed: u64) -> Output {
    Command::new(program(name)).args(args).env("MMARD_EMU_SEED", seed.to_string()).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The planted bug `mode` must stop the program (abort) with a message holding every one of `says`.
fn must_abort(mode: &str, says: &[&str]) {
    let o = run("planted", &[mode], 1);
    let err = stderr(&o);
    assert_eq!(o.status.signal(), Some(SIGABRT), "{mode}: expected an abort, got {:?}; stderr:\n{err}", o.status);
    for s in says {
        assert!(err.contains(s), "{mode}: stderr lacks {s:?}:\n{err}");
    }
}

#[test]
fn project_kernels_match_references_under_two_seeds() {
    let a = run("project_kernels", &[], 1);
    let b = run("project_kernels", &[], 987654321);
    for o in [&a, &b] {
        assert!(o.status.success(), "{:?}: {}", o.status, stderr(o));
    }
    assert_eq!(a.stdout, b.stdout, "results differ between seeds");
}

#[test]
fn driver_calls_answer_like_the_driver() {
    let o = run("driver_api", &[], 1);
    assert!(o.status.success(), "{:?}: {}", o.status, stderr(&o));
}

#[test]
fn shuffles_follow_cuda() {
    let o = run("shuffles", &[], 1);
    assert!(o.status.success(), "{:?}: {}", o.status, stderr(&o));
}

#[test]
fn missing_barrier_is_caught() {
    // Poisoned shared memory and a seeded warp order: the race shows as a wrong or seed-dependent sum.
    let runs: Vec<Output> = (1..=3).map(|s| run("planted", &["race"], s)).collect();
    let wrong = runs.iter().any(|o| o.status.code() == Some(1));
    let differ = runs.windows(2).any(|w| w[0].stdout != w[1].stdout);
    assert!(wrong || differ, "the race went unnoticed: {:?}", runs.iter().map(|o| o.status).collect::<Vec<_>>());
}

#[test]
fn wrong_formula_is_caught() {
    let o = run("planted", &["wrong_formula"], 1);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn out_of_bounds_access_stops_with_the_kernel_name() {
    must_abort("out_of_bounds", &["mmard-emu: copy_off_by_one(", "invalid read", "0 bytes past the end of allocation"]);
}

#[test]
fn barrier_reached_by_part_of_a_block_stops() {
    must_abort("partial_barrier", &["barrier_after_return(", "__syncthreads is reached by 32 of its 64 threads"]);
}

#[test]
fn barriers_at_different_places_stop() {
    must_abort("divergent_barrier", &["divergent_barriers(", "wait at different __syncthreads"]);
}

#[test]
fn shuffle_reached_by_part_of_a_warp_stops() {
    must_abort("partial_shuffle", &["shuffle_in_branch(", "a shuffle is reached by 16 of its 32 lanes"]);
    must_abort("partial_warp", &["bn_slice_sums(", "over a warp of 16 lanes"]);
}

#[test]
fn stack_overflow_stops() {
    must_abort("stack_overflow", &["large_locals(", "stack overflow"]);
}

#[test]
fn launches_beyond_the_limits_stop() {
    must_abort("block_too_large", &["block (2048,1,1) exceeds the device's limits"]);
    must_abort("grid_too_large", &["grid (1,70000,1) exceeds the device's limits"]);
    must_abort("shared_too_large", &["large_shared(", "52000 bytes of static shared memory"]);
}

#[test]
fn swapped_arguments_are_caught() {
    must_abort("swapped_arguments", &["relu_fwd(", "argument 1", "is not a pointer into live device memory"]);
    must_abort("swapped_buffers", &["relu_fwd(", "invalid write", "past the end of allocation", "(40 bytes, live)"]);
}

#[test]
fn uses_after_free_are_caught() {
    must_abort("use_after_free", &["relu_fwd(", "argument 0", "freed"]);
    must_abort("freed_through_table", &["sgd_update(", "invalid read", "freed"]);
    must_abort("double_free", &["cuMemFree_v2(", "freed before"]);
}

#[test]
fn copies_are_range_checked() {
    must_abort("copy_past_end", &["cuMemcpyHtoD_v2", "not inside one live device allocation"]);
}

#[test]
fn runner_prints_the_library_folder() {
    let exe = env!("CARGO_BIN_EXE_mmard-emu");
    let o = Command::new(exe).arg("--lib-dir").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), LIB_DIR);
    for lib in ["libcuda.so", "libcuda.so.1"] {
        assert!(Path::new(LIB_DIR).join(lib).exists(), "{lib} missing");
    }
    let o = Command::new(exe).args(["sh", "-c", "echo $LD_LIBRARY_PATH"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).starts_with(LIB_DIR));
}
