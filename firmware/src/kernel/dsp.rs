//! The dense-layer kernel of cores with the DSP extension (Cortex-M4F, Cortex-M33):
//! `SMLAD`, two 16 × 16-bit multiply-adds into a 32-bit sum per instruction.
//!
//! The weights stay the model's int8 rows in flash. One 32-bit load brings four of them,
//! `w0 w1 w2 w3`; `SXTB16` sign-extends bytes 0 and 2 into the two halves of a register
//! (`w0 | w2 << 16`), `SXTB16 …, ROR #8` bytes 1 and 3 (`w1 | w3 << 16`). The activations
//! are copied once per layer into the matching halfword pairs, `x0 | x2 << 16` and
//! `x1 | x3 << 16`, group of four inputs by group, lane by lane, so that the inner loops
//! read them with one post-incremented `LDRD` and two `SMLAD`s take four multiply-adds:
//!
//! ```text
//! ldrd    xa, xb, [xs], #8      x0|x2, x1|x3
//! ldr     w, [wp, #off]         four weights of a row
//! sxtb16  lo, w                 w0|w2
//! sxtb16  w, w, ror #8          w1|w3
//! smlad   acc, lo, xa, acc      acc += w0·x0 + w2·x2
//! smlad   acc, w, xb, acc       acc += w1·x1 + w3·x3
//! ```
//!
//! One sample: four rows share each `LDRD`, 21 instructions per 16 multiply-adds. A batch
//! of five: each weight word serves every lane, 18 per 20. `SMLAD` wraps modulo 2^32
//! like the spec's sum (it only sets the sticky Q flag on a signed overflow, which a valid
//! model never has), so the sums are the portable kernel's exactly.
//!
//! Int16 weights stored pre-widened in flash would need one `LDRD` per four and no `SXTB16`:
//! 13 instructions per 16 multiply-adds for one sample, 16 per 20 batched (about −0.5 and
//! −0.1 on the whole step), for a second copy of the weights (229 KB for the seed model) in
//! another layout than the core's model type holds; the int8 rows meet the per-multiply-add
//! budgets as they are (`firmware/README.md`).

use core::arch::asm;

use tinyddpm_core::quant::{Accumulate, Portable, QLinear};

/// Rows sharing each activation load on the one-sample path: 4 sums, 2 activation words, a
/// weight and its low half, 3 pointers — 11 of the 12 registers an `asm!` block gets.
const ROWS: usize = 4;

/// Applies a macro to the groups of four inputs of one unrolled loop iteration.
macro_rules! groups {
    ($body:ident) => {
        $body!(0 1 2 3 4 5 6 7)
    };
}

/// How many: `[u, …].len()`.
macro_rules! count {
    ($($u:literal)*) => {
        [$($u),*].len()
    };
}

/// Groups of four inputs per unrolled loop iteration.
const UNROLL: usize = groups!(count);

/// Samples of the batched path: each weight word, loaded and unpacked once, serves five lanes
/// (5 sums, 2 activation words, a weight and its low half, 3 pointers: the 12 registers an
/// `asm!` block gets); fewer instructions per multiply-add than 4 lanes (docs/performance.md,
/// "Constants chosen by measurement").
pub const LANES: usize = 5;

/// The unrolled body of [`rows4`]'s loop, one group of lines per group `u` of four inputs.
/// The lines are written out (not an assembler `.rept`) so that LLVM, which sizes an `asm!`
/// block by its lines, places its literal pools within reach.
macro_rules! rows4_loop {
    ($($u:literal)*) => {
        concat!($(
            "ldrd {xa}, {xb}, [{xs}], #8\n",
            "ldr {w}, [{wp}, #4*", $u, "]\n",
            "sxtb16 {lo}, {w}\n", "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a0}, {lo}, {xa}, {a0}\n", "smlad {a0}, {w}, {xb}, {a0}\n",
            "ldr {w}, [{wp}, #4*", $u, " + {i}]\n",
            "sxtb16 {lo}, {w}\n", "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a1}, {lo}, {xa}, {a1}\n", "smlad {a1}, {w}, {xb}, {a1}\n",
            "ldr {w}, [{wp}, #4*", $u, " + 2*{i}]\n",
            "sxtb16 {lo}, {w}\n", "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a2}, {lo}, {xa}, {a2}\n", "smlad {a2}, {w}, {xb}, {a2}\n",
            "ldr {w}, [{wp}, #4*", $u, " + 3*{i}]\n",
            "sxtb16 {lo}, {w}\n", "sxtb16 {w}, {w}, ror #8\n",
            "smlad {a3}, {lo}, {xa}, {a3}\n", "smlad {a3}, {w}, {xb}, {a3}\n",
        )*)
    };
}

