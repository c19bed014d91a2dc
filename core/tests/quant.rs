//! The integer model against a second implementation of its specification (the module docs
//! of `tinyddpm_core::quant`), written here from that text in i64/i128 with explicit
//! rounding: the forward pass on random models in regimes that hit saturation and rounding
//! ties, the requantization, the GELU table and its error against exact GELU, and the f32
//! boundary. Nothing expected is produced by the code under test.

use tinyddpm_core::quant::{GELU_TABLE, Gelu, MAX_BIAS, MAX_EXP, from_i16, requantize, to_i16};
use tinyddpm_core::{Lanes, Layer, Model, PredictNoise, QLinear, QModel, QSeedModel, QuantError};
use tinyddpm_core::{NoiseStream, Sampler, Schedule, ScheduleKind, Step, chain, gaussian_lanes};

/// SplitMix64: deterministic test inputs.
struct Mix(u64);

impl Mix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

// ---------------------------------------------------------------------------------------
// The specification, again: i128 rationals, floor division, explicit rounding.

/// What the reference saw: rounding ties and saturations (the tests require some of each).
#[derive(Default, Debug)]
struct Coverage {
    requant_ties: u64,
    gelu_ties: u64,
    saturated: u64,
    values: u64,
}

/// `num / 2^e` rounded to nearest, ties toward +∞: `⌊(2·num + 2^e) / 2^(e+1)⌋`.
fn round_half_up(num: i128, e: u32, cov: &mut Coverage, tie: fn(&mut Coverage)) -> i128 {
    if e > 0 && num.rem_euclid(1 << e) == 1 << (e - 1) {
        tie(cov);
    }
    (2 * num + (1i128 << e)).div_euclid(1i128 << (e + 1))
}

fn sat(v: i128, cov: &mut Coverage) -> i64 {
    cov.values += 1;
    if !(-32768..=32767).contains(&v) {
        cov.saturated += 1;
    }
    v.clamp(-32768, 32767) as i64
}

fn requant_ref(acc: i64, m: i32, s: u8, cov: &mut Coverage) -> i64 {
    let r = round_half_up(i128::from(acc) * i128::from(m), s.into(), cov, |c| {
        c.requant_ties += 1
    });
    sat(r, cov)
}

/// GELU per the spec: interpolate the table at |u|·2^−p in steps of 1/64, round to 2^−o.
fn gelu_ref(u: i64, g: Gelu, cov: &mut Coverage) -> i64 {
    let (p, o) = (u32::from(g.pre_exp), u32::from(g.post_exp));
    let d = p - 6;
    let step = 1i128 << d;
    let a = i128::from(u.abs());
    let (i, f) = (a / step, a % step);
    let table = |i: i128| i128::from(GELU_TABLE.get(i as usize).copied().unwrap_or(0));
    // C[i] + (C[i+1] − C[i])·f/2^d in units of 2^−18, kept exact as a multiple of 2^−(18+d)
    let interp = if i < 320 {
        table(i) * step + (table(i + 1) - table(i)) * f
    } else {
        0
    };
    let c = round_half_up(interp, 12 + p - o, cov, |c| c.gelu_ties += 1);
    let relu = i128::from(u.max(0)) << (o - p);
    sat(relu - c, cov)
}

fn linear_ref<const I: usize, const O: usize>(
    l: &QLinear<I, O>,
    x: &[i64],
    cov: &mut Coverage,
) -> Vec<i64> {
    (0..O)
        .map(|j| {
            let acc = i64::from(l.bias[j])
                + (0..I)
                    .map(|k| i64::from(l.weight[j][k]) * x[k])
                    .sum::<i64>();
            // the bound of the spec: a valid layer's exact sum fits an i32
            assert!(i32::try_from(acc).is_ok(), "sum {acc} leaves i32");
            requant_ref(acc, l.multiplier[j], l.shift[j], cov)
        })
        .collect()
}

/// f32 to int16 per the spec, in f64: the product by 2^e is exact there, then round half to
/// even and clamp.
fn to_i16_ref(v: f32, e: u8) -> i64 {
    if v.is_nan() {
        return 0;
    }
    let y = f64::from(v) * 2f64.powi(e.into());
    y.round_ties_even().clamp(-32768.0, 32767.0) as i64
}

fn time_ref<const H: usize, const B: usize, const D: usize>(
    m: &QModel<H, B, D>,
    t_input: f32,
    cov: &mut Coverage,
) -> Vec<i64> {
    let t = [to_i16_ref(t_input, 15)];
    let hidden: Vec<i64> = linear_ref(&m.time_in, &t, cov)
        .into_iter()
        .map(|u| gelu_ref(u, m.time_act, cov))
        .collect();
    linear_ref(&m.time_out, &hidden, cov)
}

