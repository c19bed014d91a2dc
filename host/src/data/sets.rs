//! The built-in data sets: the seed notebook's Swiss roll and the 2-D toy sets of FFJORD.
//!
//! Provenance: FFJORD's `inf_train_gen` (Grathwohl et al. 2019, repository
//! `rtqichen/ffjord`, file `lib/toy_data.py` at commit `994864ad`), which draws whole
//! batches with numpy and sklearn. Each set here keeps FFJORD's formula, constants and noise
//! levels — the *distribution* — but draws every point from its own stream, with a fixed
//! number of draws ([`DataSet::draws`]; no rejection sampling): a 24-bit [`uniform`] `u`, an
//! integer [`choice`] `k` by multiply-shift, a standard Gaussian pair `z` ([`gaussian_pair`],
//! two draws), in the order listed at each set. Where FFJORD splits a batch into fixed parts
//! (sklearn's half on each circle, `batch_size // 4` per ring, `// 5` per pinwheel arm, half
//! per spiral) a point draws its part uniformly; where sklearn spaces angles evenly
//! (`np.linspace`), a point draws its angle uniformly. `libm`'s `sinf`, `cosf`, `expf`,
//! `sqrtf` and `floorf` keep the bits the same on every platform.
//!
//! The CUDA trainer's `make_batch` (`cuda/kernels/train.cu`, `data_point`) copies every
//! formula line for line.

use core::f32::consts::{FRAC_1_SQRT_2, PI, TAU};
use core::fmt;
use core::str::FromStr;

use libm::{cosf, expf, floorf, sinf, sqrtf};
use rand_xoshiro::Xoshiro128PlusPlus;

use super::{choice, gaussian_pair, uniform};

/// Lower end of the spiral parameter, 1.5π.
pub const S_MIN: f32 = 1.5 * PI;
/// Upper end of the spiral parameter, 4.5π.
pub const S_MAX: f32 = 4.5 * PI;
/// The notebook divides the spiral by 15 to fit it roughly into [−1, 1]².
pub const SCALE: f32 = 15.0;

/// FFJORD's ring radii (1, 0.75, 0.5, 0.25), times its scale 3.
const RINGS: [f32; 4] = [3.0, 2.25, 1.5, 0.75];
/// FFJORD's eight unit centres, in its order.
const EIGHT_CENTERS: [[f32; 2]; 8] = [
    [1.0, 0.0],
    [-1.0, 0.0],
    [0.0, 1.0],
    [0.0, -1.0],
    [FRAC_1_SQRT_2, FRAC_1_SQRT_2],
    [FRAC_1_SQRT_2, -FRAC_1_SQRT_2],
    [-FRAC_1_SQRT_2, FRAC_1_SQRT_2],
    [-FRAC_1_SQRT_2, -FRAC_1_SQRT_2],
];
/// FFJORD's spiral length, 540° in radians: 3π.
const SPIRAL_TURN: f32 = 3.0 * PI;

