//! The format readers under the dataset registry (`io::datasets`), none of which imports it: idx
//! files (`idx`), where CIFAR's files lie, unpacked or in a `.tar.gz` (`cifar`), and its two
//! encodings, binary records (`cifar_binary`) and pickled batches (`cifar_pickle`). What the
//! registry asks of a reader, and the split it names, are in `split`. Tested in `tests/datasets.rs`.
pub mod cifar;
mod cifar_binary;
mod cifar_pickle;
pub mod idx;
pub mod split;
