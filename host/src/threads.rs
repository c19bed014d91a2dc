//! How many worker threads a run uses, decided once, and starting them without a panic.
//!
//! Results never depend on the count (every sum has a fixed order and every sample its own
//! noise stream), so the count is only about speed: threads beyond the cores only add the
//! cost of starting and switching them, and a machine that cannot start them (a process
//! limit, a container's) must get an error, not an abort.

use std::fmt;

/// Why worker threads could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {threads} worker threads: {source}")]
pub struct ThreadsError {
    /// Threads asked for.
    pub threads: usize,
    /// rayon's error (the operating system's, for a refused spawn).
    #[source]
    pub source: rayon::ThreadPoolBuildError,
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What asked for a thread count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `--threads` option.
    Option,
    /// The `RAYON_NUM_THREADS` environment variable.
    Environment,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Option => "--threads",
            Source::Environment => "RAYON_NUM_THREADS",
        })
    }
}

/// A decided thread count, and what was asked when that was more than the cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Threads to run.
    pub count: usize,
    /// The count asked for and by whom, when it was lowered to the cores.
    pub lowered_from: Option<(usize, Source)>,
}

/// The thread count of a run: `requested` when not 0, else `RAYON_NUM_THREADS` (`env`)
/// when it is a positive number, else one per core — and never more than the cores.
pub fn decide(requested: usize, env: Option<&str>, cores: usize) -> Decision {
    let asked = match requested {
        0 => env
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .map(|n| (n, Source::Environment)),
        n => Some((n, Source::Option)),
    };
    match asked {
        Some((n, _)) if n <= cores => Decision {
            count: n,
            lowered_from: None,
        },
        Some(asked) => Decision {
            count: cores,
            lowered_from: Some(asked),
        },
        None => Decision {
            count: cores,
            lowered_from: None,
        },
    }
}

/// Starts rayon's global pool with `count` threads, for every parallel loop that runs on
/// "the current pool" (thread count 0 in this crate's functions). rayon would otherwise
/// start it on first use with its own count, and abort when the threads cannot start.
pub fn start_global(count: usize) -> Result<(), ThreadsError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(count)
        .build_global()
        .map_err(|source| ThreadsError {
            threads: count,
            source,
        })
}

/// Runs `work` on `threads` threads: 0 is the current rayon pool (the global one unless the
/// caller installed another), so a caller that decided the count once runs every call on
/// the same threads; any other count gets a pool of its own for this call.
pub fn run_on<R: Send>(threads: usize, work: impl FnOnce() -> R + Send) -> Result<R, ThreadsError> {
    if threads == 0 {
        return Ok(work());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|source| ThreadsError { threads, source })?;
    Ok(pool.install(work))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_then_the_environment_then_the_cores_decide_never_past_the_cores() {
        let d = |requested, env| decide(requested, env, 2);
        assert_eq!(d(1, Some("300")).count, 1);
        assert_eq!(d(0, Some("1")).count, 1);
        assert_eq!(d(0, None).count, 2);
        assert_eq!(d(0, Some("0")).count, 2);
        assert_eq!(d(0, Some("many")).count, 2);
        let lowered = d(0, Some("300"));
        assert_eq!(lowered.count, 2);
        assert_eq!(lowered.lowered_from, Some((300, Source::Environment)));
        assert_eq!(d(300, None).lowered_from, Some((300, Source::Option)));
    }
}
