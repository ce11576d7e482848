//! `bench kernels`: the memory-bound kernels alone (`mmard::kernel_bench`), each against a copy of
//! the same tensor on the same device: ms, GiB/s and the share of the copy's GiB/s. On the
//! emulated GPU the figures time the emulator and say so; they show the command runs end to end.
use clap::Args;
use mmard::kernel_bench::Inputs;
use mmard::{Device, Result, err};

/// The largest --batch: a [4096, 32, 32, 32] f32 tensor is 512 MiB.
const MAX_BATCH: usize = 4096;

#[derive(Args)]
pub struct KernelsArgs {
    /// Images in the [batch, 32, 32, 32] tensor (default: 1024 on a GPU, 128 MiB, more than its
    /// L2 cache; 128 on the CPU, 16 MiB).
    #[arg(long)]
    batch: Option<usize>,
    /// Timed runs of each kernel, after one untimed (the median is reported).
    #[arg(long, default_value_t = 20)]
    repeats: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &KernelsArgs, dev: &Device) -> Result<()> {
    let batch = a.batch.unwrap_or(if matches!(dev, Device::Cpu) { 128 } else { 1024 });
    if batch == 0 || a.repeats == 0 {
        return Err(err!("--batch and --repeats must be at least 1"));
    }
    if batch > MAX_BATCH {
        return Err(err!(
            "--batch {batch}: at most {MAX_BATCH} (a 512 MiB tensor; the cases hold about eight at once)"
        ));
    }
    let inputs = Inputs::new(dev, batch);
    let gib_s = |bytes: u64, ms: f64| bytes as f64 / (1u64 << 30) as f64 / (ms / 1e3);
    // (name, bytes, ms, GiB/s), the copy first
    let timed: Vec<_> = inputs
        .cases()
        .iter()
        .map(|c| {
            let ms = c.median_ms(dev, a.repeats);
            (c.name, c.bytes, ms, gib_s(c.bytes, ms))
        })
        .collect();
    let copy = timed[0].3;
    let emulated = dev.to_string().contains("emulated");
    let shape = inputs.shape();
    let mib = (shape.iter().product::<usize>() * 4) as f64 / (1u64 << 20) as f64;
    if a.json {
        let kernels: Vec<_> = timed
            .iter()
            .map(|&(name, bytes, ms, gib)| {
                serde_json::json!({"name": name, "bytes": bytes, "ms": ms, "gib_s": gib, "share_of_copy": gib / copy})
            })
            .collect();
        let out = serde_json::json!({"device": dev.to_string(), "emulated": emulated, "shape": shape, "repeats": a.repeats,
                                     "copy_gib_s": copy, "kernels": kernels});
        println!("{out}");
        return Ok(());
    }
    println!("memory-bound kernels on {dev}, one {shape:?} f32 tensor ({mib} MiB), median of {} runs", a.repeats);
    if emulated {
        println!("(the emulated GPU: these figures time the emulator on the CPU, not a GPU)");
    }
    println!("| kernel | ms | GiB/s | share of copy |\n|---|---|---|---|");
    for &(name, _, ms, gib) in &timed {
        println!("| {name} | {ms:.4} | {gib:.1} | {:.0}% |", 100.0 * gib / copy);
    }
    Ok(())
}