/// A built-in training distribution. The discriminant is the set's stable id
/// ([`DataSet::id`]), recorded in files (training checkpoints): never renumber.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DataSet {
    /// The seed notebook's roll (the default): `s = 1.5π·(1 + 2u)`, point
    /// `(s·cos s, s·sin s)/15`. Draws: u. Not FFJORD's `swissroll` (sklearn's 3-D roll with
    /// noise 1, projected and divided by 5): the notebook's is the project's contract.
    #[default]
    SwissRoll = 0,
    /// sklearn `make_circles(factor=0.5, noise=0.08)`, times 3: radius `r = (1, 0.5)[k]`,
    /// angle `θ = 2π·u`, point `3·(r·(cos θ, sin θ) + 0.08·z)`. Draws: k of 2, u, z.
    Circles = 1,
    /// FFJORD's four rings: radius `r = 3·(1, 0.75, 0.5, 0.25)[k]`, `θ = 2π·u`, point
    /// `r·(cos θ, sin θ) + 0.08·z`. Draws: k of 4, u, z.
    Rings = 2,
    /// sklearn `make_moons(noise=0.1)`, times 2, shifted by (−1, −0.2): `θ = π·u`, on the
    /// upper moon `(cos θ, sin θ)` (k = 0) or the lower `(1 − cos θ, 1 − sin θ − 0.5)`
    /// (k = 1), point `2·(moon + 0.1·z) + (−1, −0.2)`. Draws: k of 2, u, z.
    Moons = 3,
    /// FFJORD's eight Gaussians: point `(4·c_k + 0.5·z)/1.414`, `c_k` the unit vectors at
    /// multiples of 45° in FFJORD's order (±x, ±y, then the diagonals). Draws: z, k of 8.
    EightGaussians = 4,
    /// FFJORD's pinwheel, 5 arms: features `f = (1 + 0.3·z₀, 0.1·z₁)`, angle
    /// `a = 2π·k/5 + 0.25·exp(f₀)`, point `2·(f₀ cos a + f₁ sin a, f₁ cos a − f₀ sin a)`
    /// (FFJORD's `einsum("ti,tij->tj")` with rotation rows `(cos, −sin), (sin, cos)`).
    /// Draws: z, k of 5.
    Pinwheel = 5,
    /// FFJORD's two spirals: `n = 3π·√u₁`, `d = (−cos n·n + 0.5·u₂, sin n·n + 0.5·u₃)`, the
    /// second spiral its negative (`σ = (1, −1)[k]`), point `σ·d/3 + 0.1·z`.
    /// Draws: u₁, u₂, u₃, k of 2, z.
    TwoSpirals = 6,
    /// FFJORD's checkerboard: `x₁ = 4u₁ − 2`, `x₂ = u₂ − 2k + (⌊x₁⌋ mod 2)`, point
    /// `2·(x₁, x₂)`: the squares of side 2 in [−4, 4]² whose ⌊x/2⌋ + ⌊y/2⌋ is even. (In f32,
    /// `u₂ − 2k + m` can round up onto the square's closing edge, with probability 2⁻²⁴.)
    /// Draws: u₁, u₂, k of 2.
    Checkerboard = 7,
    /// FFJORD's line: `x = 5u − 2.5`, point `(x, x)`. Draws: u.
    Line = 8,
    /// FFJORD's `cos` (a sine, as FFJORD writes it): `x = 5u − 2.5`, point `(x, 2.5·sin x)`.
    /// Draws: u.
    Cos = 9,
}

/// A name that is no built-in data set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown data set '{0}' (known: {names})", names = DataSet::names())]
pub struct UnknownDataSet(pub String);

impl DataSet {
    /// Every set, in id order.
    pub const ALL: [DataSet; 10] = [
        DataSet::SwissRoll,
        DataSet::Circles,
        DataSet::Rings,
        DataSet::Moons,
        DataSet::EightGaussians,
        DataSet::Pinwheel,
        DataSet::TwoSpirals,
        DataSet::Checkerboard,
        DataSet::Line,
        DataSet::Cos,
    ];

