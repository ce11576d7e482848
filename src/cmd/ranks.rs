//! The ranks of a job: this process alone, or one rank of an MPI launcher (`mpirun`, `srun`) in a
//! build with `--features mpi`. Ranks share the node's cores, take one GPU each, and refuse to start
//! when their binaries or command lines differ.
use mmard::Result;
use mmard::dist::{Group, Solo, hash_file};
use std::sync::Arc;

/// The launcher's variables that say a process is a rank of a job.
const LAUNCHED: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"];

fn env_number(names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| std::env::var(n).ok()?.parse().ok())
}

/// This process's group: MPI's ranks under a launcher, else one process.
pub fn join() -> Result<Arc<dyn Group>> {
    if !LAUNCHED.iter().any(|v| std::env::var_os(v).is_some()) {
        return Ok(Arc::new(Solo));
    }
    #[cfg(feature = "mpi")]
    return Ok(Arc::new(mmard::dist::mpi::Mpi::init()?));
    #[cfg(not(feature = "mpi"))]
    match env_number(&["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"]) {
        Some(n) if n > 1 => Err(mmard::err!(
            "started by an MPI launcher as one of {n} ranks, but this mmard was built without MPI, so each \
             rank would run the whole job alone: build with `cargo build --release --features mpi`"
        )),
        _ => Ok(Arc::new(Solo)),
    }
}

/// Worker threads per rank when --threads is not given: the cores the launcher bound this rank to
/// (mpirun binds each of a few ranks to a core, srun to its --cpus-per-task), else the node's
/// cores shared by its ranks.
pub fn threads(group: &dyn Group) -> Option<usize> {
    if group.size() == 1 {
        return None;
    }
    let mine = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: sysconf only reads a system setting.
    let node = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let local = env_number(&["OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "MPI_LOCALNRANKS"]);
    Some(if mine < node { mine } else { (node / local.unwrap_or(group.size()).max(1)).max(1) })
}

/// This rank's index among the ranks of its node (0 in one process): its GPU under `--device cuda`.
pub fn local_rank(group: &dyn Group) -> usize {
    match group.size() {
        1 => 0,
        _ => env_number(&["OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"]).unwrap_or(group.rank()),
    }
}

/// Refuses to start when the ranks run different binaries or command lines.
pub fn check(group: &dyn Group) -> Result<()> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    group.check_same("mmard binary", || std::env::current_exe().map_or(0, |p| hash_file(&p)))?;
    group.check_same("command line", || {
        let mut h = DefaultHasher::new();
        std::env::args_os().skip(1).for_each(|a| a.hash(&mut h));
        h.finish()
    })
}
