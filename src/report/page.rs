//! The report's Markdown: a table per section of the study (mean ± std over seeds), the teachers,
//! the teacher-sensitivity slopes, each plug-and-play pairing against its base, MMARD's settings against the best baseline, and the plots.
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

/// Least-squares slope of a student's AA on its teacher's AA over every seed's run, with its
/// standard error from the residuals (seed noise included): None with fewer than three runs or a
/// single teacher.
fn fit(p: &[TeacherPoint]) -> Option<(f64, f64)> {
    let xy: Vec<(f64, f64)> = p.iter().flat_map(|q| q.seeds.iter().map(|&y| (q.teacher_aa, y))).collect();
    let n = xy.len() as f64;
    let (mx, my) = (xy.iter().map(|q| q.0).sum::<f64>() / n, xy.iter().map(|q| q.1).sum::<f64>() / n);
    let sxx: f64 = xy.iter().map(|q| (q.0 - mx).powi(2)).sum();
    if xy.len() < 3 || sxx <= 0.0 {
        return None;
    }
    let b = xy.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum::<f64>() / sxx;
    let rss: f64 = xy.iter().map(|q| (q.1 - my - b * (q.0 - mx)).powi(2)).sum();
    Some((b, (rss / (n - 2.0) / sxx).sqrt()))
}

/// The points of every teacher but the weakest (by its own AA).
fn stronger(p: &[TeacherPoint]) -> Vec<TeacherPoint> {
    let weakest = p.iter().map(|q| q.teacher_aa).fold(f64::INFINITY, f64::min);
    p.iter().filter(|q| q.teacher_aa > weakest).cloned().collect()
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
            out.push_str("(least-squares slope over every seed's run, ± its standard error from the residuals; ");
            out.push_str("0 means the student does not follow its teacher, |slope| > 2 SE is marked). ");
            out.push_str("Without the weakest teacher, the slope among the stronger ones, where saturation ");
            out.push_str("would show.\n\n");
            out.push_str("| method | teachers | student AA by teacher AA | slope ± SE | without the weakest |\n");
            out.push_str("|---|---|---|---|---|\n");
            let fitted = |p: &[TeacherPoint]| match fit(p) {
                Some((b, se)) => format!("{b:.2} ± {se:.2}{}", if b.abs() > 2.0 * se { " *" } else { "" }),
                None => "—".into(),
            };
            for (m, p) in &sens {
                let pts: Vec<String> =
                    p.iter().map(|q| format!("{} {:.1} → {}", q.teacher, q.teacher_aa, cell(q.student))).collect();
                let _ = writeln!(
                    out,
                    "| {m} | {} | {} | {} | {} |",
                    p.len(),
                    pts.join("; "),
                    fitted(p),
                    fitted(&stronger(p))
                );
            }
            out.push('\n');
        }
    }
    against_base(&mut out, study);
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
    out.push_str("| config | AA − baseline (2 SE) | clean − baseline | clear? |\n|---|---|---|---|\n");
    for c in mmard {
        let _ = writeln!(out, "| {} | {} |", c.name, gap(c, best));
    }
    out.push('\n');
}

/// Each plug-and-play pairing against its own base method (`method`) from the main table.
fn against_base(out: &mut String, study: &Study) {
    let base = |c: &Config| {
        study.configs.iter().find(|b| b.part == Some(Part::Methods) && b.figures.is_some() && b.method == c.method)
    };
    let pairs: Vec<(&Config, &Config)> = study
        .configs
        .iter()
        .filter(|c| c.part == Some(Part::Plug) && c.figures.is_some())
        .filter_map(|c| Some((c, base(c)?)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    out.push_str(
        "## Plug-and-play against each base\n\nEach pairing against its base method of the main table, \
         the same test as below: a gap is clear when it exceeds twice its standard error.\n\n",
    );
    out.push_str("| config | base | AA − base (2 SE) | clean − base | clear? |\n|---|---|---|---|---|\n");
    for (c, b) in pairs {
        let _ = writeln!(out, "| {} | {} | {} |", c.name, b.name, gap(c, b));
    }
    out.push('\n');
}

/// `c` against `base`: the AA gap with two standard errors, the clean gap, and
/// whether the AA gap exceeds two standard errors, as table cells.
fn gap(c: &Config, base: &Config) -> String {
    let (a, b) = (aa(c), aa(base));
    let clean = c.figures.expect("evaluated")[0].mean - base.figures.expect("evaluated")[0].mean;
    let se = (a.std.powi(2) / a.n as f64 + b.std.powi(2) / b.n as f64).sqrt();
    let g = a.mean - b.mean;
    let clear = if se > 0.0 && g.abs() > 2.0 * se { if g > 0.0 { "better" } else { "worse" } } else { "within noise" };
    format!("{g:+.1} (± {:.1}) | {clean:+.1} | {clear}", 2.0 * se)
}

fn aa(c: &Config) -> Spread {
    c.figures.expect("evaluated")[2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Spread;

    #[test]
    fn slope_and_its_standard_error_over_every_seed() {
        // seeds one point either side of the line 41 + 0.5·(x − 50): slope 0.5, residuals ±1, so
        // s² = 6 / (6 − 2) and SE = √(s² / Sxx) with Sxx = 2·(10² + 0 + 10²)
        let p: Vec<TeacherPoint> = [(50.0, [40.0, 42.0]), (60.0, [45.0, 47.0]), (70.0, [50.0, 52.0])]
            .into_iter()
            .map(|(x, ys)| TeacherPoint {
                teacher: format!("t{x}"),
                teacher_aa: x,
                student: Spread::of(&ys),
                seeds: ys.to_vec(),
            })
            .collect();
        let (b, se) = fit(&p).unwrap();
        assert!((b - 0.5).abs() < 1e-12 && (se - (1.5f64 / 400.0).sqrt()).abs() < 1e-12, "{b} ± {se}");
        assert!(fit(&p[..1]).is_none(), "one teacher has no slope");
        let strong = stronger(&p);
        assert_eq!(strong.iter().map(|q| q.teacher_aa).collect::<Vec<_>>(), [60.0, 70.0]);
        assert!((fit(&strong).unwrap().0 - 0.5).abs() < 1e-12);
    }

    fn config(name: &str, part: Part, clean: f64, aa: &[f64]) -> Config {
        let s = Spread::of(aa);
        Config {
            name: name.into(),
            part: Some(part),
            method: Some("ard".into()),
            teacher: None,
            runs: vec![],
            figures: Some([Spread { mean: clean, ..s }, s, s]),
            train_seconds: None,
        }
    }

    #[test]
    fn pairings_against_their_own_base() {
        // seeds one point either side of the mean: std √2 over 2 seeds, so SE = √(2/2 + 2/2) and
        // two standard errors are 2.83; a gap of 2 is within noise, one of 4 clear
        let base = config("ard", Part::Methods, 66.0, &[35.0, 37.0]);
        let same = config("ard+outer", Part::Plug, 70.0, &[37.0, 39.0]);
        assert_eq!(gap(&same, &base), "+2.0 (± 2.8) | +4.0 | within noise");
        let better = config("ard+both", Part::Plug, 65.0, &[39.0, 41.0]);
        assert_eq!(gap(&better, &base), "+4.0 (± 2.8) | -1.0 | better");
        let study = Study { configs: vec![base, better], teachers: Default::default() };
        let mut out = String::new();
        against_base(&mut out, &study);
        assert!(out.contains("| ard+both | ard | +4.0 (± 2.8) | -1.0 | better |"), "{out}");
    }
}