fn forward_ref<const H: usize, const B: usize, const D: usize>(
    m: &QModel<H, B, D>,
    x: [i64; D],
    temb: &[i64],
    cov: &mut Coverage,
) -> [i64; D] {
    let into_stream = |pre_exp| Gelu {
        pre_exp,
        post_exp: m.stream_exp,
    };
    let mut h: Vec<i64> = linear_ref(&m.input, &x, cov)
        .into_iter()
        .zip(temb)
        .map(|(u, t)| {
            let g = gelu_ref(u, into_stream(m.input_pre_exp), cov);
            sat(i128::from(g + t), cov)
        })
        .collect();
    for b in &m.blocks {
        let v: Vec<i64> = linear_ref(&b.first, &h, cov)
            .into_iter()
            .map(|u| gelu_ref(u, b.act, cov))
            .collect();
        let u = linear_ref(&b.second, &v, cov);
        for j in 0..H {
            let r = gelu_ref(u[j], into_stream(b.second_pre_exp), cov);
            // (r + h + temb)/√2 with the multiplier round(2^31/√2), shift 31
            let m_half = (2f64.powi(31) / std::f64::consts::SQRT_2).round() as i32;
            h[j] = requant_ref(r + h[j] + temb[j], m_half, 31, cov);
        }
    }
    let out = linear_ref(&m.output, &h, cov);
    std::array::from_fn(|c| out[c])
}

// ---------------------------------------------------------------------------------------
// Random valid models.

#[derive(Clone, Copy, Debug)]
enum Regime {
    /// Full-range weights, normalised multipliers, outputs from tiny to saturating.
    Realistic,
    /// Small weights, biases and multipliers with small shifts: many exact ties.
    Ties,
    /// ±127 weights, ±2^30 biases, any multiplier (negative too), any shift.
    Extreme,
}

fn gelu_exps(rng: &mut Mix) -> Gelu {
    let pre = rng.range(6, 21) as u8;
    let post = rng.range(pre.into(), (pre + 12).min(MAX_EXP).into()) as u8;
    Gelu {
        pre_exp: pre,
        post_exp: post,
    }
}

/// A pre-activation exponent whose GELU may write the stream at `stream`.
fn pre_for(rng: &mut Mix, stream: u8) -> u8 {
    rng.range((i64::from(stream) - 12).max(6), i64::from(stream).min(21)) as u8
}

fn fill_linear<const I: usize, const O: usize>(l: &mut QLinear<I, O>, rng: &mut Mix, r: Regime) {
    for w in l.weight.as_flattened_mut() {
        *w = match r {
            Regime::Realistic => rng.range(-127, 127),
            Regime::Ties => rng.range(-2, 2),
            Regime::Extreme => [-127, 127][rng.range(0, 1) as usize],
        } as i8;
    }
    for j in 0..O {
        let (b, m, s) = match r {
            Regime::Realistic => (
                rng.range(-(1 << 20), 1 << 20),
                rng.range(1 << 30, i64::from(i32::MAX)),
                rng.range(31, 51),
            ),
            Regime::Ties => (rng.range(-50, 50), rng.range(1, 8), rng.range(0, 4)),
            Regime::Extreme => (
                [
                    -i64::from(MAX_BIAS),
                    i64::from(MAX_BIAS),
                    rng.range(-(1 << 30), 1 << 30),
                ][rng.range(0, 2) as usize],
                rng.range(i64::from(i32::MIN), i64::from(i32::MAX)),
                rng.range(0, 62),
            ),
        };
        l.bias[j] = b as i32;
        l.multiplier[j] = m as i32;
        l.shift[j] = s as u8;
    }
}

fn random_model<const H: usize, const B: usize, const D: usize>(
    rng: &mut Mix,
    r: Regime,
) -> Box<QModel<H, B, D>> {
    let mut m = Box::new(QModel::<H, B, D>::ZERO);
    m.stream_exp = rng.range(6, i64::from(MAX_EXP)) as u8;
    m.input_exp = rng.range(0, i64::from(MAX_EXP)) as u8;
    m.output_exp = rng.range(0, i64::from(MAX_EXP)) as u8;
    m.input_pre_exp = pre_for(rng, m.stream_exp);
    m.time_act = gelu_exps(rng);
    fill_linear(&mut m.time_in, rng, r);
    fill_linear(&mut m.time_out, rng, r);
    fill_linear(&mut m.input, rng, r);
    fill_linear(&mut m.output, rng, r);
    for b in &mut m.blocks {
        b.act = gelu_exps(rng);
        b.second_pre_exp = pre_for(rng, m.stream_exp);
        fill_linear(&mut b.first, rng, r);
        fill_linear(&mut b.second, rng, r);
    }
    m.validate().expect("a valid random model");
    m
}

