//! Where the lines go, and how the run ends: semihosting under QEMU or a debugger (the
//! default feature), RTT through a debug probe on a real board (feature `rtt`: defmt,
//! defmt-rtt, panic-probe). Both print the same text, formatted here with `core::fmt`.

#[cfg(all(feature = "semihosting", feature = "rtt"))]
compile_error!(
    "features `semihosting` and `rtt` exclude each other: build with `--no-default-features --features rtt` for a board"
);
#[cfg(not(any(feature = "semihosting", feature = "rtt")))]
compile_error!("enable one output: feature `semihosting` (the default) or `rtt`");

#[cfg(feature = "rtt")]
use defmt_rtt as _;
#[cfg(feature = "rtt")]
use panic_probe as _;
#[cfg(feature = "semihosting")]
use panic_semihosting as _;

/// Prints one line (`format!` syntax).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// One line to the host's standard output.
#[cfg(feature = "semihosting")]
pub fn line(args: core::fmt::Arguments<'_>) {
    cortex_m_semihosting::hprintln!("{}", args);
}

/// One line over RTT: formatted into a buffer, sent as a defmt string (defmt's own format
/// syntax has no precision, which the budget lines use).
#[cfg(feature = "rtt")]
pub fn line(args: core::fmt::Arguments<'_>) {
    use core::fmt::Write as _;
    let mut line = Line {
        buf: [0; LINE],
        len: 0,
    };
    // A line longer than the buffer is cut short (the budget lines are under 300 bytes).
    let _ = line.write_fmt(args);
    let text = core::str::from_utf8(&line.buf[..line.len]).unwrap_or("(not UTF-8)");
    defmt::println!("{=str}", text);
}

/// Bytes of one RTT line.
#[cfg(feature = "rtt")]
const LINE: usize = 320;

/// A line being formatted: whole characters only, so the bytes stay UTF-8.
#[cfg(feature = "rtt")]
struct Line {
    buf: [u8; LINE],
    len: usize,
}

#[cfg(feature = "rtt")]
impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Ends the run: QEMU exits with status 0.
#[cfg(feature = "semihosting")]
pub fn finish() -> ! {
    use cortex_m_semihosting::debug;
    debug::exit(debug::EXIT_SUCCESS);
    unreachable!("semihosting exit returned")
}

/// Ends the run: a breakpoint, where `probe-rs run` stops and returns.
#[cfg(feature = "rtt")]
pub fn finish() -> ! {
    loop {
        cortex_m::asm::bkpt();
    }
}
