//! The memory-bound kernels timed alone (`mmard bench kernels`): ReLU, the residual add, max-pool,
//! BatchNorm in both modes, the fused PGD step and the MMARD triangle loss, each on one
//! [batch, 32, 32, 32] f32 tensor (SmallCNN's first activation), set against a plain copy of the
//! same tensor, the ceiling a kernel that reads and writes it once can reach. On a GPU each run is
//! timed by CUDA events around it; `bench/ops_table.py` puts PyTorch's twins (bench/pytorch_ops.py)
//! beside them.
use crate::ops::batchnorm::{self, Stats};
use crate::ops::{elementwise, loss, pgd, pool};
use crate::tape::{GradMode, Param, Tape, Var};
use crate::{Device, Tensor};
use std::any::Any;
use std::sync::Arc;

/// Copies of the tensors a case consumes, made outside the timing, handed over in listed order.
pub struct Owned(std::vec::IntoIter<Tensor>);

impl Owned {
    fn take(&mut self) -> Tensor {
        self.0.next().expect("a case takes only the tensors it lists")
    }
}

type Work<'a> = Box<dyn Fn(Owned) -> Box<dyn Any> + 'a>;

/// One kernel (or fused pass): the bytes it must move at least, the tensors it consumes, and the
/// work, which returns its outputs so that they are freed outside the timing.
pub struct Case<'a> {
    pub name: &'static str,
    pub bytes: u64,
    consumed: Vec<&'a Tensor>,
    work: Work<'a>,
}

fn case<'a>(name: &'static str, bytes: u64, consumed: Vec<&'a Tensor>, work: Work<'a>) -> Case<'a> {
    Case { name, bytes, consumed, work }
}

/// What the cases read, on one device.
pub struct Inputs {
    shape: [usize; 4],
    x: Tensor,
    x2: Tensor,
    gy: Tensor,
    pooled: Tensor,
    gamma: Param,
    beta: Param,
    mean: Tensor,
    var: Tensor,
    logits: [Tensor; 3],
}

/// A deterministic fill in [-0.5, 0.5), so that ReLU and max-pool take both branches.
fn filled(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect())
}

impl Inputs {
    pub fn new(dev: &Device, batch: usize) -> Inputs {
        let shape = [batch, 32, 32, 32];
        let on = |t: Tensor| t.to_device(dev);
        let p = |v: f32, id| Param { id, val: Arc::new(on(Tensor::full(&[32], v))) };
        Inputs {
            shape,
            x: on(filled(&shape)),
            x2: on(filled(&shape)),
            gy: on(filled(&shape)),
            pooled: on(filled(&[batch, 32, 16, 16])),
            gamma: p(1.0, 0),
            beta: p(0.0, 1),
            mean: on(Tensor::zeros(&[32])),
            var: on(Tensor::full(&[32], 1.0)),
            logits: [0.5, -0.3, 1.0]
                .map(|k| on(Tensor::from_vec(&[128, 10], filled(&[128, 10]).data().iter().map(|v| v * k).collect()))),
        }
    }

