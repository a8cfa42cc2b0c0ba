//! Progress of the long offline and streaming commands (`rebuild`, `restore`,
//! `audit export`, `audit verify --data-dir`, `backup`): on a terminal, a bar
//! on standard error with the position, the rate and the time left
//! (`indicatif`); when standard error is not a terminal, only the one-line
//! summary each command prints at its end.

use std::io::IsTerminal;

/// A bar over log positions on a terminal's standard error; hidden elsewhere.
pub(super) fn positions(total: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {human_pos}/{human_len} positions, {per_sec}, {eta} left",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// A callback for the store's `(position, last position)` progress reports
/// that moves `bar`, touching the bar at most every 1,024 positions.
pub(super) fn follow(bar: &indicatif::ProgressBar) -> impl FnMut(u64, u64) + '_ {
    move |seq, total| {
        if seq % 1024 == 0 || seq == total {
            if bar.length() != Some(total) {
                bar.set_length(total);
            }
            bar.set_position(seq);
        }
    }
}

/// "N events in S s (R events/s)" for the summary line.
pub(super) fn rate(count: u64, started: std::time::Instant) -> String {
    let seconds = started.elapsed().as_secs_f64();
    let per_second = if seconds > 0.0 { count as f64 / seconds } else { 0.0 };
    let events = if count == 1 { "event" } else { "events" };
    format!("{count} {events} in {seconds:.1} s ({per_second:.0} events/s)")
}
