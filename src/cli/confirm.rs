//! Confirmation of destructive commands (`database delete`, `delete` of
//! several objects): the plan is shown first; on a terminal the operator
//! answers `y`, elsewhere `--yes` must be given; `--dry-run` shows the plan
//! and changes nothing.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};

/// `--yes` and `--dry-run`.
#[derive(Debug, Default, Clone, Copy, clap::Args)]
pub struct Confirm {
    /// Do it without asking (needed when standard input is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show what would be done, and do nothing.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
}

impl Confirm {
    /// Shows `plan` (one line per step) on standard error and says whether to
    /// go on. `ask` is false for a step that needs no confirmation (one plain
    /// delete); it is still shown under `--dry-run`.
    pub(super) fn approve(self, plan: &[String], ask: bool) -> anyhow::Result<bool> {
        if self.dry_run {
            for step in plan {
                super::output::emit(format_args!("would {}", super::output::printable(step)));
            }
            return Ok(false);
        }
        if self.yes && plan.iter().any(|s| s.starts_with("skip ")) {
            // With --yes the plan is not shown before; say what is skipped.
            for step in plan.iter().filter(|s| s.starts_with("skip ")) {
                eprintln!("will {}", super::output::printable(step));
            }
        }
        if !ask || self.yes {
            return Ok(true);
        }
        let mut stderr = std::io::stderr().lock();
        for step in plan {
            writeln!(stderr, "will {}", super::output::printable(step))?;
        }
        if !std::io::stdin().is_terminal() {
            bail!("this cannot be undone: add --yes to do it without a terminal, or --dry-run to only show it");
        }
        write!(stderr, "this cannot be undone; go on? [y/N] ")?;
        stderr.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).context("reading the answer")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            bail!("not confirmed; nothing was done");
        }
        Ok(true)
    }
}