fn random_x<const D: usize>(rng: &mut Mix, r: Regime) -> [i16; D] {
    [(); D].map(|_| match r {
        Regime::Ties => rng.range(-40, 40),
        _ => rng.range(-32768, 32767),
    } as i16)
}

/// Every lane of `forward::<N>` against the reference.
fn check_model<const H: usize, const B: usize, const D: usize, const N: usize>(
    m: &QModel<H, B, D>,
    rng: &mut Mix,
    r: Regime,
    cov: &mut Coverage,
) {
    let t_input = rng.range(0, 999) as f32 / 1000.0;
    let temb = m.time_embedding(t_input);
    let temb_ref = time_ref(m, t_input, cov);
    assert_eq!(
        temb.map(i64::from).to_vec(),
        temb_ref,
        "{r:?} time embedding"
    );
    let xs: [[i16; D]; N] = std::array::from_fn(|_| random_x(rng, r));
    let lanes: [[i16; N]; D] = std::array::from_fn(|c| xs.map(|x| x[c]));
    let out = m.forward(&lanes, &temb);
    for (n, x) in xs.iter().enumerate() {
        let want = forward_ref(m, x.map(i64::from), &temb_ref, cov);
        assert_eq!(out.map(|c| i64::from(c[n])), want, "{r:?} lane {n} x {x:?}");
    }
}

#[test]
fn forward_pass_equals_an_independent_reference_of_the_spec() {
    let mut rng = Mix(2024);
    let mut cov = Coverage::default();
    for r in [Regime::Realistic, Regime::Ties, Regime::Extreme] {
        for _ in 0..60 {
            let m = random_model::<16, 2, 2>(&mut rng, r);
            check_model::<16, 2, 2, 5>(&m, &mut rng, r, &mut cov);
        }
        let m = random_model::<128, 3, 2>(&mut rng, r);
        check_model::<128, 3, 2, 3>(&m, &mut rng, r, &mut cov);
        let m = random_model::<7, 1, 2>(&mut rng, r);
        check_model::<7, 1, 2, 1>(&m, &mut rng, r, &mut cov);
    }
    println!("{cov:?}");
    // the random models did exercise the rules that are easy to get wrong
    assert!(cov.requant_ties > 100 && cov.gelu_ties > 100, "{cov:?}");
    assert!(
        cov.saturated > 1000 && cov.saturated < cov.values / 2,
        "{cov:?}"
    );
}

/// Other data dimensions: D changes only the input and output layers' widths, and the
/// forward pass still equals the reference of the spec in every regime, lane by lane.
#[test]
fn forward_pass_of_other_dimensions_equals_the_reference() {
    let mut rng = Mix(2026);
    let mut cov = Coverage::default();
    for r in [Regime::Realistic, Regime::Ties, Regime::Extreme] {
        for _ in 0..10 {
            let m = random_model::<16, 2, 1>(&mut rng, r);
            check_model::<16, 2, 1, 4>(&m, &mut rng, r, &mut cov);
            let m = random_model::<16, 2, 3>(&mut rng, r);
            check_model::<16, 2, 3, 4>(&m, &mut rng, r, &mut cov);
            let m = random_model::<16, 1, 8>(&mut rng, r);
            check_model::<16, 1, 8, 3>(&m, &mut rng, r, &mut cov);
            let m = random_model::<8, 1, 16>(&mut rng, r);
            check_model::<8, 1, 16, 2>(&m, &mut rng, r, &mut cov);
        }
    }
    assert!(cov.requant_ties > 10 && cov.saturated > 100, "{cov:?}");
}

/// The float model an integer model approximates with exact weights: each weight w·s_j and
/// bias b·s_j·2^−e_in of channel j, with s_j the channel's weight scale, which the
/// requantization's M·2^−s = s_j·2^(e_out − e_in) gives back.
fn float_twin<const H: usize, const B: usize, const D: usize>(
    q: &QModel<H, B, D>,
) -> Box<Model<H, B, D>> {
    let mut twin = Box::new(Model::<H, B, D>::ZERO);
    let mut layers = Vec::new();
    q.for_each_layer(|l| {
        let scale: Vec<f64> = (0..l.bias.len())
            .map(|j| {
                f64::from(l.multiplier[j]) * 2f64.powi(-i32::from(l.shift[j]))
                    / 2f64.powi(i32::from(l.out_exp) - i32::from(l.in_exp))
            })
            .collect();
        let inputs = l.weight.len() / l.bias.len();
        let w: Vec<f32> = (0..l.weight.len())
            .map(|n| (f64::from(l.weight[n]) * scale[n / inputs]) as f32)
            .collect();
        let b: Vec<f32> = (0..l.bias.len())
            .map(|j| (f64::from(l.bias[j]) * scale[j] * 2f64.powi(-i32::from(l.in_exp))) as f32)
            .collect();
        layers.push((w, b));
    });
    let mut n = 0;
    twin.for_each_tensor_mut(|name, _, data| {
        let (w, b) = &layers[n / 2];
        data.copy_from_slice(if name.is_bias() { b } else { w });
        n += 1;
    });
    twin
}