/// The unrolled body of [`lanes`]'s loop (written out, as [`rows4_loop`]).
macro_rules! lanes_loop {
    ($($u:literal)*) => {
        concat!($(
            "@ group ", $u, "\n",
            "ldr {w}, [{wp}], #4\n",
            "sxtb16 {lo}, {w}\n", "sxtb16 {w}, {w}, ror #8\n",
            "ldrd {xa}, {xb}, [{xs}], #8\n",
            "smlad {a0}, {lo}, {xa}, {a0}\n", "smlad {a0}, {w}, {xb}, {a0}\n",
            "ldrd {xa}, {xb}, [{xs}], #8\n",
            "smlad {a1}, {lo}, {xa}, {a1}\n", "smlad {a1}, {w}, {xb}, {a1}\n",
            "ldrd {xa}, {xb}, [{xs}], #8\n",
            "smlad {a2}, {lo}, {xa}, {a2}\n", "smlad {a2}, {w}, {xb}, {a2}\n",
            "ldrd {xa}, {xb}, [{xs}], #8\n",
            "smlad {a3}, {lo}, {xa}, {a3}\n", "smlad {a3}, {w}, {xb}, {a3}\n",
            "ldrd {xa}, {xb}, [{xs}], #8\n",
            "smlad {a4}, {lo}, {xa}, {a4}\n", "smlad {a4}, {w}, {xb}, {a4}\n",
        )*)
    };
}

/// The DSP kernel ([module docs](self)).
#[derive(Clone, Copy, Debug, Default)]
pub struct Dsp;

/// `LDRD` needs word alignment, which an `i16` array alone does not have.
#[repr(C, align(8))]
struct Aligned<T>(T);

impl Accumulate for Dsp {
    #[inline(always)]
    fn accumulate<const I: usize, const O: usize, const N: usize>(
        &self,
        layer: &QLinear<I, O>,
        x: &[[i16; N]; I],
        sums: &mut [[i32; N]; O],
    ) {
        // The 1- and 2-input layers (time and coordinates in) and the 2-output one are a few
        // hundred multiply-adds a step, and only the firmware's lane counts have a loop here.
        if !I.is_multiple_of(4 * UNROLL) || !O.is_multiple_of(ROWS) || (N != 1 && N != LANES) {
            return Portable.accumulate(layer, x, sums);
        }
        // x as SMLAD operands: for group g of four inputs and lane n, the halfwords
        // x[4g][n], x[4g+2][n], x[4g+1][n], x[4g+3][n] (I·N halfwords: x's own size).
        let mut pairs = Aligned([[0i16; N]; I]);
        let groups = pairs.0.as_flattened_mut().as_chunks_mut::<4>().0;
        for (quad, lanes) in x.as_chunks::<4>().0.iter().zip(groups.chunks_exact_mut(N)) {
            for (n, pair) in lanes.iter_mut().enumerate() {
                *pair = [quad[0][n], quad[2][n], quad[1][n], quad[3][n]];
            }
        }
        let pairs = pairs.0.as_flattened();
        if N == 1 {
            for (j, block) in sums.as_chunks_mut::<ROWS>().0.iter_mut().enumerate() {
                let s = rows4(pairs, &layer.weight, &layer.bias, ROWS * j);
                for (out, s) in block.iter_mut().zip(s) {
                    out[0] = s;
                }
            }
        } else {
            for (j, out) in sums.iter_mut().enumerate() {
                let s = lanes(pairs, &layer.weight[j], layer.bias[j]);
                out.copy_from_slice(&s);
            }
        }
    }
}

