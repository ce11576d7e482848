//! The training loop's progress on stderr: a bar per epoch (indicatif hides it when stderr is not a
//! terminal) with the running loss, accuracy and speed, and the caller's work at each epoch's end.
use mmard::Result;
use mmard::ard::train::{EpochReport, Progress, Running};
use mmard::nn::Model;

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
            let style = indicatif::ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} < {eta})",
            )
            .expect("a valid template");
            let bar = indicatif::ProgressBar::new(of as u64).with_style(style.progress_chars("=> "));
            bar.set_prefix(format!("{epoch}/{epochs}"));
            bar
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
