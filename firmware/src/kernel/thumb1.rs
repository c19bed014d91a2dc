//! The dense-layer kernel of the Cortex-M0 (ARMv6-M, Thumb-1).
//!
//! Thumb-1 has a single-cycle 32 × 32-bit `MULS` but no multiply-accumulate, eight low
//! registers for nearly everything, and immediate offsets only on loads that zero-extend
//! (`LDRB`, `LDRH`, `LDR`); the sign-extending `LDRSB` takes a register offset. So:
//!
//! - the activations are widened to i32 once per layer (`[k][n]`, lane-interleaved), and
//!   read with `LDR` at immediate offsets from a pointer advanced once per unrolled chunk;
//! - a weight is `LDRSB` at `row + k`, one running input index `k` serving every row: the
//!   model's int8 rows are read where they are, in flash, already sign-extended;
//! - the sums live in high registers (`ADD` is the one arithmetic instruction that reaches
//!   them), which leaves the seven low registers an `asm!` block gets (r0–r6) to pointers
//!   and operands.
//!
//! One sample, three rows at a time (one activation load and one index step for three
//! products), 11 instructions per 3 multiply-adds:
//!
//! ```text
//! ldr    x, [xs, #4k]           activation k
//! ldrsb  t, [row0, k]           weight (row 0, input k)
//! muls   t, x, t
//! add    r8, t                  row 0's sum
//! …                             rows 1 and 2 the same
//! adds   k, #1
//! ```
//!
//! A batch of three, one row at a time (one weight for three products): also 11 per 3.
//! Offset-binary weights (`w + 128` read by `LDRB` at an immediate offset, the −128·Σx
//! correction once per layer input) would drop the index and allow four rows, 13 per 4, but
//! need a second weight layout in the core's model type (and the M0 has no flash for two).
//!
//! Sums are taken modulo 2^32 (`MULS` and `ADD` wrap), so they are the portable kernel's
//! exactly.

use core::arch::asm;

use tinyddpm_core::quant::{Accumulate, Portable, QLinear};

/// Applies a macro to the inputs of one unrolled chunk of the one-sample loop: 32, the
/// reach of `LDR`'s immediate offset over one lane.
macro_rules! chunk {
    ($body:ident) => {
        $body!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31)
    };
}

/// Applies a macro to the inputs of one unrolled chunk of the batched loop: `LDR`'s offset
/// reaches 124 bytes, 10 inputs of three lanes; 8 divides the layer widths.
macro_rules! lane_chunk {
    ($body:ident) => {
        $body!(0 1 2 3 4 5 6 7)
    };
}

/// How many: `[k, …].len()`.
macro_rules! count {
    ($($k:literal)*) => {
        [$($k),*].len()
    };
}

/// Inputs per unrolled chunk of the one-sample loop.
const CHUNK: usize = chunk!(count);
/// Rows per block on the one-sample path: three row pointers, an input pointer, the input
/// index, an input and a product fill the seven low registers an `asm!` block gets; the
/// sums are in r8, r10 and r11.
const ROWS: usize = 3;
/// Samples of the batched path: one weight serves three products (the sums in r8, r10 and
/// r11). Four lanes measure 0.2 instructions per multiply-add less but need 2 KB more RAM
/// for their sums and widened inputs, past the 8 KB budget.
pub const LANES: usize = 3;
/// Inputs per unrolled chunk of the batched loop.
const LANE_CHUNK: usize = lane_chunk!(count);

/// The unrolled body of [`rows3`]'s loop, one group of lines per input of a chunk. The
/// lines are written out (not an assembler `.rept`) so that LLVM, which sizes an `asm!`
/// block by its lines, places its literal pools within reach.
macro_rules! rows3_chunk {
    ($($k:literal)*) => {
        concat!($(
            "ldr {x}, [{xs}, #4*", $k, "]\n",
            "ldrsb {t}, [{w0}, {k}]\n", "muls {t}, {x}, {t}\n", "add r8, {t}\n",
            "ldrsb {t}, [{w1}, {k}]\n", "muls {t}, {x}, {t}\n", "add r10, {t}\n",
            "ldrsb {t}, [{w2}, {k}]\n", "muls {t}, {x}, {t}\n", "add r11, {t}\n",
            "adds {k}, #1\n",
        )*)
    };
}

/// The unrolled body of [`lanes`]'s loop (written out, as [`rows3_chunk`]).
macro_rules! lanes_chunk {
    ($($k:literal)*) => {
        concat!($(
            "ldrsb {t}, [{w}, {k}]\n", "adds {k}, #1\n",
            "ldr {x}, [{xs}, #12*", $k, "]\n", "muls {x}, {t}, {x}\n", "add r8, {x}\n",
            "ldr {x}, [{xs}, #12*", $k, " + 4]\n", "muls {x}, {t}, {x}\n", "add r10, {x}\n",
            "ldr {x}, [{xs}, #12*", $k, " + 8]\n", "muls {x}, {t}, {x}\n", "add r11, {x}\n",
        )*)
    };
}

/// The Thumb-1 kernel ([module docs](self)).
#[derive(Clone, Copy, Debug, Default)]
pub struct Thumb1;

