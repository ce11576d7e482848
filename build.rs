//! Reads every kernel's signature from `kernels/*.cu` (a name defined twice fails the build). With
//! `--features cuda` it also compiles each file to PTX with nvcc (in parallel) and embeds it, with
//! the kernel names each module holds, through `$OUT_DIR/kernels.rs`, and writes a typed launcher
//! per kernel to `$OUT_DIR/launchers.rs` (`build/kernels.rs`). Without the feature it needs no CUDA.
//! nvcc is `$NVCC`, else `nvcc` on PATH, else `$CUDA_HOME/bin/nvcc`; the target is `$CUDA_ARCH`
//! (default compute_80: PTX that the driver JIT-compiles on Ampere and Hopper).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs, thread};

#[path = "build/kernels.rs"]
mod kernels;

fn main() {
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-changed=build");
    for v in ["NVCC", "CUDA_HOME", "CUDA_ARCH"] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let mut sources: Vec<PathBuf> = fs::read_dir("kernels")
        .expect("kernels/ folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    sources.sort();
    // Every build reads the kernels' signatures, so a duplicate name fails even without CUDA.
    let mut found = Vec::new();
    for src in &sources {
        let module = src.file_stem().unwrap().to_string_lossy();
        found.extend(kernels::parse(&module, &fs::read_to_string(src).unwrap()).unwrap_or_else(|e| panic!("{e}")));
    }
    kernels::check_unique(&found).unwrap_or_else(|e| panic!("{e}"));
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    fs::write(out.join("launchers.rs"), kernels::launchers(&found)).unwrap();
    let nvcc = find_nvcc();
    let arch = env::var("CUDA_ARCH").unwrap_or_else(|_| "compute_80".into());
    let jobs: Vec<_> = sources
        .iter()
        .map(|src| {
            let (src, ptx, nvcc, arch) =
                (src.clone(), out.join(src.with_extension("ptx").file_name().unwrap()), nvcc.clone(), arch.clone());
            // --fmad=false: no contracted multiply-adds, so every kernel rounds like its CPU twin.
            thread::spawn(move || {
                let o = Command::new(&nvcc)
                    .args(["-ptx", "-O3", "--fmad=false", "-std=c++17", &format!("-arch={arch}"), "-o"])
                    .arg(&ptx)
                    .arg(&src)
                    .output();
                match o {
                    Ok(o) if o.status.success() => Ok(ptx),
                    Ok(o) => Err(format!("nvcc failed on {}:\n{}", src.display(), String::from_utf8_lossy(&o.stderr))),
                    Err(e) => Err(format!("could not run {}: {e}", nvcc.display())),
                }
            })
        })
        .collect();
    let mut table = String::from(
        "/// (module, PTX, kernel names) for every kernels/*.cu.\npub const MODULES: &[(&str, &str, &[&str])] = &[\n",
    );
    for job in jobs {
        let ptx = job.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
        let module = ptx.file_stem().unwrap().to_string_lossy().into_owned();
        let names: Vec<String> = found.iter().filter(|k| k.module == module).map(|k| format!("{:?}", k.name)).collect();
        table +=
            &format!("    ({module:?}, include_str!({:?}), &[{}]),\n", ptx.display().to_string(), names.join(", "));
    }
    table += "];\n";
    fs::write(out.join("kernels.rs"), table).unwrap();
}

fn find_nvcc() -> PathBuf {
    if let Some(p) = env::var_os("NVCC") {
        return p.into();
    }
    let on_path = env::var_os("PATH")
        .into_iter()
        .flat_map(|p| env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("nvcc"))
        .find(|p| p.is_file());
    let in_home = env::var_os("CUDA_HOME").map(|h| Path::new(&h).join("bin/nvcc")).filter(|p| p.is_file());
    on_path.or(in_home).unwrap_or_else(|| {
        panic!(
            "--features cuda needs nvcc to compile kernels/*.cu to PTX, and none was found in $NVCC, on PATH or in $CUDA_HOME/bin. \
             Install the pinned set (README.md, \"CUDA\"): pip install nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
             nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85, then NVCC=<site-packages>/nvidia/cu13/bin/nvcc"
        )
    })
}
