//! Progress bars on stderr, hidden when asked or when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Global;

/// A bar over `len` items of work, labelled with `what` (e.g. "files").
pub fn bar(global: Global, len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if global.quiet || std::env::var_os("NO_PROGRESS").is_some() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template =
        format!("{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {what} {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// A bar over bytes of a transfer (its length is set once known).
pub fn bytes_bar(global: Global) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if global.quiet || std::env::var_os("NO_PROGRESS").is_some() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template =
        "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