    /// The name the CLI takes (FFJORD's, and `swissroll` for the notebook's roll).
    pub const fn name(self) -> &'static str {
        match self {
            DataSet::SwissRoll => "swissroll",
            DataSet::Circles => "circles",
            DataSet::Rings => "rings",
            DataSet::Moons => "moons",
            DataSet::EightGaussians => "8gaussians",
            DataSet::Pinwheel => "pinwheel",
            DataSet::TwoSpirals => "2spirals",
            DataSet::Checkerboard => "checkerboard",
            DataSet::Line => "line",
            DataSet::Cos => "cos",
        }
    }

    /// The stable id files record: 0 the Swiss roll, then FFJORD's list in order.
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The set of id `id`, if there is one.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.get(usize::from(id)).copied()
    }

    /// Every name, comma-separated, in id order.
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// How many u32 draws of its stream one point takes (a Gaussian pair is two).
    pub const fn draws(self) -> usize {
        match self {
            DataSet::SwissRoll | DataSet::Line | DataSet::Cos => 1,
            DataSet::EightGaussians | DataSet::Pinwheel | DataSet::Checkerboard => 3,
            DataSet::Circles | DataSet::Rings | DataSet::Moons => 4,
            DataSet::TwoSpirals => 6,
        }
    }

    /// A half-width e with every point in [−e, e]²: the formula's range, with Gaussians of
    /// at most √(48 ln 2) ≈ 5.77 ([`gaussian_pair`]).
    pub const fn extent(self) -> f32 {
        match self {
            DataSet::SwissRoll => 1.0,
            DataSet::Line | DataSet::Cos => 2.5,
            DataSet::Rings => 3.5,
            DataSet::TwoSpirals | DataSet::Checkerboard => 4.0,
            DataSet::Circles | DataSet::Moons => 4.5,
            DataSet::EightGaussians => 5.0,
            DataSet::Pinwheel => 6.0,
        }
    }

    /// The classes of a labelled set, its components (0: a set without labels): the ring
    /// of `circles` (0 outer) and `rings` (0 outermost), the moon of `moons` (0 upper), the
    /// Gaussian of `8gaussians` (in FFJORD's order), the arm of `pinwheel`, the spiral of
    /// `2spirals` (0 the unflipped one). Each is the component index k its formula draws.
    pub const fn classes(self) -> u16 {
        match self {
            DataSet::Circles | DataSet::Moons | DataSet::TwoSpirals => 2,
            DataSet::Rings => 4,
            DataSet::EightGaussians => 8,
            DataSet::Pinwheel => 5,
            DataSet::SwissRoll | DataSet::Checkerboard | DataSet::Line | DataSet::Cos => 0,
        }
    }

    /// Every set with labels ([`DataSet::classes`] > 0), comma-separated.
    pub fn labelled_names() -> String {
        let labelled = Self::ALL.into_iter().filter(|s| s.classes() > 0);
        labelled.map(Self::name).collect::<Vec<_>>().join(", ")
    }

    /// One point of the set from `rng`, [`DataSet::draws`] draws (see each variant).
    pub fn point(self, rng: &mut Xoshiro128PlusPlus) -> [f32; 2] {
        self.labelled_point(rng).0
    }

    /// [`DataSet::point`] with its label, the component it was drawn from (below
    /// [`DataSet::classes`]; 0 for a set without labels): the same draws, the same point.
    pub fn labelled_point(self, rng: &mut Xoshiro128PlusPlus) -> ([f32; 2], u16) {
        match self {
            DataSet::SwissRoll => (swiss_roll_point(S_MIN * (1.0 + 2.0 * uniform(rng))), 0),
            DataSet::Circles => {
                let k = choice(rng, 2);
                let r = [1.0, 0.5][k as usize];
                let a = TAU * uniform(rng);
                let z = gaussian_pair(rng);
                let p = [
                    3.0 * (r * cosf(a) + 0.08 * z[0]),
                    3.0 * (r * sinf(a) + 0.08 * z[1]),
                ];
                (p, k as u16)
            }
            DataSet::Rings => {
                let k = choice(rng, 4);
                let r = RINGS[k as usize];
                let a = TAU * uniform(rng);
                let z = gaussian_pair(rng);
                let p = [r * cosf(a) + 0.08 * z[0], r * sinf(a) + 0.08 * z[1]];
                (p, k as u16)
            }
            DataSet::Moons => {
                let k = choice(rng, 2);
                let a = PI * uniform(rng);
                let z = gaussian_pair(rng);
                let (c, s) = (cosf(a), sinf(a));
                let m = if k == 1 {
                    [1.0 - c, 1.0 - s - 0.5]
                } else {
                    [c, s]
                };
                let p = [
                    2.0 * (m[0] + 0.1 * z[0]) - 1.0,
                    2.0 * (m[1] + 0.1 * z[1]) - 0.2,
                ];
                (p, k as u16)
            }
            DataSet::EightGaussians => {
                let z = gaussian_pair(rng);
                let k = choice(rng, 8);
                let c = EIGHT_CENTERS[k as usize];
                let p = [
                    (4.0 * c[0] + 0.5 * z[0]) / 1.414,
                    (4.0 * c[1] + 0.5 * z[1]) / 1.414,
                ];
                (p, k as u16)
            }
            DataSet::Pinwheel => {
                let z = gaussian_pair(rng);
                let k = choice(rng, 5);
                let (f0, f1) = (1.0 + 0.3 * z[0], 0.1 * z[1]);
                let a = TAU * k as f32 / 5.0 + 0.25 * expf(f0);
                let (c, s) = (cosf(a), sinf(a));
                let p = [2.0 * (f0 * c + f1 * s), 2.0 * (f1 * c - f0 * s)];
                (p, k as u16)
            }
            DataSet::TwoSpirals => {
                let n = SPIRAL_TURN * sqrtf(uniform(rng));
                let dx = -cosf(n) * n + 0.5 * uniform(rng);
                let dy = sinf(n) * n + 0.5 * uniform(rng);
                let k = choice(rng, 2);
                let sign = [1.0, -1.0][k as usize];
                let z = gaussian_pair(rng);
                let p = [sign * dx / 3.0 + 0.1 * z[0], sign * dy / 3.0 + 0.1 * z[1]];
                (p, k as u16)
            }
            DataSet::Checkerboard => {
                let x1 = 4.0 * uniform(rng) - 2.0;
                let u = uniform(rng);
                let k = choice(rng, 2) as f32;
                // Python's `floor(x1) % 2` is 0 or 1 for negative floors too: the low bit of
                // the (two's complement) integer ⌊x1⌋ ∈ {−2, …, 1}.
                let m = (floorf(x1) as i32 & 1) as f32;
                ([2.0 * x1, 2.0 * (u - 2.0 * k + m)], 0)
            }
            DataSet::Line => {
                let x = 5.0 * uniform(rng) - 2.5;
                ([x, x], 0)
            }
            DataSet::Cos => {
                let x = 5.0 * uniform(rng) - 2.5;
                ([x, 2.5 * sinf(x)], 0)
            }
        }
    }
}

