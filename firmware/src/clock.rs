//! Counting work with SysTick: cycles on a board, instructions under QEMU's `-icount`.
//!
//! SysTick runs from the core clock, so on a real chip a tick is a cycle. QEMU (the DWT cycle
//! counter reads 0 there) with `-icount shift=0` advances its virtual clock 1 ns per
//! instruction and clocks SysTick from the machine's system clock, so a tick is
//! `1e9 / QEMU_SYSTICK_HZ` instructions (40 on `mps2-an386`), the same count on every run.

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;

/// SysTick's 24-bit counter range.
const RELOAD: u32 = 0x00FF_FFFF;

/// The free-running SysTick, counting down from [`RELOAD`] and wrapping.
pub struct Clock(SYST);

impl Clock {
    /// Takes SysTick over and starts it on the core clock, without interrupts.
    pub fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_counter();
        Self(syst)
    }

    /// The counter now.
    #[inline(always)]
    pub fn now(&self) -> u32 {
        SYST::get_current()
    }

    /// Ticks since `start` (a [`Clock::now`] reading): exact for intervals under 2^24 ticks,
    /// which is why callers time one sampler step at a time.
    #[inline(always)]
    pub fn ticks_since(&self, start: u32) -> u32 {
        start.wrapping_sub(self.now()) & RELOAD
    }
}

/// Ticks spent on a number of sampler steps.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meter {
    /// Sum of the timed intervals.
    pub ticks: u64,
    /// Steps timed (one per sampler step, whatever the batch width).
    pub steps: u64,
}

impl Meter {
    /// Adds one step of `ticks`.
    pub fn add(&mut self, ticks: u32) {
        self.ticks += u64::from(ticks);
        self.steps += 1;
    }
}
