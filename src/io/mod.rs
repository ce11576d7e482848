//! Files in and out: safetensors, datasets and augmentation. Datasets come in two layers: the
//! registry (`datasets`: which datasets there are, their shapes, where their files usually lie)
//! over the format readers (`formats/`: idx, CIFAR's binary records and pickled batches, its
//! folders and archives), which know no dataset by name.
pub mod augment;
pub mod datasets;
mod formats;
pub mod safetensors;