impl fmt::Display for DataSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DataSet {
    type Err = UnknownDataSet;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|set| set.name() == s)
            .ok_or_else(|| UnknownDataSet(s.to_string()))
    }
}

/// The Swiss-roll point at spiral parameter `s`.
pub fn swiss_roll_point(s: f32) -> [f32; 2] {
    [s * cosf(s) / SCALE, s * sinf(s) / SCALE]
}

#[cfg(test)]
mod tests {
    //! Each set against FFJORD's definition, written again here in f64 from
    //! `lib/toy_data.py`, and against the properties that definition implies.

    use std::f64::consts::{FRAC_1_SQRT_2, PI, TAU};

    use rand_core::{Rng, SeedableRng};
    use tinyddpm_core::noise::{box_muller, stream_seed};

    use super::*;
    use crate::data::true_samples;

    const N: usize = 40_000;

    fn stream(i: u64) -> Xoshiro128PlusPlus {
        Xoshiro128PlusPlus::from_seed(stream_seed(0x5e75, i))
    }

    fn f(p: [f32; 2]) -> [f64; 2] {
        [f64::from(p[0]), f64::from(p[1])]
    }

    /// FFJORD's formulas in f64 on the same draws: u from 24 bits, k by multiply-shift, the
    /// core's Gaussians promoted.
    fn reference(set: DataSet, rng: &mut Xoshiro128PlusPlus) -> [f64; 2] {
        let mut draw = Vec::new();
        for _ in 0..set.draws() {
            draw.push(rng.next_u32());
        }
        let uni = |d: u32| f64::from(d >> 8) / 16_777_216.0;
        let k = |d: u32, n: u64| ((u64::from(d) * n) >> 32) as usize;
        let z = |a: u32, b: u32| f(box_muller(a >> 8, b >> 8));
        match set {
            DataSet::SwissRoll => {
                let s = 1.5 * PI * (1.0 + 2.0 * uni(draw[0]));
                [s * s.cos() / 15.0, s * s.sin() / 15.0]
            }
            DataSet::Circles => {
                let r = [1.0, 0.5][k(draw[0], 2)];
                let a = TAU * uni(draw[1]);
                let z = z(draw[2], draw[3]);
                [
                    3.0 * (r * a.cos() + 0.08 * z[0]),
                    3.0 * (r * a.sin() + 0.08 * z[1]),
                ]
            }
            DataSet::Rings => {
                let r = [1.0, 0.75, 0.5, 0.25][k(draw[0], 4)];
                let a = TAU * uni(draw[1]);
                let z = z(draw[2], draw[3]);
                [
                    3.0 * r * a.cos() + 0.08 * z[0],
                    3.0 * r * a.sin() + 0.08 * z[1],
                ]
            }
            DataSet::Moons => {
                let a = PI * uni(draw[1]);
                let m = match k(draw[0], 2) {
                    0 => [a.cos(), a.sin()],
                    _ => [1.0 - a.cos(), 1.0 - a.sin() - 0.5],
                };
                let z = z(draw[2], draw[3]);
                [
                    2.0 * (m[0] + 0.1 * z[0]) - 1.0,
                    2.0 * (m[1] + 0.1 * z[1]) - 0.2,
                ]
            }
            DataSet::EightGaussians => {
                let h = FRAC_1_SQRT_2;
                let centers = [
                    [1.0, 0.0],
                    [-1.0, 0.0],
                    [0.0, 1.0],
                    [0.0, -1.0],
                    [h, h],
                    [h, -h],
                    [-h, h],
                    [-h, -h],
                ];
                let z = z(draw[0], draw[1]);
                let c = centers[k(draw[2], 8)];
                [
                    (4.0 * c[0] + 0.5 * z[0]) / 1.414,
                    (4.0 * c[1] + 0.5 * z[1]) / 1.414,
                ]
            }
            DataSet::Pinwheel => {
                let z = z(draw[0], draw[1]);
                let label = k(draw[2], 5) as f64;
                let (f0, f1) = (0.3 * z[0] + 1.0, 0.1 * z[1]);
                let a = TAU * label / 5.0 + 0.25 * f0.exp();
                // einsum("ti,tij->tj") with rotations [[cos, −sin], [sin, cos]]
                let rot = [[a.cos(), -a.sin()], [a.sin(), a.cos()]];
                [
                    2.0 * (f0 * rot[0][0] + f1 * rot[1][0]),
                    2.0 * (f0 * rot[0][1] + f1 * rot[1][1]),
                ]
            }
            DataSet::TwoSpirals => {
                let n = uni(draw[0]).sqrt() * 540.0 * TAU / 360.0;
                let d = [
                    -n.cos() * n + uni(draw[1]) * 0.5,
                    n.sin() * n + uni(draw[2]) * 0.5,
                ];
                let sign = [1.0, -1.0][k(draw[3], 2)];
                let z = z(draw[4], draw[5]);
                [
                    sign * d[0] / 3.0 + 0.1 * z[0],
                    sign * d[1] / 3.0 + 0.1 * z[1],
                ]
            }
            DataSet::Checkerboard => {
                let x1 = uni(draw[0]) * 4.0 - 2.0;
                let x2 = uni(draw[1]) - k(draw[2], 2) as f64 * 2.0 + x1.floor().rem_euclid(2.0);
                [x1 * 2.0, x2 * 2.0]
            }
            DataSet::Line => {
                let x = uni(draw[0]) * 5.0 - 2.5;
                [x, x]
            }
            DataSet::Cos => {
                let x = uni(draw[0]) * 5.0 - 2.5;
                [x, x.sin() * 2.5]
            }
        }
    }

