//! `mmard report`: the tables and plots of a study, from the files its runs leave. Inputs are result
//! files (`results/<config>-s<seed>.json`, as `scripts/study.sh` writes them: the run's clean,
//! PGD-20 and AutoAttack accuracy, its teacher, its metrics per epoch), folders of them, and run
//! folders (`metrics.jsonl`, `model.safetensors`: training curves only). Runs of one config are
//! summarised over their seeds as mean ± sample standard deviation. A result file says which part of
//! the study it belongs to (`part`, `Part`) and its base method (`method`); nothing is read from
//! names. `page.rs` writes the Markdown, `plots.rs` the SVGs. Tests: `tests/report.rs`.
mod page;
mod plots;

use crate::error::{Error, Result};
use crate::io::safetensors::TensorFile;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One epoch of a run's `metrics.jsonl`.
#[derive(Clone, Debug)]
pub struct Epoch {
    pub epoch: usize,
    pub loss: f64,
    pub test_clean: Option<f64>,
    pub test_pgd20: Option<f64>,
}

/// The part of a study a result file belongs to, as its `part` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// every method against the main teacher
    Methods,
    /// a method with one of MMARD's halves plugged in
    Plug,
    /// MMARD with a coefficient changed
    Ablation,
    /// a method against another teacher
    Sensitivity,
    /// a teacher's own figures
    Teacher,
}

impl Part {
    const ALL: [(Part, &'static str); 5] = [
        (Part::Methods, "methods"),
        (Part::Plug, "plug"),
        (Part::Ablation, "ablation"),
        (Part::Sensitivity, "sensitivity"),
        (Part::Teacher, "teacher"),
    ];
    fn parse(s: &str) -> Option<Part> {
        Part::ALL.iter().find(|(_, n)| *n == s).map(|(p, _)| *p)
    }
}

/// One run: its config and seed, its part of the study and base method (absent for a bare run
/// folder, which has training curves only), its evaluation, its curves.
#[derive(Clone, Debug)]
pub struct Run {
    pub config: String,
    pub seed: u64,
    pub part: Option<Part>,
    pub method: Option<String>,
    pub teacher: Option<String>,
    /// clean, PGD-20, AutoAttack accuracy (percent) on the evaluation images.
    pub eval: Option<[f64; 3]>,
    pub train_seconds: Option<f64>,
    pub epochs: Vec<Epoch>,
    /// Where it was read from, for messages.
    pub source: PathBuf,
}

/// mean ± sample standard deviation of one figure over seeds (std 0 for a single seed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(v: &[f64]) -> Spread {
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n.max(1) as f64;
        let var = if n > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        Spread { mean, std: var.sqrt(), n }
    }
}

/// The runs of one config, summarised.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub part: Option<Part>,
    pub method: Option<String>,
    pub teacher: Option<String>,
    pub runs: Vec<Run>,
    /// clean, PGD-20, AA over the runs that have them.
    pub figures: Option<[Spread; 3]>,
    pub train_seconds: Option<Spread>,
}

/// Everything a report is made of.
pub struct Study {
    pub configs: Vec<Config>,
    /// A teacher's own clean, PGD-20 and AA accuracy, by the name its students give (`teacher-<name>`).
    pub teachers: BTreeMap<String, [f64; 3]>,
}

/// What `report` wrote.
pub struct Written {
    pub page: PathBuf,
    pub plots: Vec<PathBuf>,
    pub runs: usize,
}

/// Reads `inputs`, writes `out/report.md` and its plots.
pub fn report(inputs: &[PathBuf], out: &Path) -> Result<Written> {
    let study = load(inputs)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let plots = plots::draw(&study, out)?;
    let page = out.join("report.md");
    let text = page::markdown(&study, &plots);
    crate::io::safetensors::write_atomic(&page, text.as_bytes())?;
    Ok(Written {
        page,
        plots: plots.into_iter().map(|p| out.join(p.file)).collect(),
        runs: study.configs.iter().map(|c| c.runs.len()).sum(),
    })
}

/// The runs and teachers of `inputs`, grouped by config in name order.
pub fn load(inputs: &[PathBuf]) -> Result<Study> {
    if inputs.is_empty() {
        return Err(Error::Msg("report: no inputs (give result files, folders of them, or run folders)".into()));
    }
    let (mut runs, mut teachers) = (Vec::new(), BTreeMap::new());
    for input in inputs {
        if input.is_dir() && input.join("metrics.jsonl").exists() {
            runs.push(run_folder(input)?);
        } else if input.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::io(input, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::Msg(format!("{}: no result files (*.json) and no metrics.jsonl", input.display())));
            }
            for f in files {
                result_file(&f, &mut runs, &mut teachers)?;
            }
        } else if input.exists() {
            result_file(input, &mut runs, &mut teachers)?;
        } else {
            return Err(Error::Msg(format!("{}: no such file or folder", input.display())));
        }
    }
    let mut by_name: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for r in runs {
        by_name.entry(r.config.clone()).or_default().push(r);
    }
    let configs = by_name.into_iter().map(|(name, mut runs)| {
        runs.sort_by_key(|r| r.seed);
        let evals: Vec<[f64; 3]> = runs.iter().filter_map(|r| r.eval).collect();
        let figures = (!evals.is_empty())
            .then(|| std::array::from_fn(|k| Spread::of(&evals.iter().map(|e| e[k]).collect::<Vec<_>>())));
        let secs: Vec<f64> = runs.iter().filter_map(|r| r.train_seconds).collect();
        let train_seconds = (!secs.is_empty()).then(|| Spread::of(&secs));
        let (part, method, teacher) = (runs[0].part, runs[0].method.clone(), runs[0].teacher.clone());
        Config { name, part, method, teacher, runs, figures, train_seconds }
    });
    let mut configs: Vec<Config> = configs.collect();
    // in the order the methods are listed (natural, pgd_at, …, mmard), then by name
    let rank = |c: &Config| {
        let base = c.method.as_deref().unwrap_or_default();
        crate::ard::methods::Method::ALL.iter().position(|m| m.name() == base).unwrap_or(usize::MAX)
    };
    configs.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name)));
    Ok(Study { configs, teachers })
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Msg(format!("{}: not valid JSON: {e}", path.display())))
}

