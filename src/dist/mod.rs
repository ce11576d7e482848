//! Data parallelism across processes: the collectives a run needs (`Group`), one process's trivial
//! group (`Solo`), and Open MPI's (`mpi.rs`, `--features mpi`). A run of N ranks splits every
//! global batch into N contiguous shares (`Group::share`), sums gradients, BatchNorm's sums under
//! `--sync-bn`, and evaluation counts. Every sum reaches every rank as the same bits (MPI's reduce
//! to rank 0, then its broadcast), so the ranks' weights never drift apart. Tests: `tests/mpi.rs`.
#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(feature = "cuda")]
pub mod nccl;

use crate::nn::params::ParamStore;
use crate::tape::Tape;
use crate::tensor::Tensor;
use std::ops::Range;
use std::sync::Arc;

/// The processes of one run and their collectives. Every rank calls each collective in the same
/// order with buffers of the same length.
pub trait Group: Send + Sync + std::fmt::Debug {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Element-wise sum over the ranks, in place; every rank ends with the same bits.
    fn sum_f32(&self, buf: &mut [f32]);
    fn sum_f64(&self, buf: &mut [f64]);
    /// Rank 0's values, on every rank.
    fn broadcast_f32(&self, buf: &mut [f32]);
    fn broadcast_bytes(&self, buf: &mut [u8]);
    /// Every rank's `value`, in rank order.
    fn gather_u64(&self, value: u64) -> Vec<u64>;
    /// Ends every rank of the run at once, with `code` (after this rank's error was printed).
    fn abort(&self, code: i32) -> !;
}

impl dyn Group + '_ {
    /// This rank's part of `n` items: contiguous, in rank order, sizes differing by at most one.
    pub fn share(&self, n: usize) -> Range<usize> {
        let (r, p) = (self.rank(), self.size());
        let at = |r: usize| r * (n / p) + r.min(n % p);
        at(r)..at(r + 1)
    }

    /// Whether this rank writes files and draws progress (rank 0 does, for all).
    pub fn leads(&self) -> bool {
        self.rank() == 0
    }

    /// Refuses a run whose ranks disagree on `what` (the binary, the command line, the data), by a
    /// fingerprint of it computed only when there are several ranks; names a rank that differs.
    pub fn check_same(&self, what: &str, fingerprint: impl FnOnce() -> u64) -> crate::Result<()> {
        if self.size() == 1 {
            return Ok(());
        }
        let all = self.gather_u64(fingerprint());
        match all.iter().position(|&f| f != all[0]) {
            Some(r) => Err(crate::err!("ranks 0 and {r} run with a different {what}; every rank must run the same")),
            None => Ok(()),
        }
    }
}

/// A hash of a file's bytes (0 when it cannot be read), for `check_same`.
pub fn hash_file(path: &std::path::Path) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    std::fs::read(path).map(|b| b.hash(&mut h)).ok();
    h.finish()
}

/// Sums every parameter gradient on `tape` over the ranks, as one buffer in parameter order
/// (every rank records the same graph, so holds the same gradients): on the GPUs with NCCL where
/// `Ranks::attach` set it up, else through the host.
pub fn sum_grads(ranks: &Ranks, tape: &mut Tape) -> crate::Result<()> {
    #[cfg(feature = "cuda")]
    if let Some(n) = &ranks.nccl {
        return n.sum(&mut tape.param_grads_mut().collect::<Vec<_>>());
    }
    through_one_buffer(tape.param_grads_mut(), |b| ranks.group.sum_f32(b));
    Ok(())
}

/// Rank 0's BatchNorm running statistics on every rank.
pub fn broadcast_buffers(group: &dyn Group, params: &mut ParamStore) {
    through_one_buffer(params.buffers_mut(), |b| group.broadcast_f32(b));
}

/// Rows (first-axis entries) of `t` that ranks hold separately, pooled: each row marked `mine` by
/// one rank takes that rank's values on every rank (the others add zeros: exact); a row no rank
/// marks keeps this rank's values, which the caller knows to be the same on every rank.
pub fn pool_rows(group: &dyn Group, t: &mut Tensor, mine: &[bool]) {
    if group.size() == 1 {
        return;
    }
    let per = t.numel() / mine.len().max(1);
    let mut sum = t.host().to_vec();
    let mut owned: Vec<f64> = mine.iter().map(|&m| m as u8 as f64).collect();
    for (row, _) in mine.iter().enumerate().filter(|&(_, &m)| !m) {
        sum[row * per..][..per].fill(0.0);
    }
    group.sum_f32(&mut sum);
    group.sum_f64(&mut owned);
    let data = t.data_mut();
    for (row, _) in owned.iter().enumerate().filter(|&(_, &o)| o > 0.0) {
        data[row * per..][..per].copy_from_slice(&sum[row * per..][..per]);
    }
}