    #[test]
    fn every_point_is_ffjords_formula_on_its_draws() {
        for set in DataSet::ALL {
            for i in 0..5_000 {
                let got = f(set.point(&mut stream(i)));
                let want = reference(set, &mut stream(i));
                for c in 0..2 {
                    // f32 rounding of the angles (up to 3π): a few 1e-6 at most
                    let err = (got[c] - want[c]).abs();
                    assert!(err < 2e-5, "{set} point {i}: {got:?}, f64 {want:?}");
                }
            }
        }
    }

    #[test]
    fn each_point_takes_its_stated_draws() {
        for set in DataSet::ALL {
            let (mut rng, mut skipped) = (stream(3), stream(3));
            set.point(&mut rng);
            for _ in 0..set.draws() {
                skipped.next_u32();
            }
            assert_eq!(rng.next_u32(), skipped.next_u32(), "{set}");
        }
    }

    #[test]
    fn every_point_is_finite_and_inside_the_stated_extent() {
        for set in DataSet::ALL {
            let e = set.extent();
            for p in true_samples(set, 100_000, 1) {
                assert!(
                    p.iter().all(|v| v.is_finite() && v.abs() <= e),
                    "{set}: {p:?}"
                );
            }
        }
    }

    #[test]
    fn names_and_ids_round_trip_and_an_unknown_name_lists_the_known() {
        for (i, set) in DataSet::ALL.into_iter().enumerate() {
            assert_eq!(set.id() as usize, i);
            assert_eq!(DataSet::from_id(set.id()), Some(set));
            assert_eq!(set.name().parse::<DataSet>(), Ok(set));
            assert_eq!(set.to_string(), set.name());
        }
        assert_eq!(DataSet::from_id(10), None);
        assert_eq!(DataSet::default(), DataSet::SwissRoll);
        let e = "foo".parse::<DataSet>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown data set 'foo' (known: swissroll, circles, rings, moons, 8gaussians, \
             pinwheel, 2spirals, checkerboard, line, cos)"
        );
    }

    /// Mean and standard deviation.
    fn moments(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    fn points(set: DataSet) -> Vec<[f64; 2]> {
        true_samples(set, N, 7).into_iter().map(f).collect()
    }

    #[test]
    fn eight_gaussians_have_ffjords_means_and_spread() {
        let angle = |k: usize| {
            let a = [0.0, 4.0, 2.0, -2.0, 1.0, -1.0, 3.0, -3.0][k];
            a * PI / 4.0
        };
        let centre = |k: usize| [4.0 * angle(k).cos() / 1.414, 4.0 * angle(k).sin() / 1.414];
        let mut groups = vec![Vec::new(); 8];
        for p in points(DataSet::EightGaussians) {
            let d = |k: usize| (p[0] - centre(k)[0]).hypot(p[1] - centre(k)[1]);
            let k = (0..8).min_by(|&a, &b| d(a).total_cmp(&d(b))).unwrap();
            groups[k].push(p);
        }
        for (k, near) in groups.iter().enumerate() {
            let share = near.len() as f64 / N as f64;
            assert!((share - 0.125).abs() < 0.01, "component {k}: {share}");
            for c in 0..2 {
                let (mean, sd) = moments(&near.iter().map(|p| p[c]).collect::<Vec<_>>());
                assert!(
                    (mean - centre(k)[c]).abs() < 0.02,
                    "component {k}: mean {mean}"
                );
                assert!(
                    (sd / (0.5 / 1.414) - 1.0).abs() < 0.04,
                    "component {k}: sd {sd}"
                );
            }
        }
    }

    #[test]
    fn moons_are_two_noisy_half_circles() {
        // Undo FFJORD's ·2 + (−1, −0.2): sklearn's moons, the upper half of the unit circle
        // at the origin and the lower half of the unit circle at (1, 0.5), noise 0.1.
        let q: Vec<[f64; 2]> = points(DataSet::Moons)
            .iter()
            .map(|p| [(p[0] + 1.0) / 2.0, (p[1] + 0.2) / 2.0])
            .collect();
        // distance to the half circle of centre c on the side `up` of it
        let arc = |p: &[f64; 2], c: [f64; 2], up: bool| {
            let (x, y) = (p[0] - c[0], p[1] - c[1]);
            if (y >= 0.0) == up {
                (x.hypot(y) - 1.0).abs()
            } else {
                (x.abs() - 1.0).hypot(y)
            }
        };
        let (mut upper, mut sq) = (0usize, 0.0);
        for p in &q {
            let (du, dl) = (arc(p, [0.0, 0.0], true), arc(p, [1.0, 0.5], false));
            upper += usize::from(du < dl);
            sq += du.min(dl).powi(2);
        }
        let share = upper as f64 / q.len() as f64;
        assert!((share - 0.5).abs() < 0.01, "{share}");
        // the noise's component across the curve: σ = 0.1, a little less where the two
        // moons' noise clouds meet
        let rms = (sq / q.len() as f64).sqrt();
        assert!((0.08..0.102).contains(&rms), "{rms}");
        let (mx, _) = moments(&q.iter().map(|p| p[0]).collect::<Vec<_>>());
        let (my, _) = moments(&q.iter().map(|p| p[1]).collect::<Vec<_>>());
        // E[x] = (E cos θ + 1 − E cos θ)/2 = 0.5; E[y] = (2/π + 0.5 − 2/π)/2 = 0.25
        assert!(
            (mx - 0.5).abs() < 0.01 && (my - 0.25).abs() < 0.01,
            "{mx} {my}"
        );
    }

    /// Points grouped by the nearest of `radii`: each group's share and mean radius.
    fn rings(set: DataSet, radii: &[f64]) -> Vec<(f64, f64)> {
        let pts = points(set);
        let mut groups = vec![Vec::new(); radii.len()];
        for p in &pts {
            let r = p[0].hypot(p[1]);
            let k = (0..radii.len())
                .min_by(|&a, &b| (r - radii[a]).abs().total_cmp(&(r - radii[b]).abs()))
                .unwrap();
            groups[k].push(r);
        }
        groups
            .iter()
            .map(|g| (g.len() as f64 / pts.len() as f64, moments(g).0))
            .collect()
    }

    #[test]
    fn circles_have_radii_three_and_half_that() {
        let g = rings(DataSet::Circles, &[3.0, 1.5]);
        for (k, &(share, r)) in g.iter().enumerate() {
            assert!((share - 0.5).abs() < 0.01, "circle {k}: {share}");
            // noise σ = 0.24 pushes the mean radius out by about σ²/2r
            assert!((r - [3.0, 1.5][k]).abs() < 0.04, "circle {k}: {r}");
        }
        let ratio = g[1].1 / g[0].1;
        assert!((ratio - 0.5).abs() < 0.01, "{ratio}");
    }

    #[test]
    fn rings_have_ffjords_four_radii() {
        let radii = [3.0, 2.25, 1.5, 0.75];
        for (k, &(share, r)) in rings(DataSet::Rings, &radii).iter().enumerate() {
            assert!((share - 0.25).abs() < 0.01, "ring {k}: {share}");
            assert!((r - radii[k]).abs() < 0.02, "ring {k}: {r}");
        }
    }

    #[test]
    fn checkerboard_fills_only_and_evenly_the_black_squares() {
        let mut counts = std::collections::BTreeMap::new();
        for p in points(DataSet::Checkerboard) {
            let (col, row) = ((p[0] / 2.0).floor(), (p[1] / 2.0).floor());
            // f32 may round a point onto its square's closing edge (y/2 an integer)
            let on_edge = p[1] / 2.0 == row;
            let black = (col + row).rem_euclid(2.0) == 0.0;
            assert!(black || on_edge, "{p:?}");
            if black {
                *counts.entry((col as i32, row as i32)).or_insert(0usize) += 1;
            }
        }
        assert_eq!(counts.len(), 8, "{counts:?}");
        for (square, &c) in &counts {
            let share = c as f64 / N as f64;
            assert!((share - 0.125).abs() < 0.01, "{square:?}: {share}");
        }
    }

    #[test]
    fn line_is_y_equals_x_and_cos_is_two_and_a_half_sin_x() {
        for p in points(DataSet::Line) {
            assert!(p[0] == p[1] && (-2.5..2.5).contains(&p[0]), "{p:?}");
        }
        let cos = points(DataSet::Cos);
        for p in &cos {
            assert!((p[1] - 2.5 * p[0].sin()).abs() < 1e-6, "{p:?}");
        }
        let (mean, sd) = moments(&cos.iter().map(|p| p[0]).collect::<Vec<_>>());
        // U(−2.5, 2.5): mean 0, sd 5/√12
        assert!(mean.abs() < 0.03 && (sd - 5.0 / 12f64.sqrt()).abs() < 0.02);
    }

    #[test]
    fn pinwheel_has_five_arms_winding_as_ffjord_writes() {
        // A point is about 2·f₀·(cos a, −sin a), radius ρ ≈ 2f₀: its polar angle φ ≈ −a with
        // a = 2πk/5 + 0.25·exp(ρ/2), so −φ − 0.25·exp(ρ/2) lies near a multiple of 2π/5.
        let mut arms = [0usize; 5];
        let mut far = 0;
        for p in points(DataSet::Pinwheel) {
            let rho = p[0].hypot(p[1]);
            let turn = (-p[1].atan2(p[0]) - 0.25 * (rho / 2.0).exp()).rem_euclid(TAU);
            let k = (turn / (TAU / 5.0)).round();
            // f₁ and ρ ≠ 2f₀ move it off by tenths of a radian; arms are 1.26 apart, so
            // points of a wrong formula would be off by up to 0.63, 0.4 or more a third of them
            if (turn - k * TAU / 5.0).abs() > 0.4 {
                far += 1;
            }
            arms[k as usize % 5] += 1;
        }
        assert!(far < N / 80, "{far} points off every arm");
        for (k, &c) in arms.iter().enumerate() {
            let share = c as f64 / N as f64;
            assert!((share - 0.2).abs() < 0.01, "arm {k}: {share}");
        }
    }

    #[test]
    fn two_spirals_are_point_symmetric_and_on_ffjords_curve() {
        let pts = points(DataSet::TwoSpirals);
        // symmetric under p → −p: a histogram and its mirror image agree
        let bin = |v: f64| ((v + 4.0) / 0.5).floor() as usize;
        let mut hist = vec![[0f64; 16]; 16];
        for p in &pts {
            hist[bin(p[0])][bin(p[1])] += 1.0;
        }
        let diff: f64 = (0..16)
            .flat_map(|i| (0..16).map(move |j| (i, j)))
            .map(|(i, j)| (hist[i][j] - hist[15 - i][15 - j]).abs())
            .sum();
        assert!(diff / (N as f64) < 0.06, "{diff}");
        // near the curve ±(−n cos n + 0.25, n sin n + 0.25)/3, n ∈ [0, 3π]
        let curve: Vec<[f64; 2]> = (0..=3000)
            .map(|i| 3.0 * PI * f64::from(i) / 3000.0)
            .flat_map(|n| {
                let c = [(-n.cos() * n + 0.25) / 3.0, (n.sin() * n + 0.25) / 3.0];
                [c, [-c[0], -c[1]]]
            })
            .collect();
        let mut sq = 0.0;
        for p in pts.iter().take(5_000) {
            let d = curve
                .iter()
                .map(|c| (p[0] - c[0]).hypot(p[1] - c[1]))
                .fold(f64::INFINITY, f64::min);
            sq += d * d;
        }
        // noise 0.1 and the uniform offsets (±1/12): about 0.1 from the curve
        let rms = (sq / 5_000.0).sqrt();
        assert!(rms < 0.13, "{rms}");
    }
}
