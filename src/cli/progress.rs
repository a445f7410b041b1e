//! The progress display of `--progress`: an indicatif bar on a terminal, plain periodic
//! lines when forced onto a pipe, or nothing.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::hash::{Progress, Silent};

/// `--progress auto|always|never`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar on stderr when stderr is a terminal.
    #[default]
    Auto,
    /// A bar on a terminal, or a line every few seconds when stderr is a file or pipe.
    Always,
    /// No progress output.
    Never,
}

/// An indicatif bar with bytes, rate and ETA, on stderr.
pub struct Bar {
    bar: ProgressBar,
    /// Where the bar is drawn once `begin` gives its length: drawn before, it would show
    /// `0 B/0 B`.
    target: Mutex<Option<ProgressDrawTarget>>,
}

impl Bar {
    /// The progress display `mode` asks for, given whether stderr is a terminal.
    pub fn for_mode(mode: ProgressMode, label: &str) -> Box<dyn Progress> {
        let terminal = std::io::stderr().is_terminal();
        let target = match (mode, terminal) {
            (ProgressMode::Never, _) | (ProgressMode::Auto, false) => return Box::new(Silent),
            (_, true) => ProgressDrawTarget::stderr(),
            (ProgressMode::Always, false) => ProgressDrawTarget::term_like_with_hz(
                Box::new(PlainLines {
                    last: Mutex::new(None),
                }),
                1,
            ),
        };
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        // Decimal units, as the summary line gives its byte counts.
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} ETA {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        Box::new(Bar {
            bar,
            target: Mutex::new(Some(target)),
        })
    }
}

impl Progress for Bar {
    fn begin(&self, total_bytes: u64) {
        self.bar.set_length(total_bytes);
        if let Some(target) = self.target.lock().expect("progress lock").take() {
            self.bar.set_draw_target(target);
        }
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A "terminal" for a pipe or file: a redraw becomes one plain line, at most one every
/// [`PLAIN_LINE_EVERY`] (the first at once); clearing writes nothing.
#[derive(Debug)]
struct PlainLines {
    last: Mutex<Option<Instant>>,
}

const PLAIN_LINE_EVERY: Duration = Duration::from_secs(3);

impl PlainLines {
    fn line(&self, s: &str) -> std::io::Result<()> {
        if s.trim().is_empty() {
            return Ok(());
        }
        let mut last = self.last.lock().expect("progress lock");
        if last.is_some_and(|at| at.elapsed() < PLAIN_LINE_EVERY) {
            return Ok(());
        }
        *last = Some(Instant::now());
        writeln!(std::io::stderr(), "{}", s.trim_end())
    }
}

impl TermLike for PlainLines {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.line(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
