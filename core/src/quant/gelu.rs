//! GELU on integers: `max(x, 0) − c(|x|)` with `c(a) = a·Φ(−a)` from one shared 321-entry
//! table, linearly interpolated (the exact index computation and rounding are in the module
//! docs of [`quant`](super)).

/// `C[i] = round(c(i/64)·2^18)`, `c(a) = a·Φ(−a) = a·erfc(a/√2)/2`, for `a = i/64 ∈ [0, 5]`.
/// Past a = 5, `c < 1.5e-6` and is taken as 0 (the last entries already round to 0). The
/// values are checked against an f64 `erfc` in `core/tests/quant.rs`; `scripts/gelu_table.py`
/// makes them (and `--check` compares them with this array).
pub const GELU_TABLE: [u16; 321] = [
    0, 2022, 3994, 5914, 7784, 9602, 11370, 13087, 14754, 16371, 17937, 19454, 20921, 22339, 23707,
    25027, 26299, 27523, 28699, 29828, 30911, 31947, 32937, 33883, 34783, 35639, 36451, 37221,
    37947, 38632, 39275, 39878, 40441, 40964, 41448, 41894, 42303, 42676, 43012, 43313, 43579,
    43812, 44011, 44178, 44314, 44419, 44494, 44540, 44557, 44546, 44509, 44445, 44356, 44243,
    44105, 43945, 43762, 43558, 43333, 43088, 42824, 42541, 42241, 41924, 41591, 41242, 40878,
    40500, 40109, 39706, 39290, 38863, 38425, 37978, 37521, 37056, 36582, 36101, 35613, 35119,
    34619, 34114, 33605, 33091, 32575, 32055, 31532, 31008, 30482, 29954, 29427, 28899, 28371,
    27844, 27318, 26793, 26270, 25749, 25230, 24714, 24201, 23692, 23186, 22684, 22186, 21692,
    21203, 20719, 20240, 19766, 19297, 18834, 18377, 17926, 17480, 17041, 16608, 16181, 15761,
    15348, 14940, 14540, 14146, 13759, 13379, 13006, 12640, 12280, 11928, 11582, 11243, 10911,
    10586, 10268, 9957, 9653, 9355, 9064, 8779, 8502, 8231, 7966, 7708, 7456, 7210, 6971, 6738,
    6511, 6289, 6074, 5865, 5661, 5463, 5270, 5083, 4901, 4725, 4554, 4387, 4226, 4070, 3918, 3771,
    3628, 3490, 3357, 3228, 3102, 2981, 2864, 2751, 2642, 2536, 2434, 2335, 2240, 2148, 2059, 1974,
    1892, 1812, 1736, 1662, 1591, 1523, 1457, 1393, 1332, 1274, 1218, 1164, 1112, 1062, 1014, 968,
    923, 881, 840, 801, 764, 728, 694, 661, 630, 600, 571, 543, 517, 492, 468, 444, 422, 401, 381,
    362, 344, 327, 310, 294, 279, 265, 251, 238, 225, 213, 202, 191, 181, 172, 162, 154, 145, 137,
    130, 123, 116, 109, 103, 98, 92, 87, 82, 77, 73, 69, 65, 61, 58, 54, 51, 48, 45, 42, 40, 38,
    35, 33, 31, 29, 28, 26, 24, 23, 21, 20, 19, 18, 17, 15, 15, 14, 13, 12, 11, 10, 10, 9, 9, 8, 7,
    7, 7, 6, 6, 5, 5, 5, 4, 4, 4, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 0, 0, 0, 0,
];

/// Entries past the last interval's start read as 0.
const LAST: usize = GELU_TABLE.len() - 1;
/// The table's step is 2^−6.
const STEP_EXP: u8 = 6;
/// The table's values are in units of 2^−18.
const VALUE_EXP: u8 = 18;
/// Lowest pre-activation exponent: one table step must be a whole number of input units.
pub const MIN_PRE_EXP: u8 = STEP_EXP;
/// Highest pre-activation exponent: `C[i]·2^(p−6) < 2^31`.
pub const MAX_PRE_EXP: u8 = 21;
/// Largest output-minus-input exponent gap: the rounding shift `p + 12 − o` is at least 0.
pub const MAX_GAP: u8 = VALUE_EXP - STEP_EXP;
/// Where the table ends: for `|x| ≥ 5` the integer GELU is `max(x, 0)` exactly, so a
/// pre-activation saturating below −5 loses nothing.
pub const TABLE_END: f64 = (LAST >> STEP_EXP) as f64;

/// One GELU: pre-activation exponent `pre_exp`, output exponent `post_exp`, valid when
/// `6 ≤ pre_exp ≤ 21` and `pre_exp ≤ post_exp ≤ pre_exp + 12`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gelu {
    /// Exponent of the input: `u` stands for `u·2^−pre_exp`.
    pub pre_exp: u8,
    /// Exponent of the output.
    pub post_exp: u8,
}

impl Gelu {
    /// Whether the exponents are in range (else [`Gelu::apply`] clamps them).
    pub fn is_valid(self) -> bool {
        (MIN_PRE_EXP..=MAX_PRE_EXP).contains(&self.pre_exp)
            && (self.pre_exp..=self.pre_exp + MAX_GAP).contains(&self.post_exp)
    }

    /// The exponents clamped into range: `pre_exp` into 6..=21, then `post_exp` into
    /// `pre_exp..=pre_exp + 12` — what [`Gelu::apply`] uses (other implementations of the
    /// table, e.g. SIMD, derive their shifts from it).
    #[inline(always)]
    pub fn clamped(self) -> (u32, u32) {
        let p = self.pre_exp.clamp(MIN_PRE_EXP, MAX_PRE_EXP);
        let o = self.post_exp.clamp(p, p + MAX_GAP);
        (u32::from(p), u32::from(o))
    }

    /// GELU of `u` (value `u·2^−pre_exp`) as an activation of exponent `post_exp`.
    #[inline(always)]
    pub fn apply(self, u: i16) -> i16 {
        let (p, o) = self.clamped();
        let d = p - u32::from(STEP_EXP);
        let a = u.unsigned_abs() as usize;
        let i = a >> d;
        let c = if i < LAST {
            let f = (a - (i << d)) as u32;
            u32::from(GELU_TABLE[i]) * ((1 << d) - f) + u32::from(GELU_TABLE[i + 1]) * f
        } else {
            0
        };
        let r = p + u32::from(VALUE_EXP - STEP_EXP) - o;
        let c = (c + ((1u32 << r) >> 1)) >> r;
        let relu = i32::from(u.max(0)) << (o - p);
        super::requant::sat16(i64::from(relu - c as i32))
    }
}
