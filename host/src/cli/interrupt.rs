//! Ctrl-C during long work: `train`, `sample` and `demo` [`watch`] for SIGINT; the first one
//! sets a flag their loops check between steps (or chunks of samples), so they stop at a
//! clean point, write nothing partial and say where they stopped ([`Interrupted`], exit 130).
//! A second Ctrl-C ends the process at once, as it would without the handler. Commands that
//! never watch keep the default: Ctrl-C ends them (their outputs are written atomically).

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use signal_hook::consts::SIGINT;

/// Set by the first SIGINT once [`watch`] has run.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The exit status of a run stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
pub const EXIT_CODE: u8 = 130;

/// Why a command stopped early: the user pressed Ctrl-C. The message says what was kept.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// From now on, Ctrl-C sets the flag that [`requested`] reads, and a second one exits.
pub fn watch() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        // The shutdown is registered first, so the first SIGINT finds the flag still clear
        // and only the second one exits.
        result = signal_hook::flag::register_conditional_shutdown(
            SIGINT,
            EXIT_CODE.into(),
            &INTERRUPTED,
        )
        .and_then(|_| signal_hook::flag::register(SIGINT, &INTERRUPTED))
        .map(|_| ());
    });
    result.context("cannot watch for Ctrl-C")
}

/// Fails with [`Interrupted`], saying `kept`, when Ctrl-C was pressed since [`watch`]: for
/// commands of several steps, between them.
pub fn check(kept: impl FnOnce() -> String) -> Result<()> {
    if requested() {
        return Err(Interrupted(format!("interrupted; {}", kept())).into());
    }
    Ok(())
}

/// Whether Ctrl-C was pressed since [`watch`].
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
