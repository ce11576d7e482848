//! Sums over the ranks' GPUs with NCCL (through cudarc's bindings): the communicator is
//! bootstrapped over the ranks' own group (rank 0 makes NCCL's unique id and broadcasts it), and a
//! sum is NCCL's reduce to rank 0 then its broadcast, as the MPI group sums on the host, so every
//! rank receives the same bits. Tested on the emulated GPU (its stand-in libnccl reduces across the
//! processes of one machine); a machine with several GPUs is what shows the real library's speed.
use super::Group;
use crate::cuda::Gpu;
use crate::err;
use crate::error::Result;
use crate::tensor::Tensor;
use cudarc::nccl::{Comm, Id, ReduceOp};
use std::sync::Arc;

pub struct Nccl {
    comm: Comm,
    gpu: Arc<Gpu>,
}

impl std::fmt::Debug for Nccl {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "NCCL rank {} of {}", self.comm.rank(), self.comm.world_size())
    }
}

impl Nccl {
    /// The communicator of `group`'s ranks, each on its GPU `gpu`.
    pub fn init(group: &dyn Group, gpu: &Arc<Gpu>) -> Result<Nccl> {
        let fail = |what: &str, e: cudarc::nccl::result::NcclError| err!("NCCL: {what}: {e:?}");
        let mut id = [0u8; 128];
        if group.leads() {
            let made = Id::new().map_err(|e| fail("no unique id (is libnccl.so.2 installed?)", e))?;
            id.iter_mut().zip(made.internal()).for_each(|(b, &c)| *b = c as u8);
        }
        group.broadcast_bytes(&mut id);
        let id = Id::uninit(id.map(|b| b as std::ffi::c_char));
        let comm = Comm::from_rank(gpu.stream.clone(), group.rank(), group.size(), id)
            .map_err(|e| fail("the communicator could not be made", e))?;
        Ok(Nccl { comm, gpu: gpu.clone() })
    }

    /// Sums `tensors` (on this rank's GPU) over the ranks in place, as one buffer.
    pub fn sum(&self, tensors: &mut [&mut Tensor]) -> Result<()> {
        let g = &self.gpu;
        let total = tensors.iter().map(|t| t.numel()).sum();
        let mut flat = g.empty(total);
        let mut at = 0;
        for t in tensors.iter() {
            g.stream
                .memcpy_dtod(&t.cu().slice(..t.numel()), &mut flat.slice_mut(at..at + t.numel()))
                .expect("cuda copy");
            at += t.numel();
        }
        self.comm.reduce_in_place(&mut flat, &ReduceOp::Sum, 0).map_err(|e| err!("NCCL reduce: {e:?}"))?;
        self.comm.broadcast_in_place(&mut flat, 0).map_err(|e| err!("NCCL broadcast: {e:?}"))?;
        g.launched();
        g.launched();
        at = 0;
        for t in tensors.iter_mut() {
            let n = t.numel();
            g.stream.memcpy_dtod(&flat.slice(at..at + n), &mut t.cu_mut().slice_mut(..n)).expect("cuda copy");
            at += n;
        }
        Ok(())
    }
}
