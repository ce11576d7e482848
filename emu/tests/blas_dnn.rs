//! The cuBLAS and cuDNN stand-ins: builds each `tests/blas_dnn_*.cpp` program with g++ against
//! `src/cublas*.cpp` or `src/cudnn*.cpp` (their own registry stands in for libcuda's range check)
//! and runs it; then checks that the built libraries export every symbol mmard reaches through
//! cudarc.
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// One g++ at a time: the tests run in parallel threads, the machines have few cores.
static COMPILE: Mutex<()> = Mutex::new(());

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/<program>.cpp` with every `src/<prefix>*.cpp`, built as the library build does.
fn build(program: &str, prefix: &str) -> PathBuf {
    let src = here().join("src");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && n.ends_with(".cpp")
        })
        .collect();
    sources.sort();
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join(program);
    let _one = COMPILE.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new("g++")
        .args(["-std=c++17", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror"])
        .arg(here().join("tests").join(format!("{program}.cpp")))
        .args(&sources)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("g++ must be on PATH");
    assert!(out.status.success(), "g++ failed on {program}:\n{}", String::from_utf8_lossy(&out.stderr));
    exe
}

fn run(exe: &Path, arg: Option<&str>) -> Output {
    Command::new(exe).args(arg).output().unwrap()
}

fn passes(exe: &Path) {
    let out = run(exe, None);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}{}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The program, given `arg`, must die of SIGABRT after printing `message`.
fn aborts(exe: &Path, arg: &str, message: &str) {
    let out = run(exe, Some(arg));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(6), "{} {arg}: expected SIGABRT, got {}:\n{err}", exe.display(), out.status);
    assert!(err.contains(message), "{} {arg}: stderr lacks {message:?}:\n{err}", exe.display());
}

#[test]
fn gemm_matches_reference_and_checks_ranges() {
    let exe = build("blas_dnn_gemm", "cublas");
    passes(&exe);
    aborts(&exe, "oob", "mmard-emu: cublasSgemm_v2: C outside a live allocation");
}

#[test]
fn convolutions_match_reference_and_check_ranges() {
    let exe = build("blas_dnn_conv", "cudnn");
    passes(&exe);
    aborts(&exe, "oob-x", "mmard-emu: cudnnConvolutionForward: x outside a live allocation");
    aborts(&exe, "oob-ws", "mmard-emu: cudnnConvolutionForward: workSpace outside a live allocation");
}

/// What mmard calls through cudarc (src/cuda/mod.rs, conv.rs, ops/linear.rs, cmd/doctor.rs).
const CUBLAS: &[&str] =
    &["cublasCreate_v2", "cublasDestroy_v2", "cublasSetStream_v2", "cublasSgemm_v2", "cublasGetVersion_v2"];
const CUDNN: &[&str] = &[
    "cudnnCreate",
    "cudnnDestroy",
    "cudnnSetStream",
    "cudnnGetVersion",
    "cudnnCreateTensorDescriptor",
    "cudnnSetTensor4dDescriptor",
    "cudnnDestroyTensorDescriptor",
    "cudnnCreateFilterDescriptor",
    "cudnnSetFilter4dDescriptor",
    "cudnnDestroyFilterDescriptor",
    "cudnnCreateConvolutionDescriptor",
    "cudnnSetConvolution2dDescriptor",
    "cudnnSetConvolutionGroupCount",
    "cudnnSetConvolutionMathType",
    "cudnnDestroyConvolutionDescriptor",
    "cudnnGetConvolutionForwardAlgorithm_v7",
    "cudnnGetConvolutionForwardWorkspaceSize",
    "cudnnConvolutionForward",
    "cudnnGetConvolutionBackwardDataAlgorithm_v7",
    "cudnnGetConvolutionBackwardDataWorkspaceSize",
    "cudnnConvolutionBackwardData",
    "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
    "cudnnGetConvolutionBackwardFilterWorkspaceSize",
    "cudnnConvolutionBackwardFilter",
];

#[test]
fn built_libraries_export_what_mmard_calls() {
    let lib = Path::new(env!("MMARD_EMU_LIB_DIR"));
    for (file, symbols) in [("libcublas.so.13", CUBLAS), ("libcudnn.so.9", CUDNN)] {
        let out = Command::new("nm").args(["-D", "--defined-only"]).arg(lib.join(file)).output().expect("nm");
        assert!(out.status.success(), "nm {file}: {}", String::from_utf8_lossy(&out.stderr));
        let table = String::from_utf8_lossy(&out.stdout);
        let exported: Vec<&str> = table.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
        for s in symbols {
            assert!(exported.contains(s), "{file} does not export {s}");
        }
        // the range check must come from libcuda, never from a copy of its own
        assert!(!exported.contains(&"emu_check_range"), "{file} defines emu_check_range itself");
    }
}
