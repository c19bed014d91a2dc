//! Stopping long work cleanly: `train`, `sample` and `demo` [`watch`] for Ctrl-C (SIGINT),
//! SIGTERM (`kill`, a container stopping) and SIGHUP (a closed terminal). The first one sets
//! a flag their loops check between steps (or chunks of samples), so they stop at a clean
//! point, write nothing partial and say where they stopped ([`Interrupted`], exit 128 + the
//! signal's number, as a shell reports it).
//!
//! A second signal means the user will not wait for that point: the process exits at once,
//! after removing the temporary files it is writing
//! ([`tinyddpm::atomic::remove_live_temporaries`]), so even then nothing is left behind and
//! no target is touched. The signals are received on a thread of their own (signal-hook's
//! iterator), where removing files is safe, unlike in a signal handler.
//!
//! Commands that never watch keep the default: a signal ends them (their outputs are written
//! atomically; a killed writer's temporary is removed by the next write of its target).

use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The first stop signal received since [`watch`] ran, 0 before one.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Why a command stopped early: a stop signal arrived. The message says what was kept.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Interrupted {
    message: String,
    signal: i32,
}

impl Interrupted {
    /// The error of a run stopped by the signal received, saying `message`.
    pub fn new(message: String) -> Self {
        Self {
            message,
            signal: RECEIVED.load(Ordering::SeqCst),
        }
    }

    /// The process's exit status: 128 + the signal's number (130 after Ctrl-C).
    pub fn exit_code(&self) -> u8 {
        exit_code(self.signal)
    }
}

fn exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal.clamp(1, 127)).unwrap_or(u8::MAX)
}

/// From now on, a stop signal sets the flag that [`requested`] reads, and a second one
/// removes this process's temporaries and exits.
pub fn watch() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = Signals::new([SIGINT, SIGTERM, SIGHUP]).and_then(|mut signals| {
            std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        let first = RECEIVED.compare_exchange(
                            0,
                            signal,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        );
                        if first.is_err() {
                            tinyddpm::atomic::remove_live_temporaries();
                            std::process::exit(exit_code(signal).into());
                        }
                    }
                })
                .map(|_| ())
        });
    });
    result.context("cannot watch for Ctrl-C")
}

/// Fails with [`Interrupted`], saying `kept`, when a stop signal arrived since [`watch`]:
/// for commands of several steps, between them.
pub fn check(kept: impl FnOnce() -> String) -> Result<()> {
    if requested() {
        return Err(Interrupted::new(format!("interrupted; {}", kept())).into());
    }
    Ok(())
}

/// Whether a stop signal arrived since [`watch`].
pub fn requested() -> bool {
    RECEIVED.load(Ordering::SeqCst) != 0
}
