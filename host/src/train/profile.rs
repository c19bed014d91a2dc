//! Where a training step's time goes, for the training benchmark (feature `profile`): each
//! phase's wall time summed over the threads that ran it. Without the feature every probe is
//! the bare call, inlined, so the trainer's code and bits are the same.
//!
//! `perf stat` would give cycles per phase without touching the code, but the machines this
//! project is measured on are VMs without hardware counters; an `Instant` pair costs ~25 ns,
//! against ~20 µs for the smallest probed GEMM of the seed shape.

/// A phase of a training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Drawing each example's data point, t and noise.
    Data,
    /// A chunk's forward and backward pass, everything included.
    Chunk,
    /// The forward pass's matrix products (inside [`Phase::Chunk`]).
    ForwardGemm,
    /// The backward pass's matrix products: weight and input gradients (inside
    /// [`Phase::Chunk`]).
    BackwardGemm,
    /// Summing the chunks' gradients, Adam and the EMA.
    Adam,
    /// A whole step, on the calling thread.
    Step,
}

impl Phase {
    /// Every phase, in `take`'s order.
    pub const ALL: [Phase; 6] = [
        Phase::Data,
        Phase::Chunk,
        Phase::ForwardGemm,
        Phase::BackwardGemm,
        Phase::Adam,
        Phase::Step,
    ];
}

#[cfg(feature = "profile")]
mod on {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use super::Phase;

    static NANOS: [AtomicU64; Phase::ALL.len()] = [const { AtomicU64::new(0) }; Phase::ALL.len()];

    /// Runs `f`, adding its wall time to `phase`.
    #[inline(always)]
    pub fn time<R>(phase: Phase, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let result = f();
        NANOS[phase as usize].fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        result
    }

    /// Nanoseconds per phase since the last call, in [`Phase::ALL`]'s order; resets them.
    pub fn take() -> [u64; Phase::ALL.len()] {
        std::array::from_fn(|i| NANOS[i].swap(0, Ordering::Relaxed))
    }
}

#[cfg(feature = "profile")]
pub use on::{take, time};

/// Runs `f` (the feature is off: nothing is timed).
#[cfg(not(feature = "profile"))]
#[inline(always)]
pub fn time<R>(_: Phase, f: impl FnOnce() -> R) -> R {
    f()
}