/// `bias[j] + Σ_k weight[j][k]·x[k]` for rows `j .. j + 4` and one sample, `x` as SMLAD
/// pairs (`I` a multiple of `4·UNROLL`).
#[inline(always)]
#[allow(unsafe_code)]
fn rows4<const I: usize, const O: usize>(
    pairs: &[i16],
    weight: &[[i8; I]; O],
    bias: &[i32; O],
    j: usize,
) -> [i32; ROWS] {
    // Hold wherever it is called (constants there): what the block below relies on.
    assert!(pairs.len() == I && I.is_multiple_of(4 * UNROLL) && I > 0 && j + ROWS <= O);
    let [mut a0, mut a1, mut a2, mut a3] = [0, 1, 2, 3].map(|r| bias[j + r]);
    let wp = weight.as_flattened()[j * I..].as_ptr();
    let xs = pairs.as_ptr();
    let end = xs.wrapping_add(I);
    // SAFETY: reads `pairs[0 .. I]` through `xs` (8 bytes a group, post-incremented, until
    // `end`; `pairs` is 8-aligned, as `LDRD` needs) and rows `j .. j + 4` of `weight` through
    // `wp` (row r at `r·I`, 4 bytes a group, `wp` advanced 4·UNROLL a loop): inside the
    // borrowed arrays, since I is a whole number of loops and j + 4 ≤ O (asserted). Writes only its register operands; no stack, and the
    // flags it changes (`cmp`, SMLAD's Q) are not preserved by declaration.
    unsafe {
        asm!(
            "2:",
            groups!(rows4_loop),
            "adds {wp}, #4*{unroll}",
            "cmp {xs}, {end}",
            "bne 2b",
            unroll = const UNROLL,
            i = const I,
            xs = inout(reg) xs => _,
            end = in(reg) end,
            wp = inout(reg) wp => _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            xa = out(reg) _,
            xb = out(reg) _,
            w = out(reg) _,
            lo = out(reg) _,
            options(readonly, nostack),
        );
    }
    [a0, a1, a2, a3]
}

/// `bias + Σ_k row[k]·x[k][n]` for one row and [`LANES`] samples, `x` as SMLAD pairs (`I` a
/// multiple of `4·UNROLL`).
#[inline(always)]
#[allow(unsafe_code)]
fn lanes<const I: usize>(pairs: &[i16], row: &[i8; I], bias: i32) -> [i32; LANES] {
    // Hold wherever it is called (constants there): what the block below relies on.
    assert!(pairs.len() == LANES * I && I.is_multiple_of(4 * UNROLL) && I > 0);
    let [mut a0, mut a1, mut a2, mut a3, mut a4] = [bias; LANES];
    let xs = pairs.as_ptr();
    let end = xs.wrapping_add(LANES * I);
    // SAFETY: reads `pairs[0 .. LANES·I]` through `xs` (8 bytes a lane and group,
    // post-incremented, until `end`; `pairs` is 8-aligned, as `LDRD` needs) and `row[0 .. I]`
    // through `wp` (4 bytes a group, post-incremented): inside the borrowed arrays, since I
    // is a whole number of loops (asserted). Writes only its register operands; no stack,
    // and the flags it changes (`cmp`, SMLAD's Q) are not preserved by declaration.
    unsafe {
        asm!(
            "2:",
            groups!(lanes_loop),
            "cmp {xs}, {end}",
            "bne 2b",
            xs = inout(reg) xs => _,
            end = in(reg) end,
            wp = inout(reg) row.as_ptr() => _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            a4 = inout(reg) a4,
            xa = out(reg) _,
            xb = out(reg) _,
            w = out(reg) _,
            lo = out(reg) _,
            options(readonly, nostack),
        );
    }
    [a0, a1, a2, a3, a4]
}
