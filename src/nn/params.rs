//! A model's named tensors, with PyTorch state_dict names: trainable parameters, float buffers
//! (BN running statistics) and integer counters (`num_batches_tracked`).
use crate::error::{Error, Result};
use crate::io::safetensors::{Stored, Values};
use crate::tape::{Param, ParamId};
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Param,
    Buffer,
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    kind: Kind,
    val: Arc<Tensor>,
}

#[derive(Clone, Debug, Default)]
pub struct ParamStore {
    entries: Vec<Entry>,
    counters: Vec<(String, i64)>,
}

impl ParamStore {
    pub fn add(&mut self, name: String, kind: Kind, t: Tensor) -> ParamId {
        self.entries.push(Entry { name, kind, val: Arc::new(t) });
        self.entries.len() - 1
    }

    /// An integer counter; returns its index among the counters.
    pub fn add_counter(&mut self, name: String) -> usize {
        self.counters.push((name, 0));
        self.counters.len() - 1
    }

    pub fn param(&self, id: ParamId) -> Param {
        Param { id, val: self.entries[id].val.clone() }
    }

    pub fn get(&self, id: ParamId) -> &Tensor {
        &self.entries[id].val
    }

    /// Mutable access; copies the tensor first if a tape still holds it.
    pub fn get_mut(&mut self, id: ParamId) -> &mut Tensor {
        Arc::make_mut(&mut self.entries[id].val)
    }

    pub fn bump_counter(&mut self, i: usize) {
        self.counters[i].1 += 1;
    }

    pub fn name(&self, id: ParamId) -> &str {
        &self.entries[id].name
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn id(&self, name: &str) -> Option<ParamId> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// Ids of the trainable parameters, in registration order.
    pub fn trainable(&self) -> impl Iterator<Item = ParamId> + '_ {
        self.entries.iter().enumerate().filter(|(_, e)| e.kind == Kind::Param).map(|(i, _)| i)
    }

    /// The buffers (BatchNorm's running statistics), in registration order, to change in place.
    pub fn buffers_mut(&mut self) -> impl Iterator<Item = &mut Tensor> {
        self.entries.iter_mut().filter(|e| e.kind == Kind::Buffer).map(|e| Arc::make_mut(&mut e.val))
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.trainable().map(|i| self.get(i).numel()).sum()
    }

    /// Copies every tensor of the model from `tensors`. Missing tensors and wrong shapes are errors
    /// naming the tensor; returns the names in `tensors` the model does not use.
    pub fn load(&mut self, tensors: &std::collections::BTreeMap<String, Stored>) -> Result<Vec<String>> {
        let missing = |name: &str| Error::Missing { name: name.into(), hint: " in the weights file".into() };
        let mut used: HashMap<&str, ()> = HashMap::new();
        for e in &mut self.entries {
            let s = tensors.get(&e.name).ok_or_else(|| missing(&e.name))?;
            if s.shape != e.val.shape() {
                return Err(Error::Shape {
                    name: e.name.clone(),
                    expected: e.val.shape().to_vec(),
                    found: s.shape.clone(),
                });
            }
            match &s.values {
                Values::F32(v) => e.val = Arc::new(Tensor::from_vec(&s.shape, v.clone()).into_device(&e.val.device())),
                Values::I64(_) => {
                    return Err(Error::Dtype {
                        name: e.name.clone(),
                        dtype: "I64 (expected a floating-point tensor)".into(),
                    });
                }
            }
            used.insert(&e.name, ());
        }
        for (name, count) in &mut self.counters {
            let s = tensors.get(name.as_str()).ok_or_else(|| missing(name))?;
            *count = match &s.values {
                Values::I64(v) if v.len() == 1 => v[0],
                Values::F32(v) if v.len() == 1 => v[0] as i64,
                _ => {
                    return Err(Error::Shape { name: name.clone(), expected: vec![], found: s.shape.clone() });
                }
            };
            used.insert(name, ());
        }
        Ok(tensors.keys().filter(|k| !used.contains_key(k.as_str())).cloned().collect())
    }

    /// Where the tensors live.
    pub fn device(&self) -> crate::Device {
        self.entries.first().map_or(crate::Device::Cpu, |e| e.val.device())
    }

    /// Moves every tensor to `dev`.
    pub fn to_device(&mut self, dev: &crate::Device) {
        for e in &mut self.entries {
            if e.val.device() != *dev {
                e.val = Arc::new(e.val.to_device(dev));
            }
        }
    }

    /// Every tensor as (name, shape, values), as PyTorch's `state_dict()` holds them.
    pub fn state_dict(&self) -> Vec<(String, Vec<usize>, Values)> {
        let floats = self.entries.iter().map(|e| (e.name.clone(), e.val.shape().to_vec(), Values::F32(e.val.to_vec())));
        let counters = self.counters.iter().map(|(n, c)| (n.clone(), vec![], Values::I64(vec![*c])));
        floats.chain(counters).collect()
    }
}
