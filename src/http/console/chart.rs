//! The overview's chart: events per day by type over the last [`DAYS`] days,
//! counted from the log's record headers (type and commit time, which erasure
//! keeps) and kept between requests, so a page reads only what was appended
//! since the last one. Drawn as server-side SVG (stacked bars, one colour per
//! type for the [`SHOWN`] most frequent, the rest as "other"), with the same
//! figures as a table for screen readers and text browsers.

use std::collections::BTreeMap;
use std::sync::Mutex;

use maud::{Markup, html};

use crate::store::Ledger;

/// Days the chart covers, today included.
pub(crate) const DAYS: i64 = 90;
/// Event types with their own colour; the rest are summed as "other".
const SHOWN: usize = 6;
const DAY_MS: i64 = 86_400_000;

#[derive(Default)]
struct Tally {
    /// The last position counted.
    through: u64,
    /// Events per day (days since 1970-01-01, UTC) and type.
    days: BTreeMap<i64, BTreeMap<String, u64>>,
}

/// Event counts, kept between requests.
#[derive(Default)]
pub(crate) struct Counts {
    tally: Mutex<Tally>,
}

/// The figures the chart is drawn from: per day of the window, per type.
pub(crate) struct Window {
    pub(crate) first_day: i64,
    pub(crate) days: Vec<BTreeMap<String, u64>>,
}

impl Counts {
    /// Counts what was appended since the last call and returns the window
    /// ending on the day of `now_ms`. Blocking (store reads).
    pub(crate) fn window(&self, ledger: &Ledger, now_ms: i64) -> Result<Window, crate::StoreError> {
        let today = now_ms.div_euclid(DAY_MS);
        let first_day = today - (DAYS - 1);
        let read = ledger.read();
        let snap = read.view.snapshot();
        let log = ledger.log();
        let mut tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        if tally.through == 0 {
            // The first count starts at the window, not at the log's start.
            let start = ledger_events::UtcDateTime::from_millis(first_day * DAY_MS);
            tally.through = log.first_position_from(snap, start)?.saturating_sub(1);
        }
        if tally.through < read.last_seq {
            for record in log.scan(snap, tally.through + 1) {
                let record = record?;
                if record.seq() > read.last_seq {
                    break;
                }
                let day = record.header.commit.committed_at.millis().div_euclid(DAY_MS);
                *tally.days.entry(day).or_default().entry(record.header.event_type.clone()).or_default() += 1;
                tally.through = record.seq();
            }
        }
        tally.days.retain(|d, _| *d >= first_day);
        let days = (first_day..=today).map(|d| tally.days.get(&d).cloned().unwrap_or_default()).collect();
        Ok(Window { first_day, days })
    }
}

fn date(day: i64) -> String {
    jiff::Timestamp::from_millisecond(day * DAY_MS).map(|t| t.strftime("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// The chart and its table.
pub(crate) fn render(window: &Window) -> Markup {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for day in &window.days {
        for (t, n) in day {
            *totals.entry(t.as_str()).or_default() += n;
        }
    }
    let mut ranked: Vec<(&str, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<&str> = ranked.iter().take(SHOWN).map(|(t, _)| *t).collect();
    let has_other = ranked.len() > SHOWN;
    // Per day: the counts of the shown types in order, then "other".
    let stacks: Vec<Vec<u64>> = window
        .days
        .iter()
        .map(|day| {
            let mut s: Vec<u64> = shown.iter().map(|t| day.get(*t).copied().unwrap_or(0)).collect();
            s.push(day.iter().filter(|(t, _)| !shown.contains(&t.as_str())).map(|(_, n)| n).sum());
            s
        })
        .collect();
    let max = stacks.iter().map(|s| s.iter().sum::<u64>()).max().unwrap_or(0).max(1);
    let total: u64 = ranked.iter().map(|(_, n)| n).sum();
    let (width, height, left, bottom) = (900.0_f64, 220.0_f64, 40.0_f64, 20.0_f64);
    let slot = (width - left) / window.days.len().max(1) as f64;
    let scale = (height - bottom - 10.0) / max as f64;
    let label = |i: usize| if i == shown.len() { "other".to_owned() } else { shown[i].to_owned() };
    html! {
        figure {
            svg.chart viewBox={ "0 0 " (width) " " (height) } role="img" aria-labelledby="chart-title" {
                title id="chart-title" { "Events per day by type, last " (DAYS) " days: " (total) " in all" }
                line.axis x1=(left) y1=(height - bottom) x2=(width) y2=(height - bottom) {}
                text x="0" y="14" { (max) }
                text x="0" y=(height - bottom) { "0" }
                @for (i, stack) in stacks.iter().enumerate() {
                    @let x = left + i as f64 * slot;
                    @let mut y = height - bottom;
                    @for (k, n) in stack.iter().enumerate() {
                        @if *n > 0 {
                            @let h = (*n as f64 * scale).max(1.0);
                            @let top = { y -= h; y };
                            rect class={ "c" (k.min(SHOWN)) } x=(format!("{:.1}", x + 1.0)) y=(format!("{top:.1}"))
                                width=(format!("{:.1}", (slot - 2.0).max(1.0))) height=(format!("{h:.1}")) {
                                title { (date(window.first_day + i as i64)) ": " (label(k)) " " (n) }
                            }
                        }
                    }
                    @if i % 15 == 0 {
                        text x=(format!("{x:.1}")) y=(height - 4.0) { (date(window.first_day + i as i64)) }
                    }
                }
            }
            figcaption {
                ul.legend {
                    @for (k, t) in shown.iter().enumerate() {
                        li { span class={ "swatch c" (k) } {} (t) }
                    }
                    @if has_other {
                        li { span class={ "swatch c" (SHOWN) } {} "other" }
                    }
                }
            }
        }
        details {
            summary { "The chart's figures as a table" }
            div.scroll {
                table {
                    caption { "Events per day by type (days with none left out)" }
                    thead { tr { th scope="col" { "Day" } th scope="col" { "Type" } th scope="col" { "Events" } } }
                    tbody {
                        @for (i, day) in window.days.iter().enumerate() {
                            @for (t, n) in day {
                                tr { td { (date(window.first_day + i as i64)) } td { (t) } td { (n) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_stacks_the_top_types_and_sums_the_rest() {
        let mut days = vec![BTreeMap::new(); DAYS as usize];
        for (i, t) in ["A", "B", "C", "D", "E", "F", "G", "H"].iter().enumerate() {
            days[89].insert((*t).to_owned(), 10 - i as u64);
        }
        let svg = render(&Window { first_day: 20_000, days }).into_string();
        // Seven bars on the last day: six types and "other" (G and H: 4 + 3).
        assert_eq!(svg.matches("<rect").count(), 7, "{svg}");
        assert!(svg.contains(": other 7</title>"), "{svg}");
        assert!(svg.contains("in all"));
        assert!(svg.contains(&date(20_089)));
    }
}
