//! The ranks of an `mpirun` (Open MPI, through rsmpi). Sums are MPI's reduce to rank 0 followed by
//! its broadcast, not an all-reduce: an all-reduce may add in a different order on each rank, and
//! one rank's bits reaching all keeps the ranks' weights identical (same bandwidth: a reduce and a
//! broadcast move what a reduce-scatter and an all-gather move).
use super::Group;
use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::environment::Universe;
use mpi::traits::*;
use std::sync::Mutex;

/// MPI's counts are C ints: longer buffers go in pieces.
const PIECE: usize = 1 << 28;

pub struct Mpi {
    /// Finalises MPI when dropped.
    _universe: Universe,
    /// MPI is initialised for serialized calls: at most one at a time, from any thread.
    lock: Mutex<()>,
    rank: usize,
    size: usize,
}

/// Whether a launcher (mpirun, srun with PMIx) started this process as a rank of a job.
pub fn launched() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"].iter().any(|v| std::env::var_os(v).is_some())
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "MPI rank {} of {}", self.rank, self.size)
    }
}

impl Mpi {
    /// Initialises MPI. Errors when the library refuses or cannot give serialized threading.
    pub fn init() -> crate::Result<Mpi> {
        let (universe, level) = mpi::initialize_with_threading(mpi::Threading::Serialized)
            .ok_or_else(|| crate::err!("MPI could not be initialised (already initialised?)"))?;
        if level < mpi::Threading::Serialized {
            return Err(crate::err!("the MPI library gives threading level {level:?}; mmard needs Serialized"));
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok(Mpi { _universe: universe, lock: Mutex::new(()), rank, size })
    }

    fn broadcast<T: Equivalence>(&self, buf: &mut [T]) {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let world = mpi::topology::SimpleCommunicator::world();
        buf.chunks_mut(PIECE).for_each(|p| world.process_at_rank(0).broadcast_into(p));
    }

    fn sum<T: Equivalence + Copy + Default>(&self, buf: &mut [T]) {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let world = mpi::topology::SimpleCommunicator::world();
        let root = world.process_at_rank(0);
        for piece in buf.chunks_mut(PIECE) {
            if self.rank == 0 {
                let mine = piece.to_vec();
                root.reduce_into_root(&mine[..], piece, SystemOperation::sum());
            } else {
                root.reduce_into(&*piece, SystemOperation::sum());
            }
            root.broadcast_into(piece);
        }
    }
}

impl Group for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn sum_f32(&self, buf: &mut [f32]) {
        self.sum(buf)
    }
    fn sum_f64(&self, buf: &mut [f64]) {
        self.sum(buf)
    }
    fn broadcast_f32(&self, buf: &mut [f32]) {
        self.broadcast(buf)
    }
    fn broadcast_bytes(&self, buf: &mut [u8]) {
        self.broadcast(buf)
    }
    fn gather_u64(&self, value: u64) -> Vec<u64> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = vec![0u64; self.size];
        mpi::topology::SimpleCommunicator::world().all_gather_into(&value, &mut all[..]);
        all
    }
    fn abort(&self, code: i32) -> ! {
        mpi::topology::SimpleCommunicator::world().abort(code)
    }
}
