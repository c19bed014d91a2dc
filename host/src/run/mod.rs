//! The jobs: drawing samples from a model ([`sample`]), a training run to its model file,
//! loss log and checkpoints ([`train`]) and the anomaly scores of points ([`score`]), as
//! library calls that the CLI, the demo and the
//! figures share. A job takes its settings resolved and checked, reports progress and is
//! asked whether to stop through a [`Watch`], and fails with a typed error that says what
//! was kept; the command line only parses, calls and prints.

pub mod sample;
pub mod score;
pub mod train;

/// Diffusion timesteps of every model the command line runs (the seed's T).
pub const T: usize = 1000;

/// What a job tells its caller while it runs, and asks it. Called from the job's thread
/// and, for progress, from worker threads.
pub trait Watch: Sync {
    /// The job has `n` units in all, known once it has started (a resumed run's remaining
    /// steps).
    fn total(&self, n: u64) {
        let _ = n;
    }

    /// `n` more units of the job (samples, steps) are done.
    fn advance(&self, n: u64) {
        let _ = n;
    }

    /// The run's state in a few words (e.g. the current loss).
    fn status(&self, status: &str) {
        let _ = status;
    }

    /// Whether to stop at the next clean point (between chunks or calls of steps).
    fn stop(&self) -> bool {
        false
    }
}
