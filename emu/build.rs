//! Builds the emulated GPU's stand-in libraries into `$OUT_DIR/lib` with g++: `libcuda.so.1` (the
//! driver API and the runtime, with every `kernels/*.cu` compiled as C++ and registered by name),
//! and `libcublas.so.13` / `libcudnn.so.9` / `libnccl.so.2` from `src/cublas*.cpp` /
//! `src/cudnn*.cpp` / `src/nccl*.cpp` where those exist. The folder is baked into the `mmard-emu` binary and the tests as `MMARD_EMU_LIB_DIR`.
// The main crate's reader of kernel signatures: the emulator registers exactly the kernels that
// the launchers call, by the same parse (its launcher generator is the main crate's alone).
#[allow(dead_code)]
#[path = "../build/kernels.rs"]
mod kernels;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// -ffp-contract=off: no fused multiply-adds, like nvcc --fmad=false in the real build.
/// -fstack-clash-protection: a kernel's large locals touch every page, so they hit the guard page
/// below a thread's stack instead of writing past it.
const FLAGS: &[&str] =
    &["-O2", "-fPIC", "-ffp-contract=off", "-fstack-clash-protection", "-std=c++17", "-fvisibility=hidden", "-g"];

fn main() {
    let here = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let kernels = here.join("../kernels").canonicalize().expect("the repository's kernels/ folder");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let lib = out.join("lib");
    let obj = out.join("obj");
    for d in [&lib, &obj] {
        fs::create_dir_all(d).unwrap();
    }
    for p in ["src", "include", "exports.map"] {
        println!("cargo:rerun-if-changed={}", here.join(p).display());
    }
    println!("cargo:rerun-if-changed={}", kernels.display());
    println!("cargo:rerun-if-changed={}", here.join("../build/kernels.rs").display());
    println!("cargo:rustc-env=MMARD_EMU_LIB_DIR={}", lib.display());

    let include = here.join("include");
    let sources = sorted(&here.join("src"), ".cpp");
    let named = |prefix: &str| -> Vec<PathBuf> {
        sources.iter().filter(|p| file_name(p).starts_with(prefix)).cloned().collect()
    };
    let (blas, dnn, nccl) = (named("cublas"), named("cudnn"), named("nccl"));
    let runtime: Vec<PathBuf> =
        sources.iter().filter(|p| ![&blas, &dnn, &nccl].iter().any(|l| l.contains(p))).cloned().collect();

    let mut cuda_objs: Vec<PathBuf> = runtime.iter().map(|s| compile(s, &obj, &include, &[])).collect();
    let emu_h = include.join("cuda_emu.h");
    for (wrapper, stem) in kernel_wrappers(&kernels, &obj) {
        // Each file's __shared__ variables in a section of their own (see cuda_emu.h).
        let section = format!("-DEMU_SHARED=emu_shared_{stem}");
        let extra = ["-include".as_ref(), emu_h.as_os_str(), section.as_ref()];
        cuda_objs.push(compile(&wrapper, &obj, &include, &extra));
    }
    link(&cuda_objs, &lib, "libcuda.so.1", "libcuda.so", &here, false);
    let libs = [
        (blas, "libcublas.so.13", "libcublas.so"),
        (dnn, "libcudnn.so.9", "libcudnn.so"),
        (nccl, "libnccl.so.2", "libnccl.so"),
    ];
    for (srcs, soname, plain) in libs {
        if !srcs.is_empty() {
            let objs: Vec<PathBuf> = srcs.iter().map(|s| compile(s, &obj, &include, &[])).collect();
            link(&objs, &lib, soname, plain, &here, true);
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn sorted(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| file_name(p).ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// One C++ file per kernels/X.cu: the file inside a namespace of its own (file-local helpers of two
/// files may share a name, as nvcc allows), then a registration of each of its kernels.
/// Returns each wrapper with the file's stem made an identifier.
fn kernel_wrappers(dir: &Path, obj: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut wrappers = Vec::new();
    for cu in sorted(dir, ".cu") {
        let text = fs::read_to_string(&cu).unwrap();
        let module = cu.file_stem().unwrap().to_string_lossy().into_owned();
        let parsed = kernels::parse(&module, &text).unwrap_or_else(|e| panic!("{e}"));
        let stem: String = cu
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let mut w = format!("namespace mmard_kernels_{stem} {{\n#include \"{}\"\n", cu.display());
        for k in &parsed {
            w += &format!("EMU_REGISTER({});\n", k.name);
        }
        found.extend(parsed);
        w += "}\n";
        let path = obj.join(format!("kernels_{stem}.cpp"));
        if fs::read_to_string(&path).ok().as_deref() != Some(w.as_str()) {
            fs::write(&path, w).unwrap();
        }
        wrappers.push((path, stem));
    }
    kernels::check_unique(&found).unwrap_or_else(|e| panic!("{e}"));
    wrappers
}

fn run(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("could not run g++ ({e}); the emulator needs g++ on PATH"));
    if !o.status.success() {
        panic!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
    }
}

fn compile(src: &Path, obj: &Path, include: &Path, extra: &[&std::ffi::OsStr]) -> PathBuf {
    let o = obj.join(file_name(src).replace(".cpp", ".o"));
    run(Command::new("g++").args(FLAGS).arg("-I").arg(include).args(extra).arg("-c").arg(src).arg("-o").arg(&o));
    o
}

/// Links `soname` into `lib` with a `plain` (unversioned) symlink beside it: cudarc tries the plain
/// name first. cuBLAS, cuDNN and NCCL stand-ins link the libcuda stand-in beside them (for
/// emu_check_range).
fn link(objs: &[PathBuf], lib: &Path, soname: &str, plain: &str, here: &Path, with_cuda: bool) {
    let mut cmd = Command::new("g++");
    cmd.arg("-shared").arg(format!("-Wl,-soname,{soname}"));
    cmd.arg(format!("-Wl,--version-script={}", here.join("exports.map").display()));
    cmd.args(objs).arg("-o").arg(lib.join(soname));
    if with_cuda {
        cmd.arg("-L").arg(lib).arg("-lcuda").arg("-Wl,-rpath,$ORIGIN");
    }
    run(&mut cmd);
    let link = lib.join(plain);
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(soname, &link).unwrap();
}