/// Quantizes one layer of `twin`-to-be by hand: weights to ±127 per channel, the bias to the
/// accumulator's scale, M normalised into [2^30, 2^31).
fn quantize_layer<const I: usize, const O: usize>(
    l: &mut QLinear<I, O>,
    w: &[[f64; I]; O],
    b: &[f64; O],
    in_exp: u8,
    out_exp: u8,
) {
    for j in 0..O {
        let s = w[j].iter().fold(1e-9f64, |m, v| m.max(v.abs())) / 127.0;
        l.weight[j] = w[j].map(|v| (v / s).round() as i8);
        l.bias[j] = (b[j] / s * 2f64.powi(in_exp.into())).round() as i32;
        let factor = s * 2f64.powi(i32::from(out_exp) - i32::from(in_exp));
        let mut shift = 30 - factor.log2().floor() as i32;
        let mut m = (factor * 2f64.powi(shift)).round();
        if m >= 2f64.powi(31) {
            shift -= 1;
            m = (factor * 2f64.powi(shift)).round();
        }
        l.multiplier[j] = m as i32;
        l.shift[j] = shift as u8;
    }
}

/// A small integer model of D = 3 built by hand (the quantizer is the host's), from weights
/// of scale 1/√fan-in, every activation at 2^−12 (range ±8).
fn hand_quantized_d3(rng: &mut Mix) -> Box<QModel<16, 2, 3>> {
    fn layer<const I: usize, const O: usize>(
        rng: &mut Mix,
        l: &mut QLinear<I, O>,
        in_exp: u8,
        out_exp: u8,
    ) {
        let mut u = |scale: f64| (rng.range(-1_000_000, 1_000_000) as f64 / 1e6) * scale;
        let spread = 1.0 / (I as f64).sqrt();
        let w: [[f64; I]; O] = std::array::from_fn(|_| std::array::from_fn(|_| u(spread)));
        let b: [f64; O] = std::array::from_fn(|_| u(0.1));
        quantize_layer(l, &w, &b, in_exp, out_exp);
    }
    let e = 12;
    let gelu = Gelu {
        pre_exp: e,
        post_exp: e,
    };
    let mut q = Box::new(QModel::<16, 2, 3>::ZERO);
    (q.input_exp, q.stream_exp, q.output_exp, q.input_pre_exp) = (e, e, e, e);
    q.time_act = gelu;
    layer(rng, &mut q.time_in, 15, e);
    layer(rng, &mut q.time_out, e, e);
    layer(rng, &mut q.input, e, e);
    for b in q.blocks.iter_mut() {
        (b.act, b.second_pre_exp) = (gelu, e);
        layer(rng, &mut b.first, e, e);
        layer(rng, &mut b.second, e, e);
    }
    layer(rng, &mut q.output, e, e);
    q.validate().expect("a valid hand-quantized model");
    q
}

/// The integer model of D = 3 against its float twin (the same weights in f32): only the
/// integer arithmetic differs — activations at 2^−12, the GELU table — and ε̂ stays within the
/// bounds the host's quantizer test puts on that part of its error (max 4e-3, mean 1e-3).
#[test]
fn integer_model_of_d3_stays_close_to_its_float_twin() {
    let mut rng = Mix(33);
    let q = hand_quantized_d3(&mut rng);
    let twin = float_twin(&q);
    let (mut max, mut sum, mut n) = (0.0f64, 0.0f64, 0);
    for i in 0..300 {
        let t = rng.range(0, 999) as f32 / 1000.0;
        let x: [f32; 3] = std::array::from_fn(|_| rng.range(-3000, 3000) as f32 / 1000.0);
        let float = twin.predict_noise(x, &twin.time_embedding(t));
        let int = q.predict_noise(x.map(|v| [v]), &q.time_embedding(t));
        for (a, [b]) in float.iter().zip(int) {
            let err = f64::from((a - b).abs());
            (max, sum, n) = (max.max(err), sum + err, n + 1);
        }
        assert!(
            float.iter().all(|v| v.abs() < 4.0),
            "{i}: {float:?} near saturation"
        );
    }
    let mean = sum / f64::from(n);
    println!("D = 3: ε̂ int vs float twin: max {max:.3e}, mean {mean:.3e}");
    assert!(max < 4e-3 && mean < 1e-3, "max {max:.3e} mean {mean:.3e}");
}

