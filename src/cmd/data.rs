//! Dataset flags shared by train, distill, eval and demo.
use clap::Args;
use mmard::io::datasets::{Dataset, DatasetKind, Split};
use mmard::{Result, err};
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct DataArgs {
    /// The dataset.
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: DatasetKind,
    /// Folder with the dataset files, or for CIFAR also its .tar.gz (binary or python version)
    /// (default: where the system package puts them, if any).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N images of the split.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl DataArgs {
    pub fn load(&self, split: Split) -> Result<Dataset> {
        let kind = self.dataset;
        let dir = self
            .data_dir
            .clone()
            .or_else(|| kind.default_dir())
            .ok_or_else(|| err!("--data-dir is needed for {} (no default location)", kind.name()))?;
        let d = Dataset::load(kind, &dir, split)?;
        Ok(match self.limit {
            Some(n) => d.subset(n),
            None => d,
        })
    }
}
