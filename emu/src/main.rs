//! `mmard-emu CMD ARGS...` runs CMD against the emulated GPU: with the folder of the stand-in
//! libcuda, libcublas and libcudnn first on LD_LIBRARY_PATH, where cudarc's dynamic loading finds
//! them, and with NVCC (unless set) naming `emu/nvcc`, which turns kernels/*.cu into the kernel
//! list the emulator loads in place of PTX. `mmard-emu --lib-dir` prints the folder.
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

const LIB_DIR: &str = env!("MMARD_EMU_LIB_DIR");
const NVCC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/nvcc");

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(cmd) = args.next() else {
        eprintln!("usage: mmard-emu CMD [ARGS...] | mmard-emu --lib-dir");
        return ExitCode::from(2);
    };
    if cmd == "--lib-dir" {
        println!("{LIB_DIR}");
        return ExitCode::SUCCESS;
    }
    let mut path = OsString::from(LIB_DIR);
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(old);
    }
    let mut c = Command::new(&cmd);
    c.args(args).env("LD_LIBRARY_PATH", path);
    if std::env::var_os("NVCC").is_none() {
        c.env("NVCC", NVCC);
    }
    let e = c.exec();
    eprintln!("mmard-emu: could not run {}: {e}", cmd.to_string_lossy());
    ExitCode::from(127)
}