/// A number field of a result file, named in the error when missing.
fn number(v: &Value, key: &str, path: &Path) -> Result<f64> {
    v.get(key).and_then(Value::as_f64).ok_or_else(|| {
        Error::Msg(format!(
            "{}: `{key}` is missing or not a number (a result file of scripts/study.sh has clean, pgd20 and aa)",
            path.display()
        ))
    })
}

/// A text field of a result file, named in the error when missing.
fn text<'a>(v: &'a Value, key: &str, path: &Path) -> Result<&'a str> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| {
        Error::Msg(format!(
            "{}: `{key}` is missing or not text (a result file of scripts/study.sh has config, part, method and \
             teacher, part one of methods, plug, ablation, sensitivity, teacher)",
            path.display()
        ))
    })
}

fn result_file(path: &Path, runs: &mut Vec<Run>, teachers: &mut BTreeMap<String, [f64; 3]>) -> Result<()> {
    let v = read_json(path)?;
    let config = text(&v, "config", path)?.to_string();
    let part = text(&v, "part", path)?;
    let part = Part::parse(part).ok_or_else(|| {
        let names: Vec<&str> = Part::ALL.iter().map(|(_, n)| *n).collect();
        Error::Msg(format!("{}: part `{part}` is none of {}", path.display(), names.join(", ")))
    })?;
    let eval = [number(&v, "clean", path)?, number(&v, "pgd20", path)?, number(&v, "aa", path)?];
    if part == Part::Teacher {
        teachers.insert(text(&v, "teacher", path)?.to_string(), eval);
        return Ok(());
    }
    let seed = v
        .get("seed")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Msg(format!("{}: `seed` is missing or not a whole number", path.display())))?;
    let epochs = match v.get("metrics") {
        Some(Value::Array(lines)) => lines
            .iter()
            .enumerate()
            .map(|(i, l)| epoch(l, &format!("{}: metrics[{i}]", path.display())))
            .collect::<Result<_>>()?,
        Some(_) => return Err(Error::Msg(format!("{}: `metrics` is not a list of epochs", path.display()))),
        None => Vec::new(),
    };
    let teacher = v.get("teacher").map(|_| text(&v, "teacher", path)).transpose()?.map(str::to_string);
    runs.push(Run {
        config,
        seed,
        part: Some(part),
        method: Some(text(&v, "method", path)?.to_string()),
        teacher,
        eval: Some(eval),
        train_seconds: v.get("train_seconds").and_then(Value::as_f64),
        epochs,
        source: path.to_path_buf(),
    });
    Ok(())
}

/// One epoch from a metrics line; `at` names it in errors.
fn epoch(v: &Value, at: &str) -> Result<Epoch> {
    let n = |k: &str| v.get(k).and_then(Value::as_f64);
    Ok(Epoch {
        epoch: n("epoch").ok_or_else(|| Error::Msg(format!("{at}: no `epoch`")))? as usize,
        loss: n("loss").ok_or_else(|| Error::Msg(format!("{at}: no `loss`")))?,
        test_clean: n("test_clean"),
        test_pgd20: n("test_pgd20"),
    })
}

/// A run folder: its `metrics.jsonl` (training curves) and, when present, the architecture in its
/// `model.safetensors` (a run stopped before its end has only a checkpoint).
fn run_folder(dir: &Path) -> Result<Run> {
    let metrics = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&metrics).map_err(|e| Error::io(&metrics, e))?;
    let epochs = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let at = format!("{}: line {}", metrics.display(), i + 1);
            let v = serde_json::from_str(l)
                .map_err(|e| Error::Msg(format!("{at}: not valid JSON (a run killed mid-write?): {e}")))?;
            epoch(&v, &at)
        })
        .collect::<Result<Vec<_>>>()?;
    if epochs.is_empty() {
        return Err(Error::Msg(format!("{}: no epoch finished yet", metrics.display())));
    }
    let weights = dir.join("model.safetensors");
    if weights.exists() {
        TensorFile::load(&weights)?; // a truncated model is an error here rather than a silent gap
    }
    let name = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let (config, seed) = match name.rsplit_once("-s").and_then(|(c, s)| Some((c.to_string(), s.parse().ok()?))) {
        Some(cs) => cs,
        None => (name, 0),
    };
    let source = dir.to_path_buf();
    Ok(Run { config, seed, part: None, method: None, teacher: None, eval: None, train_seconds: None, epochs, source })
}