/// The widest layer at the largest weights, inputs and bias: the exact sum stays an i32.
#[test]
fn widest_layer_at_the_bound_does_not_wrap() {
    let mut l = Box::new(QLinear::<256, 2>::ZERO);
    l.weight[0] = [127; 256];
    l.weight[1] = [-127; 256];
    l.bias = [MAX_BIAS, MAX_BIAS];
    assert!(l.is_valid());
    let x = [[32767i16, -32768]; 256];
    let acc = l.accumulate(0, &x);
    let exact = |w: i64, v: i64| i64::from(MAX_BIAS) + 256 * w * v;
    assert_eq!(acc.map(i64::from), [exact(127, 32767), exact(127, -32768)]);
    assert_eq!(l.accumulate(1, &x)[1] as i64, exact(-127, -32768));
    assert_eq!(exact(-127, -32768), 2_139_095_040);
    // at the seed width the products alone stay below 2^29 (the module docs' claim)
    let mut seed = QLinear::<128, 1>::ZERO;
    seed.weight[0] = [-127; 128];
    let products = seed.accumulate(0, &[[i16::MIN]; 128])[0];
    assert!(products == 128 * 127 * 32768 && products < 1 << 29);
}

#[test]
fn lanes_equal_single_samples() {
    let mut rng = Mix(77);
    let m = random_model::<32, 2, 2>(&mut rng, Regime::Realistic);
    let temb = m.time_embedding(0.25);
    let xs: [[i16; 8]; 2] =
        [0, 1].map(|_| std::array::from_fn(|_| rng.range(-20000, 20000) as i16));
    let all = m.forward(&xs, &temb);
    for n in 0..8 {
        let one = m.forward(&[[xs[0][n]], [xs[1][n]]], &temb);
        assert_eq!([all[0][n], all[1][n]], [one[0][0], one[1][0]]);
    }
}

#[test]
fn validate_names_what_is_out_of_range() {
    let mut rng = Mix(5);
    let good = random_model::<8, 2, 2>(&mut rng, Regime::Realistic);
    assert!(QModel::<8, 2>::ZERO.validate().is_err());
    let check = |f: &dyn Fn(&mut QModel<8, 2>), want: QuantError| {
        let mut m = good.clone();
        f(&mut m);
        assert_eq!(m.validate(), Err(want));
    };
    check(
        &|m| m.blocks[1].second.weight[3][4] = -128,
        QuantError::Parameters {
            layer: Layer::BlockSecond(1),
        },
    );
    check(
        &|m| m.time_out.bias[0] = MAX_BIAS + 1,
        QuantError::Parameters {
            layer: Layer::TimeOut,
        },
    );
    check(
        &|m| m.output.shift[1] = 63,
        QuantError::Parameters {
            layer: Layer::Output,
        },
    );
    check(
        &|m| m.input_exp = 25,
        QuantError::Exponent {
            name: "input_exp",
            value: 25,
        },
    );
    let (pre, post) = (good.blocks[0].act.pre_exp, good.blocks[0].act.post_exp);
    check(
        &|m| m.blocks[0].act.post_exp = pre - 1,
        QuantError::Gelu {
            layer: Layer::BlockFirst(0),
            pre_exp: pre,
            post_exp: pre - 1,
        },
    );
    check(
        &|m| m.blocks[0].act.pre_exp = 22,
        QuantError::Gelu {
            layer: Layer::BlockFirst(0),
            pre_exp: 22,
            post_exp: post,
        },
    );
    // the stream's exponent must suit the GELUs that write it
    check(
        &|m| m.input_pre_exp = m.stream_exp + 1,
        QuantError::Gelu {
            layer: Layer::Input,
            pre_exp: good.stream_exp + 1,
            post_exp: good.stream_exp,
        },
    );
}

/// A model with every parameter out of range still evaluates without a panic (sums wrap,
/// exponents and shifts are clamped).
#[test]
fn invalid_models_evaluate_without_panicking() {
    let mut m = Box::new(QModel::<8, 1>::ZERO);
    for l in [
        &mut m.time_out,
        &mut m.blocks[0].first,
        &mut m.blocks[0].second,
    ] {
        l.weight = [[i8::MIN; 8]; 8];
        l.bias = [i32::MIN; 8];
        l.multiplier = [i32::MIN; 8];
        l.shift = [255; 8];
    }
    m.input_exp = 255;
    m.output_exp = 255;
    m.stream_exp = 255;
    m.blocks[0].act = Gelu {
        pre_exp: 255,
        post_exp: 0,
    };
    assert!(m.validate().is_err());
    let temb = m.time_embedding(f32::NAN);
    m.forward(&[[i16::MIN, i16::MAX], [i16::MAX, i16::MIN]], &temb);
    m.predict_noise([[f32::INFINITY], [f32::NAN]], &temb);
}

// ---------------------------------------------------------------------------------------
// Requantization.

