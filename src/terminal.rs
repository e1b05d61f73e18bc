//! The CLI's live view of a run, on stderr: on a terminal, a progress bar (indicatif) with the
//! phase, what is done of how much, the resource units spent, the throttled responses and an
//! estimate of the time left; elsewhere (a CI log, a file), one line per phase.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{HumanCount, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Phase, Progress, ProgressNow};

/// How often the view reads the progress.
const TICK: Duration = Duration::from_millis(120);

/// A view drawing a run's progress until [`ProgressView::finish`].
#[derive(Debug)]
pub struct ProgressView {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ProgressView {
    /// Starts drawing `progress`: a bar when stderr is a terminal, phase lines otherwise.
    pub fn show(progress: Progress) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = if std::io::stderr().is_terminal() {
            tokio::spawn(draw_bar(progress, stopped))
        } else {
            tokio::spawn(print_phases(progress, stopped))
        };
        Self { stop, task }
    }

    /// Stops drawing (the bar is cleared; the phase lines end with the totals).
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// `1,234,567`.
fn thousands(n: u64) -> String {
    HumanCount(n).to_string()
}

/// `1 minute`, `12 seconds`.
fn short_duration(d: Duration) -> String {
    HumanDuration(d).to_string()
}

/// `[4/9] reading app role assignments`.
fn phase_name(phase: Phase) -> String {
    format!(
        "[{}/{}] {}",
        phase.number(),
        Phase::ALL.len(),
        phase.label()
    )
}

/// The bar's message: what the counter counts (or, without a total, the count itself when
/// there is one), the spend so far, and the time left when it can be told.
fn spend(now: &ProgressNow) -> String {
    let counted = match now.total {
        Some(_) => now.phase.unit().to_owned(),
        None if now.done > 0 => format!("{} {}", thousands(now.done), now.phase.unit()),
        None => String::new(),
    };
    let mut text = format!(
        "{counted}{}{} RU · {} throttled",
        if counted.is_empty() { "" } else { " · " },
        thousands(now.cost.resource_units),
        thousands(now.cost.throttled)
    );
    if let Some(eta) = now.eta() {
        text.push_str(&format!(" · ETA {}", short_duration(eta)));
    }
    text
}

async fn draw_bar(progress: Progress, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let counted =
        // {wide_msg} takes what the terminal's width leaves, so a line never wraps.
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:20}] {human_pos}/{human_len} {wide_msg}",
        )
            .map(|s| s.progress_chars("=> "));
    let open = ProgressStyle::with_template("{spinner} {prefix} {wide_msg}");
    let mut shown: Option<(Phase, bool)> = None;
    let mut finishing = false;
    loop {
        let now = progress.now();
        let style = (now.phase, now.total.is_some());
        if shown != Some(style) {
            let chosen = if now.total.is_some() { &counted } else { &open };
            if let Ok(chosen) = chosen {
                bar.set_style(chosen.clone());
            }
            bar.set_prefix(phase_name(now.phase));
            shown = Some(style);
        }
        match now.total {
            Some(total) => bar.set_length(total),
            None => bar.unset_length(),
        }
        bar.set_position(now.done);
        bar.set_message(spend(&now));
        bar.tick();
        if finishing {
            break;
        }
        // One more frame once stopped, so the last one drawn is the run's end.
        finishing = tokio::select! {
            _ = &mut stopped => true,
            () = tokio::time::sleep(TICK) => false,
        };
    }
    bar.finish_and_clear();
}

async fn print_phases(progress: Progress, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let mut seen = 0;
    loop {
        let stop = tokio::select! {
            _ = &mut stopped => true,
            () = tokio::time::sleep(TICK) => false,
        };
        let entered = progress.entered_since(seen);
        seen += entered.len();
        let now = progress.now();
        for (phase, total) in entered {
            let size = total
                .map(|t| format!(" ({} {})", thousands(t), phase.unit()))
                .unwrap_or_default();
            eprintln!(
                "mi-assess: {}{size} · {} RU so far",
                phase_name(phase),
                thousands(now.cost.resource_units)
            );
        }
        if stop {
            eprintln!(
                "mi-assess: finished in {} · {} RU · {} throttled",
                short_duration(now.elapsed),
                thousands(now.cost.resource_units),
                thousands(now.cost.throttled)
            );
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(50_000_123), "50,000,123");
        assert_eq!(short_duration(Duration::from_secs(9)), "9 seconds");
        assert_eq!(
            phase_name(Phase::ReadingAssignments),
            "[4/9] reading app role assignments"
        );
    }
}
