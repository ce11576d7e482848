//! The report's SVGs (plotters' SVG backend: text is drawn by the viewer, so no font is needed
//! here): training curves, accuracy bars with error bars over seeds for each section of the study,
//! and student against teacher robustness for the teacher-sensitivity runs.
use super::{Config, Part, Spread, Study};
use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// A plot written, with what the page says about it.
pub struct Plot {
    pub file: String,
    pub title: String,
}

/// The sections of a study, by each config's part: a title, a key for its plot's file name, and the
/// configs it shows, each plugged or ablated method's own row before its variants.
pub fn sections(study: &Study) -> Vec<(&'static str, &'static str, Vec<&Config>)> {
    let evaluated: Vec<&Config> = study.configs.iter().filter(|c| c.figures.is_some()).collect();
    let mut out = Vec::new();
    for (part, title, key) in [
        (Part::Methods, "Every method", "methods"),
        (Part::Plug, "Plug-and-play", "plug"),
        (Part::Ablation, "Ablations", "ablations"),
    ] {
        let members: Vec<&Config> = evaluated.iter().copied().filter(|c| c.part == Some(part)).collect();
        if members.is_empty() {
            continue;
        }
        // the plugged or ablated methods' own rows come first, for comparison
        let mut shown: Vec<&Config> = Vec::new();
        if part != Part::Methods {
            for m in &members {
                if let Some(b) = evaluated
                    .iter()
                    .find(|c| c.part == Some(Part::Methods) && c.method.is_some() && c.method == m.method)
                    && !shown.iter().any(|s| s.name == b.name)
                {
                    shown.push(b);
                }
                shown.push(m);
            }
        } else {
            shown = members;
        }
        out.push((title, key, shown));
    }
    out
}

pub fn draw(study: &Study, dir: &Path) -> Result<Vec<Plot>> {
    let mut plots = Vec::new();
    if study.configs.iter().any(|c| c.runs.iter().any(|r| !r.epochs.is_empty())) {
        let file = "curves.svg".to_string();
        curves(study, &dir.join(&file))?;
        plots.push(Plot {
            file,
            title: "Training curves: loss, clean and PGD-20 test accuracy after each epoch".into(),
        });
    }
    for (title, key, configs) in sections(study) {
        let file = format!("accuracy-{key}.svg");
        bars(title, &configs, &dir.join(&file))?;
        plots.push(Plot {
            file,
            title: format!("{title}: clean, PGD-20 and AutoAttack accuracy (mean ± std over seeds)"),
        });
    }
    if !study.teachers.is_empty() && study.configs.iter().any(|c| c.part == Some(Part::Sensitivity)) {
        let file = "teachers.svg".to_string();
        teachers(study, &dir.join(&file))?;
        plots.push(Plot {
            file,
            title: "Teacher sensitivity: student AA against teacher AA (mean ± std over seeds)".into(),
        });
    }
    Ok(plots)
}

fn fail(file: &Path) -> impl Fn(String) -> Error + '_ {
    move |e| Error::Msg(format!("{}: could not draw the plot: {e}", file.display()))
}

