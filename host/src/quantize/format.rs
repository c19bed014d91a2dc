//! The format choice: each tensor's exponent is the largest `e` with `32767·2^−e ≥ max`,
//! `max` its largest magnitude over the calibration set, so that set never clips except
//! where the core's format forces it.
//!
//! Format constraints the choice respects: a GELU's pre-activation must cover its positive
//! values and its negative ones down to −5 (below, GELU is 0 to within 1.5e-6 and saturating
//! is harmless), its exponent lies in 6..=21 and at most 12 below its output's; the stream
//! exponent covers h before every block and the output layer, the time embedding, and the
//! GELU outputs added to it, and is at least 6 (a GELU's output exponent is at least its
//! pre-activation's). The report counts every calibration value the chosen format
//! clips anyway, per tensor.

use tinyddpm_core::quant::{Gelu, MAX_EXP, MAX_GAP, MAX_PRE_EXP, MIN_PRE_EXP, TABLE_END, TIME_EXP};
use tinyddpm_core::{Layer, Tap};

use super::QuantizeError;
use super::calibrate::{Ranges, Site};

/// `⌊log2 y⌋` for a finite `y > 0`, exactly (from the binary exponent).
fn floor_log2(y: f64) -> i32 {
    libm::frexp(y).1 - 1
}

/// The largest exponent `e ≤ MAX_EXP` with `32767·2^−e ≥ max`.
fn exponent_for(max: f64, name: impl Fn() -> String) -> Result<u8, QuantizeError> {
    if max == 0.0 {
        return Ok(MAX_EXP);
    }
    let e = floor_log2(32767.0 / max);
    if e < 0 {
        return Err(QuantizeError::Range { name: name(), max });
    }
    Ok(e.min(i32::from(MAX_EXP)) as u8)
}

/// The format of every tensor, chosen from the calibrated ranges.
pub(super) struct Formats {
    pub(super) time: Gelu,
    /// Per block.
    pub(super) act: Vec<Gelu>,
    pub(super) stream_exp: u8,
    input_exp: u8,
    output_exp: u8,
    input_pre: u8,
    /// Per block.
    second_pre: Vec<u8>,
}

/// Exponent of a GELU's pre-activation: covers its positive values and its negative ones
/// down to −5; if its output's exponent is already fixed (the stream), within 12 below it.
fn pre_exponent(r: &Ranges, i: usize, post: Option<u8>, name: &str) -> Result<u8, QuantizeError> {
    let need = f64::from(r.max[i]).max((-f64::from(r.min[i])).min(TABLE_END));
    let e = exponent_for(need, || name.to_owned())?;
    let e = match post {
        Some(post) => e.min(post).max(post.saturating_sub(MAX_GAP)),
        None => e,
    };
    Ok(e.clamp(MIN_PRE_EXP, MAX_PRE_EXP))
}

/// Exponent of a GELU's output (not the stream): covers it, within the GELU's limits.
fn post_exponent(r: &Ranges, i: usize, pre: u8, name: &str) -> Result<u8, QuantizeError> {
    let e = exponent_for(r.abs(i), || name.to_owned())?;
    Ok(e.clamp(pre, (pre + MAX_GAP).min(MAX_EXP)))
}