/// `op` on the tensors laid end to end: one collective instead of one per tensor.
fn through_one_buffer<'t>(tensors: impl Iterator<Item = &'t mut Tensor>, op: impl FnOnce(&mut [f32])) {
    let mut tensors: Vec<&mut Tensor> = tensors.collect();
    let mut flat: Vec<f32> = tensors.iter().flat_map(|t| t.host().to_vec()).collect();
    op(&mut flat);
    let mut rest = &flat[..];
    for t in &mut tensors {
        let (mine, more) = rest.split_at(t.numel());
        if matches!(t.device(), crate::Device::Cpu) {
            t.data_mut().copy_from_slice(mine);
        } else {
            // a GPU's tensors staged through the host (BN's buffers; gradients too without NCCL)
            **t = Tensor::from_vec(t.shape(), mine.to_vec()).into_device(&t.device());
        }
        rest = more;
    }
}

/// One process: every collective is the identity.
#[derive(Debug)]
pub struct Solo;

impl Group for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&self, _: &mut [f32]) {}
    fn sum_f64(&self, _: &mut [f64]) {}
    fn broadcast_f32(&self, _: &mut [f32]) {}
    fn broadcast_bytes(&self, _: &mut [u8]) {}
    fn gather_u64(&self, value: u64) -> Vec<u64> {
        vec![value]
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// The ranks a training run is shared by, and whether its BatchNorm is synchronised over them
/// (`--sync-bn`); by default one process.
#[derive(Clone, Debug)]
pub struct Ranks {
    pub group: Arc<dyn Group>,
    pub sync_bn: bool,
    /// NCCL between the ranks' GPUs, once `attach` found the model on one.
    #[cfg(feature = "cuda")]
    pub nccl: Option<std::rc::Rc<nccl::Nccl>>,
}

impl Default for Ranks {
    fn default() -> Self {
        Ranks::new(Arc::new(Solo), false)
    }
}

impl Ranks {
    pub fn new(group: Arc<dyn Group>, sync_bn: bool) -> Ranks {
        Ranks {
            group,
            sync_bn,
            #[cfg(feature = "cuda")]
            nccl: None,
        }
    }

    /// Readies the sums for a model on `dev`: on GPUs of several ranks, an NCCL communicator
    /// (once).
    pub fn attach(&mut self, dev: &crate::Device) -> crate::Result<()> {
        #[cfg(feature = "cuda")]
        if let (true, None, crate::Device::Cuda(g)) = (self.parallel(), &self.nccl, dev) {
            self.nccl = Some(std::rc::Rc::new(nccl::Nccl::init(&*self.group, g)?));
        }
        let _ = dev;
        Ok(())
    }

    /// How the ranks share the work, for the run's first line ("" in one process).
    pub fn describe(&self) -> String {
        let n = self.group.size();
        #[cfg(feature = "cuda")]
        let how = if self.nccl.is_some() { "by NCCL" } else { "through the host" };
        #[cfg(not(feature = "cuda"))]
        let how = "through the host";
        let bn = if self.sync_bn { ", BatchNorm synchronised" } else { "" };
        if n == 1 { String::new() } else { format!(", {n} ranks (gradients summed {how}{bn})") }
    }

    /// Whether there is more than one rank.
    pub fn parallel(&self) -> bool {
        self.group.size() > 1
    }

    /// The group a model's train-mode BatchNorm normalises over (`Model::sync_bn`).
    pub fn bn_group(&self) -> Option<Arc<dyn Group>> {
        (self.sync_bn && self.parallel()).then(|| self.group.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Rank(usize, usize);
    impl Group for Rank {
        fn rank(&self) -> usize {
            self.0
        }
        fn size(&self) -> usize {
            self.1
        }
        fn sum_f32(&self, _: &mut [f32]) {}
        fn sum_f64(&self, _: &mut [f64]) {}
        fn broadcast_f32(&self, _: &mut [f32]) {}
        fn broadcast_bytes(&self, _: &mut [u8]) {}
        fn gather_u64(&self, v: u64) -> Vec<u64> {
            vec![v; self.1]
        }
        fn abort(&self, _: i32) -> ! {
            unreachable!()
        }
    }

    #[test]
    fn shares_cover_the_batch_in_order() {
        for (n, p) in [(10, 3), (2, 4), (128, 2), (0, 2), (7, 1)] {
            let shares: Vec<_> = (0..p).map(|r| (&Rank(r, p) as &dyn Group).share(n)).collect();
            assert_eq!(shares[0].start, 0);
            assert_eq!(shares[p - 1].end, n);
            assert!(shares.windows(2).all(|w| w[0].end == w[1].start));
            assert!(shares.iter().all(|s| s.len().abs_diff(n / p) <= 1), "{n} over {p}: {shares:?}");
        }
    }
}
