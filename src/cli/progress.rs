//! The progress display of `--progress`: an indicatif bar on a terminal, plain periodic
//! lines when forced onto a pipe, or nothing.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::hash::{Progress, Silent};

/// `--progress auto|always|never`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar on stderr when stderr is a terminal.
    #[default]
    Auto,
    /// A bar on a terminal, or a line per second when stderr is a file or pipe.
    Always,
    /// No progress output.
    Never,
}

/// An indicatif bar with bytes, rate and ETA, on stderr.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// The progress display `mode` asks for, given whether stderr is a terminal.
    pub fn for_mode(mode: ProgressMode, label: &str) -> Box<dyn Progress> {
        let terminal = std::io::stderr().is_terminal();
        let target = match (mode, terminal) {
            (ProgressMode::Never, _) | (ProgressMode::Auto, false) => return Box::new(Silent),
            (_, true) => ProgressDrawTarget::stderr(),
            (ProgressMode::Always, false) => {
                ProgressDrawTarget::term_like_with_hz(Box::new(PlainLines), 1)
            }
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        Box::new(Bar { bar })
    }
}

impl Progress for Bar {
    fn begin(&self, total_bytes: u64) {
        self.bar.set_length(total_bytes);
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A "terminal" for a pipe or file: each redraw becomes one plain line.
#[derive(Debug)]
struct PlainLines;

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
        writeln!(std::io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        if s.is_empty() {
            return Ok(());
        }
        writeln!(std::io::stderr(), "{s}")
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
