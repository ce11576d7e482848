//! Progress on stderr (indicatif hides a bar when stderr is not a terminal): the training loop's bar
//! per epoch with the running loss, accuracy and speed, and AutoAttack's bar per stage.
use mmard::Result;
use mmard::ard::train::{EpochReport, Progress, Running};
use mmard::attack::{Event, Stage};
use mmard::nn::Model;

/// A bar of `len` steps named `prefix`, drawn by `template` followed by the time spent and left.
fn new_bar(len: usize, prefix: &str, template: &str) -> indicatif::ProgressBar {
    let style = indicatif::ProgressStyle::with_template(&format!("{template} ({{elapsed}} < {{eta}})"))
        .expect("a valid template");
    let bar = indicatif::ProgressBar::new(len as u64).with_style(style.progress_chars("=> "));
    bar.set_prefix(prefix.to_string());
    bar
}

/// A handler of AutoAttack's events: a bar of the points each stage has attacked, and `on_stage`
/// for each finished stage.
pub fn aa_bar(mut on_stage: impl FnMut(&Stage)) -> impl FnMut(Event) {
    let mut bar: Option<indicatif::ProgressBar> = None;
    move |e| match e {
        Event::Points { stage, done, of } => {
            let b = bar.get_or_insert_with(|| new_bar(of, stage, "{prefix:>8} [{bar:30}] {pos}/{len} points"));
            b.set_position(done as u64);
        }
        Event::Stage(s) => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            on_stage(s);
        }
    }
}

pub struct Bar<F> {
    epochs: usize,
    bar: Option<indicatif::ProgressBar>,
    on_epoch: F,
}

impl<F: FnMut(&EpochReport, &mut Model) -> Result<serde_json::Value>> Bar<F> {
    /// A bar for a run of `epochs`; `on_epoch` answers each finished epoch (`Progress::epoch`).
    pub fn new(epochs: usize, on_epoch: F) -> Self {
        Bar { epochs, bar: None, on_epoch }
    }
}

impl<F: FnMut(&EpochReport, &mut Model) -> Result<serde_json::Value>> Progress for Bar<F> {
    fn batch(&mut self, epoch: usize, done: usize, of: usize, r: &Running) {
        let epochs = self.epochs;
        let bar = self.bar.get_or_insert_with(|| {
            new_bar(of, &format!("{epoch}/{epochs}"), "epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
        });
        bar.set_position(done as u64);
        bar.set_message(format!("loss {:.4}  acc {:.1}%  {:.0} img/s", r.loss, r.accuracy, r.images_per_s));
        if done == of {
            bar.finish_and_clear();
            self.bar = None;
        }
    }

    fn epoch(&mut self, report: &EpochReport, student: &mut Model) -> Result<serde_json::Value> {
        (self.on_epoch)(report, student)
    }
}