impl Accumulate for Thumb1 {
    // Not inlined: in a function of its own, its scratch leaves the caller's frame and the
    // caller's per-element code keeps its registers (6.12 → 5.72 instructions per
    // multiply-add on the whole step), and the unrolled loops are in flash once.
    #[inline(never)]
    fn accumulate<const I: usize, const O: usize, const N: usize>(
        &self,
        layer: &QLinear<I, O>,
        x: &[[i16; N]; I],
        sums: &mut [[i32; N]; O],
    ) {
        // The 1- and 2-input layers, a few hundred multiply-adds a step, and any other lane
        // count than the firmware's two, run the portable loop.
        if !I.is_multiple_of(CHUNK) || (N != 1 && N != LANES) {
            return Portable.accumulate(layer, x, sums);
        }
        let wide: [[i32; N]; I] = x.map(|xk| xk.map(i32::from));
        if N == 1 {
            // Blocks of three rows; the last block repeats the last row where O is not a
            // multiple of three (its extra sums are dropped).
            for j in (0..O).step_by(ROWS) {
                let row = |r: usize| &layer.weight[(j + r).min(O - 1)];
                let s = rows3(wide.as_flattened(), [row(0), row(1), row(2)]);
                for (r, s) in s.into_iter().enumerate().take(O - j) {
                    sums[j + r][0] = layer.bias[j + r].wrapping_add(s);
                }
            }
        } else {
            for (j, out) in sums.iter_mut().enumerate() {
                let s = lanes(wide.as_flattened(), &layer.weight[j]);
                for (o, s) in out.iter_mut().zip(s) {
                    *o = layer.bias[j].wrapping_add(s);
                }
            }
        }
    }
}

/// `Σ_k row_r[k]·x[k]` for three rows and one sample (`I` a multiple of [`CHUNK`]), `x`
/// widened.
#[inline(always)]
#[allow(unsafe_code)]
fn rows3<const I: usize>(x: &[i32], rows: [&[i8; I]; ROWS]) -> [i32; ROWS] {
    // Both hold wherever it is called (constants there): what the block below relies on.
    assert!(x.len() == I && I.is_multiple_of(CHUNK) && I > 0);
    let xs = x.as_ptr();
    let end = xs.wrapping_add(I);
    let [w0, w1, w2] = rows.map(|r| r.as_ptr());
    let (s0, s1, s2): (u32, u32, u32);
    // SAFETY: reads `x[0 .. I]` through `xs` (advanced 4·CHUNK bytes a chunk until it
    // reaches `end`) and `rows[r][k]` at `w_r + k` for k in 0 .. I (`k` counts the inputs):
    // every access lies inside the borrowed arrays (I is a whole number of chunks, checked
    // above); nothing is written but registers. The high registers r8, r10, r11 and r12 are
    // declared clobbered (the sums leave through low ones); the stack is not touched.
    unsafe {
        asm!(
            "mov r12, {x}",
            "movs {k}, #0",
            "mov r8, {k}",
            "mov r10, {k}",
            "mov r11, {k}",
            "2:",
            chunk!(rows3_chunk),
            "adds {xs}, #4*{chunk}",
            "cmp {xs}, r12",
            // The loop is longer than a conditional branch reaches (±256 bytes).
            "beq 3f",
            "b 2b",
            "3:",
            "mov {w0}, r8",
            "mov {w1}, r10",
            "mov {w2}, r11",
            chunk = const CHUNK,
            xs = inout(reg) xs => _,
            x = inout(reg) end => _,
            w0 = inout(reg) w0 => s0,
            w1 = inout(reg) w1 => s1,
            w2 = inout(reg) w2 => s2,
            k = out(reg) _,
            t = out(reg) _,
            out("r8") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            options(readonly, nostack),
        );
    }
    [s0, s1, s2].map(|s| s as i32)
}

/// `Σ_k row[k]·x[k][n]` for one row and [`LANES`] samples (`I` a multiple of
/// [`LANE_CHUNK`]), `x` widened and flattened (`x[k][n]` at `LANES·k + n`).
#[inline(always)]
#[allow(unsafe_code)]
fn lanes<const I: usize>(x: &[i32], row: &[i8; I]) -> [i32; LANES] {
    // Both hold wherever it is called (constants there): what the block below relies on.
    assert!(x.len() == LANES * I && I.is_multiple_of(LANE_CHUNK) && I > 0);
    let xs = x.as_ptr();
    let end = xs.wrapping_add(LANES * I);
    let (s0, s1, s2): (u32, u32, u32);
    // SAFETY: reads `x[0 .. LANES·I]` through `xs` (advanced 12·LANE_CHUNK bytes a chunk until
    // it reaches `end`) and `row[k]` at `w + k` for k in 0 .. I (`k` counts the inputs):
    // every access lies inside the borrowed arrays (I is a whole number of chunks, checked
    // above); nothing is written but registers. The high registers r8, r10, r11 and r12 are
    // declared clobbered (the sums leave through low ones); the stack is not touched.
    unsafe {
        asm!(
            "mov r12, {x}",
            "movs {k}, #0",
            "mov r8, {k}",
            "mov r10, {k}",
            "mov r11, {k}",
            "2:",
            lane_chunk!(lanes_chunk),
            "adds {xs}, #12*{chunk}",
            "cmp {xs}, r12",
            "bne 2b",
            "mov {w}, r8",
            "mov {xs}, r10",
            "mov {k}, r11",
            chunk = const LANE_CHUNK,
            xs = inout(reg) xs => s1,
            x = inout(reg) end => _,
            w = inout(reg) row.as_ptr() => s0,
            k = out(reg) s2,
            t = out(reg) _,
            out("r8") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            options(readonly, nostack),
        );
    }
    [s0, s1, s2].map(|s| s as i32)
}