    /// The shape of the tensor every case but the loss works on.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Every case, the copy first.
    pub fn cases(&self) -> Vec<Case<'_>> {
        let bytes = (self.shape.iter().product::<usize>() * 4) as u64;
        let bn_eval = |t: &mut Tape, v: &Var| {
            batchnorm::batch_norm(
                t,
                v,
                &self.gamma,
                &self.beta,
                Stats::Running { mean: &self.mean, var: &self.var },
                1e-5,
            )
        };
        let (x, x2, gy) = (&self.x, &self.x2, &self.gy);
        // Bytes: a forward reads x and writes y; a backward also reads gy and writes gx.
        vec![
            case("copy", 2 * bytes, vec![], Box::new(|_| Box::new(x.clone()))),
            case("relu_forward", 2 * bytes, vec![], Box::new(|_| Box::new(elementwise::relu_forward(x)))),
            case("relu_backward", 3 * bytes, vec![], Box::new(|_| Box::new(elementwise::relu_backward(x, gy)))),
            case(
                "add",
                3 * bytes,
                vec![x, x2],
                Box::new(|mut o| {
                    Box::new(pass(GradMode::None, o.take(), None, |t, v| {
                        let b = t.var(o.take());
                        elementwise::add(t, v, &b)
                    }))
                }),
            ),
            case(
                "maxpool_forward",
                bytes + bytes / 2,
                vec![x],
                Box::new(|mut o| Box::new(pass(GradMode::None, o.take(), None, pool::maxpool2))),
            ),
            case(
                "maxpool_fwd_bwd",
                3 * bytes,
                vec![x, &self.pooled],
                Box::new(|mut o| Box::new(pass(GradMode::Input, o.take(), Some(o.take()), pool::maxpool2))),
            ),
            case(
                "bn_eval_forward",
                2 * bytes,
                vec![x],
                Box::new(move |mut o| Box::new(pass(GradMode::None, o.take(), None, bn_eval))),
            ),
            case(
                "bn_eval_fwd_bwd_input_only",
                5 * bytes,
                vec![x, gy],
                Box::new(move |mut o| Box::new(pass(GradMode::Input, o.take(), Some(o.take()), bn_eval))),
            ),
            case(
                "bn_train_fwd_bwd",
                8 * bytes,
                vec![x, gy, &self.mean, &self.var],
                Box::new(|mut o| {
                    let (x, gy, mut m, mut s) = (o.take(), o.take(), o.take(), o.take());
                    let tape = pass(GradMode::Params, x, Some(gy), |t, v| {
                        let stats =
                            Stats::Batch { running_mean: &mut m, running_var: &mut s, momentum: 0.1, sync: None };
                        batchnorm::batch_norm(t, v, &self.gamma, &self.beta, stats, 1e-5)
                    });
                    Box::new((tape, m, s))
                }),
            ),
            case(
                "pgd_step",
                4 * bytes,
                vec![x],
                Box::new(|mut o| {
                    let mut xa = o.take();
                    pgd::step(&mut xa, gy, x2, 2.0 / 255.0, 8.0 / 255.0);
                    Box::new(xa)
                }),
            ),
            case(
                "triangle_loss_128x10",
                3 * 2 * 128 * 10 * 4,
                vec![],
                Box::new(|_| {
                    let [t, za, zn] = &self.logits;
                    let w = loss::Triangle { teacher_adv: 5.0 / 6.0, teacher_nat: 1.0 / 6.0, adv_nat: 1.0 };
                    Box::new(loss::triangle(t, za, zn, w, 1.0))
                }),
            ),
        ]
    }
}

/// Runs `f` on a fresh tape of `mode` with `x` as a gradient-needing input and, when `gy` is given,
/// backward from its output. Returns the tape, so that its values are freed outside the timing.
fn pass(mode: GradMode, x: Tensor, gy: Option<Tensor>, f: impl FnOnce(&mut Tape, &Var) -> Var) -> Tape {
    let mut tape = Tape::new(mode);
    let xv = tape.var(x);
    let y = f(&mut tape, &xv);
    if let Some(g) = gy {
        tape.backward(vec![(&y, g)]);
    }
    tape
}

impl Case<'_> {
    /// The median time of `repeats` runs in ms (after one untimed run), each timed on `dev` alone:
    /// its inputs copied and the device idle before it starts.
    pub fn median_ms(&self, dev: &Device, repeats: usize) -> f64 {
        let mut times: Vec<f64> = (0..=repeats.max(1))
            .map(|_| {
                let owned = Owned(self.consumed.iter().map(|t| (*t).clone()).collect::<Vec<_>>().into_iter());
                dev.sync();
                let (out, ms) = dev.time_ms(|| (self.work)(owned));
                drop(out);
                ms
            })
            .skip(1)
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    }
}