/// Colours that stay apart on white, one per series.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Three panels (loss, clean %, PGD-20 %) against the epoch for the configs of the main section,
/// a thin line per run and a colour per config, and the legend in a fourth panel beside them.
fn curves(study: &Study, file: &Path) -> Result<()> {
    let err = fail(file);
    let root = SVGBackend::new(file, (1280, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let main = sections(study).into_iter().next().map(|(_, _, c)| c).unwrap_or_default();
    let with_curves: Vec<&Config> = main.into_iter().filter(|c| c.runs.iter().any(|r| !r.epochs.is_empty())).collect();
    let shown: Vec<&Config> = if with_curves.is_empty() { study.configs.iter().collect() } else { with_curves };
    let epochs =
        shown.iter().flat_map(|c| c.runs.iter().flat_map(|r| r.epochs.iter().map(|e| e.epoch))).max().unwrap_or(1);
    let (plots, legend) = root.split_horizontally(1100);
    type Pick = fn(&super::Epoch) -> Option<f64>;
    let series: [(&str, &str, Pick); 3] = [
        ("Training loss", "loss (batch mean)", |e| Some(e.loss)),
        ("Clean test accuracy", "accuracy (%)", |e| e.test_clean),
        ("PGD-20 test accuracy", "accuracy (%)", |e| e.test_pgd20),
    ];
    for (p, (title, unit, pick)) in plots.split_evenly((1, 3)).iter().zip(series) {
        let values: Vec<f64> =
            shown.iter().flat_map(|c| c.runs.iter().flat_map(|r| r.epochs.iter().filter_map(pick))).collect();
        if values.is_empty() {
            continue;
        }
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let pad = ((hi - lo) * 0.08).max(1e-3);
        let mut chart = ChartBuilder::on(p)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.8f64..epochs as f64 + 0.2, (lo - pad)..(hi + pad))
            .map_err(|e| err(e.to_string()))?;
        let digits = if unit.starts_with("loss") { 2 } else { 0 };
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("epoch")
            .y_desc(unit)
            .x_labels(epochs.min(10))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.digits$}"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (ci, c) in shown.iter().enumerate() {
            for r in &c.runs {
                let pts: Vec<(f64, f64)> =
                    r.epochs.iter().filter_map(|e| pick(e).map(|v| (e.epoch as f64, v))).collect();
                let style = ShapeStyle::from(color(ci)).stroke_width(2);
                chart.draw_series(LineSeries::new(pts, style).point_size(3)).map_err(|e| err(e.to_string()))?;
            }
        }
    }
    for (ci, c) in shown.iter().enumerate() {
        let y = 60 + 24 * ci as i32;
        legend
            .draw(&PathElement::new(vec![(10, y), (34, y)], color(ci).stroke_width(3)))
            .map_err(|e| err(e.to_string()))?;
        legend.draw(&Text::new(c.name.clone(), (42, y - 8), ("sans-serif", 15))).map_err(|e| err(e.to_string()))?;
    }
    legend
        .draw(&Text::new("one line per run", (10, 28), ("sans-serif", 13).into_font().color(&BLACK.mix(0.6))))
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// Grouped bars: per config its clean, PGD-20 and AA accuracy, with ±std error bars.
fn bars(title: &str, configs: &[&Config], file: &Path) -> Result<()> {
    let err = fail(file);
    let width = (160 + 90 * configs.len() as u32).clamp(700, 1600);
    let root = SVGBackend::new(file, (width, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let figs: Vec<[Spread; 3]> = configs.iter().map(|c| c.figures.expect("sections hold evaluated configs")).collect();
    let hi = figs.iter().flat_map(|f| f.iter().map(|s| s.mean + s.std)).fold(0.0, f64::max);
    let lo = figs.iter().flat_map(|f| f.iter().map(|s| s.mean - s.std)).fold(100.0, f64::min);
    let (ylo, yhi) = (((lo - 5.0) / 5.0).floor().max(0.0) * 5.0, (((hi + 3.0) / 5.0).ceil() * 5.0).min(100.0));
    let n = configs.len();
    let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .margin_bottom(36)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, ylo..yhi)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .light_line_style(TRANSPARENT)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("accuracy (%)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (k, label) in ["clean", "PGD-20", "AutoAttack"].into_iter().enumerate() {
        let c = color(k);
        let x = |i: usize| i as f64 - 0.3 + 0.2 * k as f64;
        let rects = figs
            .iter()
            .enumerate()
            .map(|(i, f)| Rectangle::new([(x(i) - 0.09, ylo), (x(i) + 0.09, f[k].mean)], c.filled()));
        chart.draw_series(rects).map_err(|e| err(e.to_string()))?;
        // the legend in one row under the axis, clear of the bars
        let (at, y) = (80 + 150 * k as i32, 460 - 30);
        root.draw(&Rectangle::new([(at, y), (at + 14, y + 12)], c.filled())).map_err(|e| err(e.to_string()))?;
        root.draw(&Text::new(label, (at + 20, y - 2), ("sans-serif", 15))).map_err(|e| err(e.to_string()))?;
        // ±std: a line with caps (plotters' ErrorBar marks the mean with a circle too)
        for (i, f) in figs.iter().enumerate().filter(|(_, f)| f[k].n > 1) {
            let (s, x) = (f[k], x(i));
            let bar = [
                vec![(x, s.mean - s.std), (x, s.mean + s.std)],
                vec![(x - 0.04, s.mean - s.std), (x + 0.04, s.mean - s.std)],
                vec![(x - 0.04, s.mean + s.std), (x + 0.04, s.mean + s.std)],
            ];
            chart
                .draw_series(bar.into_iter().map(|l| PathElement::new(l, BLACK.stroke_width(1))))
                .map_err(|e| err(e.to_string()))?;
        }
    }
    root.present().map_err(|e| err(e.to_string()))
}

/// Student AA against its teacher's AA, a series per method, error bars over seeds.
fn teachers(study: &Study, file: &Path) -> Result<()> {
    let err = fail(file);
    let points = sensitivity(study);
    if points.is_empty() {
        return Ok(());
    }
    let root = SVGBackend::new(file, (760, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let xs: Vec<f64> = points.iter().flat_map(|(_, p)| p.iter().map(|q| q.teacher_aa)).collect();
    let ys: Vec<f64> = points
        .iter()
        .flat_map(|(_, p)| p.iter().flat_map(|q| [q.student.mean - q.student.std, q.student.mean + q.student.std]))
        .collect();
    let range = |v: &[f64]| {
        let (a, b) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        (a - 2.0)..(b + 2.0)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption("Student AutoAttack accuracy against its teacher's", ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(60)
        .build_cartesian_2d(range(&xs), range(&ys))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("teacher AA (%)")
        .y_desc("student AA (%)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, (method, pts)) in points.iter().enumerate() {
        let c = color(i);
        let line: Vec<(f64, f64)> = pts.iter().map(|q| (q.teacher_aa, q.student.mean)).collect();
        chart.draw_series(LineSeries::new(line.clone(), c.stroke_width(2))).map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(line.iter().map(|&p| Circle::new(p, 5, c.filled())))
            .map_err(|e| err(e.to_string()))?
            .label(method.as_str())
            .legend(move |(x, y)| Circle::new((x + 7, y), 5, c.filled()));
        let errs = pts.iter().map(|q| {
            let (x, s) = (q.teacher_aa, q.student);
            ErrorBar::new_vertical(x, s.mean - s.std, s.mean, s.mean + s.std, c.stroke_width(1), 8)
        });
        chart.draw_series(errs).map_err(|e| err(e.to_string()))?;
    }
    // each teacher's name under its points, centred; a name whose teacher is within a tenth of the
    // axis of the one before goes a line higher, so close teachers' names do not overprint
    let (yr, xr) = (range(&ys), range(&xs));
    let (line, near) = ((yr.end - yr.start) / 22.0, (xr.end - xr.start) / 10.0);
    let (mut level, mut last) = (0.0, f64::NEG_INFINITY);
    let font = ("sans-serif", 13).into_font().color(&BLACK.mix(0.6)).pos(Pos::new(HPos::Center, VPos::Bottom));
    for q in &points[0].1 {
        level = if q.teacher_aa - last < near { level + 1.0 } else { 0.0 };
        last = q.teacher_aa;
        let at = (q.teacher_aa, yr.start + line * (0.3 + level));
        chart
            .draw_series(std::iter::once(Text::new(format!("teacher {}", q.teacher), at, font.clone())))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// A student's AA against one teacher: over seeds, and each seed's.
#[derive(Clone)]
pub struct TeacherPoint {
    pub teacher: String,
    /// The teacher's own AA.
    pub teacher_aa: f64,
    pub student: Spread,
    pub seeds: Vec<f64>,
}

/// Per method with runs against more than one teacher: its points by teacher AA.
pub fn sensitivity(study: &Study) -> Vec<(String, Vec<TeacherPoint>)> {
    let mut by_method: std::collections::BTreeMap<String, Vec<TeacherPoint>> = Default::default();
    for c in &study.configs {
        let (Some(f), Some(t)) = (c.figures, c.teacher.as_ref()) else { continue };
        let Some(teacher) = study.teachers.get(t) else { continue };
        let (Some(Part::Methods | Part::Sensitivity), Some(method)) = (c.part, &c.method) else { continue };
        let seeds = c.runs.iter().filter_map(|r| Some(r.eval?[2])).collect();
        let point = TeacherPoint { teacher: t.clone(), teacher_aa: teacher[2], student: f[2], seeds };
        by_method.entry(method.clone()).or_default().push(point);
    }
    by_method
        .into_iter()
        .filter(|(_, p)| p.len() > 1)
        .map(|(m, mut p)| {
            p.sort_by(|a, b| a.teacher_aa.total_cmp(&b.teacher_aa));
            (m, p)
        })
        .collect()
}
