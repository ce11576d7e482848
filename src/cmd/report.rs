//! `report`: the study's tables and plots (`mmard::report`).
use clap::Args;
use mmard::Result;
use std::path::PathBuf;

#[derive(Args)]
pub struct ReportArgs {
    /// Result files of scripts/study.sh (JSON naming their config, part of the study, method, seed
    /// and figures), folders of them, or run folders (metrics.jsonl: curves only).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Folder for report.md and the SVG plots.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn report(a: &ReportArgs) -> Result<()> {
    let w = mmard::report::report(&a.inputs, &a.out)?;
    println!("{} runs; wrote {} and {} plots:", w.runs, w.page.display(), w.plots.len());
    for p in &w.plots {
        println!("  {}", p.display());
    }
    Ok(())
}
