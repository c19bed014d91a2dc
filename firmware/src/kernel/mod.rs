//! The board's dense-layer kernel for the integer model: the core's [`Accumulate`] hook,
//! made for this core. Everything else of the integer network (requantization, GELU, the
//! residual, the wiring) is the core's own code, so a kernel changes only the speed.
//!
//! `build.rs` picks it by target (the `kernel` cfg; stable Rust does not expose Arm target
//! features to `cfg`):
//! - Cortex-M4F (`thumbv7em`) and Cortex-M33 (`thumbv8m.main`, built for `cortex-m33`,
//!   whose DSP extension the instructions need): [`dsp::Dsp`], `SMLAD`.
//! - Cortex-M0 (`thumbv6m`): [`thumb1::Thumb1`], `LDRB`/`SXTB`/`MULS` unrolled.
//!
//! [`Accumulate`]: tinyddpm_core::quant::Accumulate

#[cfg(kernel = "dsp")]
mod dsp;
#[cfg(kernel = "thumb1")]
mod thumb1;

#[cfg(kernel = "dsp")]
pub use dsp::{Dsp as Board, LANES};
#[cfg(kernel = "thumb1")]
pub use thumb1::{LANES, Thumb1 as Board};