/// CMSIS-NN's default branch: `arm_nn_doubling_high_mult_no_sat` then
/// `arm_nn_divide_by_power_of_two`, for a right shift (`s = 31 + right`).
fn cmsis_double_rounding(acc: i32, m: i32, right: u32) -> i64 {
    let p = i64::from(acc) * i64::from(m);
    let nudge = if p < 0 { 1 - (1i64 << 30) } else { 1 << 30 };
    let high = (p + nudge) >> 31;
    let mask = (1i64 << right) - 1;
    let remainder = high & mask;
    let threshold = (mask >> 1) + i64::from(high < 0);
    (high >> right) + i64::from(remainder > threshold)
}

#[test]
fn requantization_rounds_once_unlike_cmsis_double_rounding() {
    let mut rng = Mix(9);
    let mut cov = Coverage::default();
    let mut worse = 0;
    for i in 0..200_000 {
        let acc = rng.range(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let m = rng.range(1 << 30, i64::from(i32::MAX)) as i32;
        let s = rng.range(0, 62) as u8;
        let acc = if i % 4 == 0 {
            acc >> rng.range(0, 31)
        } else {
            acc
        };
        assert_eq!(
            i64::from(requantize(acc, m, s)),
            requant_ref(acc.into(), m, s, &mut cov),
            "{acc} {m} {s}"
        );
        // against CMSIS's default, where it does not saturate: never farther from exact
        if s >= 31 {
            let exact = i64::from(acc) as f64 * f64::from(m) / 2f64.powi(s.into());
            let theirs = cmsis_double_rounding(acc, m, u32::from(s) - 31);
            if exact.abs() < 30000.0 {
                let ours = requantize(acc, m, s);
                assert!((f64::from(ours) - exact).abs() <= 0.5 + 1e-9);
                if (theirs as f64 - exact).abs() > 0.5 + 1e-9 {
                    worse += 1;
                }
            }
        }
    }
    // ties at every shift
    for s in 1..=20u8 {
        let half = 1i32 << (s - 1);
        assert_eq!(requantize(half, 1, s), 1);
        assert_eq!(requantize(-half, 1, s), 0);
        assert_eq!(requantize(3 * half, 1, s), 2);
        assert_eq!(requantize(-3 * half, 1, s), -1);
    }
    println!("CMSIS double rounding off by more than 1/2 in {worse} of the cases");
    assert!(worse > 0, "double rounding should be seen to differ");
}

// ---------------------------------------------------------------------------------------
// GELU.

/// `c(a) = a·Φ(−a)` in f64.
fn c64(a: f64) -> f64 {
    a * 0.5 * libm::erfc(a / std::f64::consts::SQRT_2)
}

/// Exact GELU `x·Φ(x)` in f64.
fn gelu64(x: f64) -> f64 {
    x * 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

#[test]
fn gelu_table_is_the_rounded_tail_product() {
    for (i, &entry) in GELU_TABLE.iter().enumerate() {
        let v = c64(i as f64 / 64.0) * 2f64.powi(18);
        // far from a rounding tie, so f64's few-ulp erfc cannot flip an entry
        assert!((v - v.floor() - 0.5).abs() > 1e-6, "entry {i}: {v}");
        assert_eq!(f64::from(entry), v.round(), "entry {i}");
    }
    assert_eq!(GELU_TABLE[320], 0);
    // past the table c is below 1.5e-6, its neglect within the bound below
    assert!(c64(5.0) < 1.5e-6);
}

/// Every int16 input at several scales: within 2.6e-5 of exact GELU plus half an output unit.
#[test]
fn gelu_within_its_bound_of_exact_gelu_at_every_input() {
    let mut worst_table = 0.0f64;
    for (pre_exp, post_exp) in [
        (6, 6),
        (10, 10),
        (10, 11),
        (12, 14),
        (15, 15),
        (21, 21),
        (6, 18),
        (9, 21),
    ] {
        let g = Gelu { pre_exp, post_exp };
        assert!(g.is_valid());
        let unit = 2f64.powi(-i32::from(post_exp));
        for u in i16::MIN..=i16::MAX {
            let out = g.apply(u);
            let exact = gelu64(f64::from(u) * 2f64.powi(-i32::from(pre_exp)));
            let got = f64::from(out) * unit;
            if out == i16::MAX || out == i16::MIN {
                // saturated: the exact value lies beyond the range (within the bound)
                assert!(exact.abs() >= 32767.0 * unit - 2.6e-5, "{u} {g:?}");
                continue;
            }
            let table_part = (got - exact).abs() - unit / 2.0;
            worst_table = worst_table.max(table_part);
            assert!(table_part <= 2.6e-5, "u {u} {g:?}: {got} vs {exact}");
        }
    }
    println!("GELU: worst error beyond the output rounding {worst_table:e}");
}

#[test]
fn gelu_is_exact_where_it_is_linear_or_zero() {
    let g = Gelu {
        pre_exp: 10,
        post_exp: 12,
    };
    assert_eq!(g.apply(0), 0);
    // a ≥ 5 (5·2^10 units): c reads 0, GELU is max(u, 0) rescaled
    assert_eq!(g.apply(5 * 1024), 5 * 4096);
    assert_eq!(g.apply(-6000), 0);
    assert_eq!(g.apply(8191), 32764);
    assert_eq!(g.apply(8192), i16::MAX);
}

// ---------------------------------------------------------------------------------------
// The f32 boundary.

#[test]
fn boundary_rounds_half_to_even_and_saturates() {
    let cases: [(f32, u8, i16); 20] = [
        (0.5, 0, 0),
        (1.5, 0, 2),
        (2.5, 0, 2),
        (-0.5, 0, 0),
        (-1.5, 0, -2),
        (-2.5, 0, -2),
        (0.499_999_97, 0, 0),
        (32766.5, 0, 32766),
        (32767.0, 0, 32767),
        (32767.5, 0, 32767),
        (-32768.0, 0, -32768),
        (-32768.5, 0, -32768),
        (1e30, 3, 32767),
        (-1e30, 3, -32768),
        (f32::INFINITY, 0, 32767),
        (f32::NEG_INFINITY, 0, -32768),
        (f32::NAN, 12, 0),
        (1.0e-40, 24, 0),
        // 1.5·2^−12 at exponent 12 is the tie 1.5
        (0.000_366_210_94, 12, 2),
        (-0.000_610_351_56, 12, -2),
    ];
    for (v, e, want) in cases {
        assert_eq!(to_i16(v, e), want, "{v} at 2^-{e}");
        assert_eq!(
            to_i16_ref(v, e),
            i64::from(want),
            "reference: {v} at 2^-{e}"
        );
    }
    assert_eq!(to_i16(-f32::NAN, 0), 0);
    // random bit patterns (every class of float) against the f64 reference
    let mut rng = Mix(31);
    for _ in 0..1_000_000 {
        let v = f32::from_bits(rng.next_u64() as u32);
        let v = if rng.range(0, 1) == 0 {
            v
        } else {
            (v.to_bits() % 70_000) as f32 / 2.0 - 17_500.0
        };
        let e = rng.range(0, i64::from(MAX_EXP)) as u8;
        assert_eq!(i64::from(to_i16(v, e)), to_i16_ref(v, e), "{v:e} {e}");
    }
}

#[test]
fn boundary_out_is_exact() {
    for e in 0..=MAX_EXP {
        for q in [i16::MIN, -12345, -1, 0, 1, 777, i16::MAX] {
            let want = f64::from(q) * 2f64.powi(-i32::from(e));
            assert_eq!(f64::from(from_i16(q, e)), want);
            assert_eq!(to_i16(from_i16(q, e), e), q);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sizes and the sampler hook.

#[test]
fn seed_sized_integer_model_is_about_a_quarter_of_the_float_one() {
    let channels = 128 + 128 + 128 + 3 * 2 * 128 + 2;
    let weights = Model::<128, 3>::PARAMS - channels;
    assert_eq!(QSeedModel::BYTES, weights + channels * (4 + 4 + 1));
    assert_eq!(QSeedModel::BYTES, 125_714);
    println!(
        "QModel<128, 3>: {} bytes of parameters, {} in memory, {} bytes of GELU table",
        QSeedModel::BYTES,
        std::mem::size_of::<QSeedModel>(),
        std::mem::size_of_val(&GELU_TABLE)
    );
}

/// `chain` runs the integer model: four lanes give the four scalar runs' bits.
#[test]
fn chain_over_lanes_equals_scalar_chains() {
    let mut rng = Mix(3);
    let m = random_model::<16, 2, 2>(&mut rng, Regime::Realistic);
    let schedule = Schedule::<40>::new(ScheduleKind::SEED).unwrap();
    let sampler = Sampler::DdpmPosterior;
    let mut streams: Vec<NoiseStream> = (0..4).map(|i| NoiseStream::new(8, i)).collect();
    let x = gaussian_lanes::<Lanes<4>>(&mut streams);
    let lanes = chain(&*m, sampler.steps(&schedule), x, &mut streams, |_, _| ());
    for i in 0..4 {
        let mut s = [NoiseStream::new(8, i as u64)];
        let x = gaussian_lanes::<f32>(&mut s);
        let one = chain(&*m, sampler.steps(&schedule), x, &mut s, |_, _| ());
        assert_eq!(
            one.map(f32::to_bits),
            [lanes[0].0[i], lanes[1].0[i]].map(f32::to_bits)
        );
    }
    // the hook converts at the model's exponents: ε̂ is an exact multiple of 2^−output_exp
    let step: Step = sampler.step(&schedule, 3);
    let eps = PredictNoise::<f32>::predict_noise(&mut &*m, 3, &step, [0.1, -0.2]);
    for v in eps {
        let q = f64::from(v) * 2f64.powi(m.output_exp.into());
        assert_eq!(q, q.round());
    }
}

#[test]
fn zero_block_model_is_valid_and_runs() {
    let mut rng = Mix(4);
    let m = random_model::<4, 0, 2>(&mut rng, Regime::Realistic);
    let temb = m.time_embedding(0.5);
    let out = m.forward(&[[1000], [-1000]], &temb);
    let mut cov = Coverage::default();
    let want = forward_ref(&m, [1000, -1000], &time_ref(&m, 0.5, &mut cov), &mut cov);
    assert_eq!([out[0][0], out[1][0]].map(i64::from), want);
}

/// The sections of a model of a shape read at run time ([`QParams`]): a file written by the
/// const-generic encoder reads back into them with every layer as the const-generic model
/// shows it, they write the same bytes, their time embedding is the reference's, and their
/// checks name the same error as `QModel::validate`.
#[cfg(feature = "file")]
#[test]
fn runtime_sections_are_the_const_generic_models() {
    use tinyddpm_core::Layout;
    use tinyddpm_core::file::{self, Data, Header, Source};
    use tinyddpm_core::quant::{QParams, QParamsMut, time_embedding_in};

    let mut rng = Mix(77);
    let m = random_model::<5, 2, 3>(&mut rng, Regime::Realistic);
    let data = Data {
        dim: 3,
        source: Source::File,
        units: None,
    };
    let header = Header::new::<5, 2, 1000>(ScheduleKind::SEED, Sampler::Ddpm).with_data(data);
    let mut bytes = vec![0; file::encoded_len(tinyddpm_core::Kind::Integer, &header).unwrap()];
    let len = file::encode(&*m, &header, &mut bytes).unwrap();
    bytes.truncate(len);

    let contents = file::open(&bytes).unwrap();
    let layout = contents.layout().unwrap();
    assert_eq!(layout, Layout::of_dim::<5, 2, 3>());
    let [c, w, e] = QParams::lens(&layout);
    let (mut biases, mut multipliers) = (vec![0; c], vec![0; c]);
    let (mut weights, mut shifts, mut exponents) = (vec![0; w], vec![0; c], vec![0; e]);
    contents
        .read_quant_params(QParamsMut {
            biases: &mut biases,
            multipliers: &mut multipliers,
            weights: &mut weights,
            shifts: &mut shifts,
            exponents: &mut exponents,
        })
        .unwrap();
    let params = QParams {
        layout,
        biases: &biases,
        multipliers: &multipliers,
        weights: &weights,
        shifts: &shifts,
        exponents: &exponents,
    };
    assert!(params.fits());
    let mut n = 0;
    m.for_each_layer(|l| {
        assert_eq!(params.layer_at(n), l, "layer {n}");
        n += 1;
    });
    assert_eq!(n, params.layers().count());

    let mut again = vec![0; bytes.len()];
    let len = file::encode_quant_params(&header, &params, &mut again).unwrap();
    assert_eq!(&again[..len], &bytes[..]);

    let mut cov = Coverage::default();
    for t in [0.0, 0.37, 0.999] {
        let (mut hidden, mut temb) = ([[0i16; 1]; 5], [0i16; 5]);
        let (time_in, time_out) = (params.layer(Layer::TimeIn), params.layer(Layer::TimeOut));
        time_embedding_in(&time_in, &time_out, t, &mut hidden, &mut temb);
        assert_eq!(temb.map(i64::from).to_vec(), time_ref(&*m, t, &mut cov));
        assert_eq!(temb, m.time_embedding(t));
    }

    // The same checks, the same errors: an exponent, a GELU's pair, a weight.
    type Corrupt = dyn Fn(&mut QModel<5, 2, 3>, &mut [u8], &mut [i8]);
    let bad = |f: &Corrupt| {
        let (mut q, mut exps, mut ws) = (m.clone(), exponents.clone(), weights.clone());
        f(&mut q, &mut exps, &mut ws);
        let p = QParams {
            exponents: &exps,
            weights: &ws,
            ..params
        };
        assert!(q.validate().is_err());
        assert_eq!(p.validate(), q.validate());
    };
    bad(&|q, e, _| (q.output_exp, e[2]) = (30, 30));
    bad(&|q, e, _| (q.blocks[1].second_pre_exp, e[6 + 3 + 2]) = (2, 2));
    let at = weights.len() - 3 * 5 + 4;
    bad(&move |q, _, w| (q.output.weight[0][4], w[at]) = (-128, -128));
}
