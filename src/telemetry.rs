//! Logging: `tracing` to the process's standard streams, where the Functions host picks it up.
//!
//! Under the host, stdout lines are logged at Information and stderr lines at Error, so `serve`
//! sends WARN and ERROR events to stderr and everything else to stdout. The CLI keeps stdout
//! for its summary and logs to stderr, at `warn` on a terminal and `info` elsewhere (`-v`,
//! `-vv` raise it). `MI_ASSESS_LOG` overrides both.
//! Tokens never reach a log: they are held in secret wrappers and never formatted.

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::config::LOG_VAR;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// Under the Functions host: warnings and errors to stderr, the rest to stdout.
    Host,
    /// On a terminal: everything to stderr.
    Terminal,
}

/// The log level of a terminal run: `warn` on a terminal (a summary follows, and the progress
/// bar shows what happens), `info` in a log; each `-v` raises it one step.
pub fn terminal_level(verbosity: u8, stderr_is_terminal: bool) -> &'static str {
    match (verbosity, stderr_is_terminal) {
        (0, true) => "warn",
        (0, false) | (1, _) => "info",
        (2, _) => "debug",
        _ => "trace",
    }
}

/// Installs the global subscriber: `MI_ASSESS_LOG` when set; otherwise `info` under the host,
/// and [`terminal_level`] on a terminal. Safe to call once per process.
pub fn init(target: LogTarget, verbosity: u8) {
    let default = match target {
        LogTarget::Host => "info",
        LogTarget::Terminal => terminal_level(
            verbosity,
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ),
    };
    let filter = EnvFilter::try_from_env(LOG_VAR).unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match target {
        LogTarget::Host => builder
            .with_ansi(false)
            .with_writer(
                std::io::stderr
                    .with_max_level(Level::WARN)
                    .or_else(std::io::stdout),
            )
            .try_init(),
        LogTarget::Terminal => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init(),
    };
    // A second initialisation (tests) is harmless.
    drop(result);
}

/// Resident memory of this process now and at its peak (Linux `VmRSS`/`VmHWM`), in bytes;
/// `None` where `/proc` is not available.
pub fn memory_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Logs the process's memory at the end of a run phase (debug level), so a run's memory profile
/// can be read from its own log.
pub fn memory_mark(phase: &str) {
    if let Some((rss, peak)) = memory_bytes() {
        tracing::debug!(
            phase,
            rss_mb = rss / (1024 * 1024),
            peak_mb = peak / (1024 * 1024),
            "memory"
        );
    }
}
