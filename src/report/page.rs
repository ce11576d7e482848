//! The report's Markdown: a table per section of the study (mean ± std over seeds), the teachers,
//! the teacher-sensitivity slopes, MMARD's settings against the best baseline, and the plots.
use super::plots::{Plot, TeacherPoint, sections, sensitivity};
use super::{Config, Part, Spread, Study};
use std::fmt::Write;

fn cell(s: Spread) -> String {
    if s.n > 1 { format!("{:.1} ± {:.1}", s.mean, s.std) } else { format!("{:.1}", s.mean) }
}

fn table(out: &mut String, configs: &[&Config]) {
    out.push_str("| config | seeds | clean | PGD-20 | AA | train s |\n|---|---|---|---|---|---|\n");
    for c in configs {
        let Some([clean, pgd, aa]) = c.figures else { continue };
        let secs = c.train_seconds.map_or("—".into(), |s| format!("{:.0}", s.mean));
        let _ = writeln!(out, "| {} | {} | {} | {} | {} | {secs} |", c.name, clean.n, cell(clean), cell(pgd), cell(aa));
    }
    out.push('\n');
}

/// Least-squares slope of the student's AA on the teacher's.
fn slope(p: &[TeacherPoint]) -> f64 {
    let n = p.len() as f64;
    let (mx, my) = (p.iter().map(|q| q.1).sum::<f64>() / n, p.iter().map(|q| q.2.mean).sum::<f64>() / n);
    let sxy: f64 = p.iter().map(|q| (q.1 - mx) * (q.2.mean - my)).sum();
    let sxx: f64 = p.iter().map(|q| (q.1 - mx).powi(2)).sum();
    if sxx > 0.0 { sxy / sxx } else { f64::NAN }
}

pub fn markdown(study: &Study, plots: &[Plot]) -> String {
    let mut out = String::from("# Study report\n\n");
    let runs: usize = study.configs.iter().map(|c| c.runs.len()).sum();
    let _ = writeln!(
        out,
        "{runs} runs of {} configs; figures are mean ± sample standard deviation over the seeds (accuracy %).\n",
        study.configs.len()
    );
    for (title, _, configs) in sections(study) {
        let _ = writeln!(out, "## {title}\n");
        table(&mut out, &configs);
    }
    if !study.teachers.is_empty() {
        out.push_str("## Teachers\n\n| teacher | clean | PGD-20 | AA |\n|---|---|---|---|\n");
        for (name, [c, p, a]) in &study.teachers {
            let _ = writeln!(out, "| {name} | {c:.1} | {p:.1} | {a:.1} |");
        }
        out.push('\n');
        let sens = sensitivity(study);
        if !sens.is_empty() {
            out.push_str("Teacher sensitivity: how much a student's AA moves per point of its teacher's AA ");
            out.push_str(
                "(least-squares slope over the teachers; 0 means the student does not follow its teacher).\n\n",
            );
            out.push_str("| method | teachers | student AA by teacher AA | slope |\n|---|---|---|---|\n");
            for (m, p) in &sens {
                let pts: Vec<String> = p.iter().map(|(name, t, s)| format!("{name} {t:.1} → {}", cell(*s))).collect();
                let _ = writeln!(out, "| {m} | {} | {} | {:.2} |", p.len(), pts.join("; "), slope(p));
            }
            out.push('\n');
        }
    }
    against_baseline(&mut out, study);
    for p in plots {
        let _ = writeln!(out, "![{}]({})\n", p.title, p.file);
    }
    out
}

/// MMARD's settings (mmard, its ablations, the methods it was plugged into) against the best
/// baseline under AA of the main table: the difference in AA and in clean accuracy, and whether
/// the AA gap exceeds twice its standard error.
fn against_baseline(out: &mut String, study: &Study) {
    let main: Vec<&Config> =
        study.configs.iter().filter(|c| c.figures.is_some() && c.part == Some(Part::Methods)).collect();
    let Some(best) = main.iter().filter(|c| c.name != "mmard").max_by(|a, b| aa(a).mean.total_cmp(&aa(b).mean)) else {
        return;
    };
    let mmard: Vec<&Config> = study
        .configs
        .iter()
        .filter(|c| {
            let mmard = c.method.as_deref() == Some("mmard");
            c.figures.is_some()
                && match c.part {
                    Some(Part::Methods | Part::Ablation) => mmard,
                    Some(Part::Plug) => true,
                    _ => false,
                }
        })
        .collect();
    if mmard.is_empty() {
        return;
    }
    let (b, bc) = (aa(best), best.figures.expect("evaluated")[0]);
    let _ = writeln!(
        out,
        "## MMARD's settings against the best baseline\n\nThe best baseline under AA is {} (AA {}, clean {}). \
         A gap counts as clear when it exceeds twice its standard error (√(s₁²/n₁ + s₂²/n₂)).\n",
        best.name,
        cell(b),
        cell(bc)
    );
    out.push_str("| config | AA − baseline | clean − baseline | clear? |\n|---|---|---|---|\n");
    for c in mmard {
        let (a, cl) = (aa(c), c.figures.expect("evaluated")[0]);
        let se = (a.std.powi(2) / a.n as f64 + b.std.powi(2) / b.n as f64).sqrt();
        let gap = a.mean - b.mean;
        let clear =
            if se > 0.0 && gap.abs() > 2.0 * se { if gap > 0.0 { "better" } else { "worse" } } else { "within noise" };
        let _ = writeln!(out, "| {} | {gap:+.1} | {:+.1} | {clear} |", c.name, cl.mean - bc.mean);
    }
    out.push('\n');
}

fn aa(c: &Config) -> Spread {
    c.figures.expect("evaluated")[2]
}