impl Formats {
    /// The formats of a model of `blocks` blocks.
    pub(super) fn choose(r: &Ranges, blocks: usize) -> Result<Self, QuantizeError> {
        let at = |s: Site| s.index(blocks);
        let exp = |s: Site, name: &str| exponent_for(r.abs(at(s)), || name.to_owned());
        let stream_max = Site::stream(blocks)
            .map(|s| r.abs(at(s)))
            .fold(0.0, f64::max);
        // GELU outputs are added to the stream at its exponent, and a GELU's output exponent
        // is at least its pre-activation's, which is at least MIN_PRE_EXP: a stream beyond
        // 32767·2^−6 ≈ 512 saturates there, counted in the report, rather than leave no
        // format at all.
        let stream_exp =
            exponent_for(stream_max, || "the residual stream".to_owned())?.max(MIN_PRE_EXP);
        // The time GELU's pre-activation exponent, then its output within its limits.
        let time_pre = pre_exponent(r, at(Site::Tap(Tap::TimePre)), None, "time_embed.embed.0")?;
        let time = Gelu {
            pre_exp: time_pre,
            post_exp: post_exponent(
                r,
                at(Site::Tap(Tap::TimeHidden)),
                time_pre,
                "time_embed GELU",
            )?,
        };
        let mut act = vec![time; blocks];
        let mut second_pre = vec![0; blocks];
        for i in 0..blocks {
            let name = Layer::BlockFirst(i).to_string();
            let pre = pre_exponent(r, at(Site::Tap(Tap::FirstPre(i))), None, &name)?;
            act[i] = Gelu {
                pre_exp: pre,
                post_exp: post_exponent(r, at(Site::Tap(Tap::Hidden(i))), pre, &name)?,
            };
            let name = Layer::BlockSecond(i).to_string();
            let site = at(Site::Tap(Tap::SecondPre(i)));
            second_pre[i] = pre_exponent(r, site, Some(stream_exp), &name)?;
        }
        let input_pre = at(Site::Tap(Tap::InputPre));
        Ok(Self {
            input_exp: exp(Site::X, "x_t")?,
            stream_exp,
            output_exp: exp(Site::Tap(Tap::Eps), "the predicted noise")?,
            time,
            input_pre: pre_exponent(r, input_pre, Some(stream_exp), "input_layer.0")?,
            act,
            second_pre,
        })
    }

    /// The model's exponents in `QModel::for_each_exponent` order, from which the core's
    /// layer walk derives every layer's.
    pub(super) fn exponents(&self) -> Vec<u8> {
        let (t, stream) = (self.time, self.stream_exp);
        let fixed = [self.input_exp, stream, self.output_exp];
        let time = [t.pre_exp, t.post_exp, self.input_pre];
        let blocks = self.act.iter().zip(&self.second_pre);
        let blocks = blocks.flat_map(|(a, &second)| [a.pre_exp, a.post_exp, second]);
        fixed.into_iter().chain(time).chain(blocks).collect()
    }

    /// Each site's exponent, and whether it is a GELU pre-activation.
    pub(super) fn site(&self, s: Site) -> (u8, bool) {
        match s {
            Site::Time => (TIME_EXP, false),
            Site::Tap(Tap::TimePre) => (self.time.pre_exp, true),
            Site::Tap(Tap::TimeHidden) => (self.time.post_exp, false),
            Site::X => (self.input_exp, false),
            Site::Tap(Tap::InputPre) => (self.input_pre, true),
            Site::Tap(Tap::Eps) => (self.output_exp, false),
            Site::Tap(Tap::Temb | Tap::Stream(_)) | Site::InputAct | Site::Residual(_) => {
                (self.stream_exp, false)
            }
            Site::Tap(Tap::FirstPre(i)) => (self.act[i].pre_exp, true),
            Site::Tap(Tap::Hidden(i)) => (self.act[i].post_exp, false),
            Site::Tap(Tap::SecondPre(i)) => (self.second_pre[i], true),
        }
    }

    /// How many of `values`, recorded at `site`, its format clips.
    pub(super) fn clipped(&self, site: Site, values: &[f32]) -> u64 {
        let (e, gelu_pre) = self.site(site);
        values.iter().filter(|&&v| clips(v, e, gelu_pre)).count() as u64
    }
}

/// Whether `v` leaves the int16 range at exponent `e` (for a GELU pre-activation, only where
/// that changes GELU).
fn clips(v: f32, e: u8, gelu_pre: bool) -> bool {
    let unit = 2f64.powi(-i32::from(e));
    let (lo, hi) = (-32768.5 * unit, 32767.5 * unit);
    let v = f64::from(v);
    v >= hi || (v <= lo && !(gelu_pre && -lo >= TABLE_END))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_cover_the_maximum_with_at_most_one_bit_spare() {
        for max in [1e-9, 0.01, 0.999, 1.0, 1.27, 5.4, 25.6, 32767.0] {
            let e = exponent_for(max, String::new).unwrap();
            let range = 32767.0 * 2f64.powi(-i32::from(e));
            assert!(range >= max, "{max}: 2^-{e}");
            assert!(e == MAX_EXP || range / 2.0 < max, "{max}: 2^-{e}");
        }
        assert_eq!(exponent_for(0.0, String::new), Ok(MAX_EXP));
        assert!(exponent_for(32768.0, String::new).is_err());
    }
}
