//! The data's units: the per-column affine map between the model's space and the data's.
//!
//! A model trained on normalized data (`x_model = (x_data − shift) / scale`, per column)
//! draws points in the model's space; [`Units::to_data`] maps each back,
//! `x_data = x_model·scale + shift`, as the last operation of every backend's sample. The
//! map is two IEEE operations per coordinate, each rounded (a product, then a sum; never
//! fused, as everywhere in the project), so the scalar core, the host, the GPU job and the
//! boards give the same bits. The identity map is never applied: a model without units
//! emits the reverse chain's bits unchanged (x·1 + 0 would turn −0 into +0).

/// The most data dimensions a model file may declare.
pub const MAX_DIM: usize = 16;

/// The names of a point's `D` columns, comma-separated, as every sample file and board print
/// them: `x,y` for the notebook's 2-D points, `x0,x1,…` for any other D.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnNames(pub usize);

impl core::fmt::Display for ColumnNames {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            2 => f.write_str("x,y"),
            dim => (0..dim).try_for_each(|c| {
                let sep = if c == 0 { "" } else { "," };
                write!(f, "{sep}x{c}")
            }),
        }
    }
}

/// The per-column affine map of a model's data; columns past the data's dimension hold the
/// identity (scale 1, shift 0), so one value has one encoding.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "file", derive(serde::Serialize, serde::Deserialize))]
pub struct Units {
    /// Per column: the data's spread (standard normalization: the standard deviation).
    pub scale: [f32; MAX_DIM],
    /// Per column: the data's centre (standard normalization: the mean).
    pub shift: [f32; MAX_DIM],
}

impl Units {
    /// The map of `scale.len()` columns, if there are at most [`MAX_DIM`], as many shifts
    /// as scales, and every value is usable: finite, the scales positive and normal (so
    /// `(x − shift)/scale` neither overflows on data nor divides by zero).
    pub fn new(scale: &[f32], shift: &[f32]) -> Option<Self> {
        if scale.len() != shift.len() || scale.len() > MAX_DIM {
            return None;
        }
        let mut units = Self {
            scale: [1.0; MAX_DIM],
            shift: [0.0; MAX_DIM],
        };
        units.scale[..scale.len()].copy_from_slice(scale);
        units.shift[..shift.len()].copy_from_slice(shift);
        units.is_valid(scale.len()).then_some(units)
    }

    /// Whether this is a usable map for `dim` columns: the first `dim` scales positive and
    /// normal, their shifts finite, every later column the identity.
    pub fn is_valid(&self, dim: usize) -> bool {
        dim <= MAX_DIM
            && self
                .scale
                .iter()
                .zip(&self.shift)
                .enumerate()
                .all(|(i, (&s, &m))| {
                    if i < dim {
                        s.is_normal() && s > 0.0 && m.is_finite()
                    } else {
                        s == 1.0 && m.to_bits() == 0
                    }
                })
    }

    /// A point of the model's space in data units: `x·scale + shift` per column, the
    /// product rounded before the sum.
    pub fn to_data<const D: usize>(&self, x: [f32; D]) -> [f32; D] {
        let mut out = x;
        self.to_data_in(&mut out);
        out
    }

    /// [`Units::to_data`] in place, for a D known at run time (`x.len()` columns).
    pub fn to_data_in(&self, x: &mut [f32]) {
        for ((o, &s), &m) in x.iter_mut().zip(&self.scale).zip(&self.shift) {
            *o = *o * s + m;
        }
    }

    /// A data point in the model's space: `(x − shift)/scale` per column (what the trainer
    /// feeds the network), the difference rounded before the division.
    pub fn to_model(&self, x: &mut [f32]) {
        for ((v, &s), &m) in x.iter_mut().zip(&self.scale).zip(&self.shift) {
            *v = (*v - m) / s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_usable_maps_are_built() {
        assert!(Units::new(&[2.0, 0.5], &[1.0, -3.0]).is_some());
        assert!(Units::new(&[2.0], &[1.0, 0.0]).is_none());
        assert!(Units::new(&[0.0], &[0.0]).is_none());
        assert!(Units::new(&[-1.0], &[0.0]).is_none());
        assert!(Units::new(&[1e-40], &[0.0]).is_none(), "subnormal scale");
        assert!(Units::new(&[1.0], &[f32::NAN]).is_none());
        assert!(Units::new(&[f32::INFINITY], &[0.0]).is_none());
        assert!(Units::new(&[1.0; 17], &[0.0; 17]).is_none());
        let mut u = Units::new(&[2.0], &[1.0]).unwrap();
        u.shift[3] = 1.0;
        assert!(!u.is_valid(1), "a column past D must be the identity");
        assert!(u.is_valid(4));
    }

    #[test]
    fn the_map_is_a_rounded_product_then_a_rounded_sum() {
        let u = Units::new(&[0.1, 3.0], &[0.7, -2.5]).unwrap();
        let x = [1.0f32 / 3.0, -0.2];
        // Each operation of f64 reference, rounded to f32 where f32 rounds it.
        let expect = |x: f32, s: f32, m: f32| (f64::from(x) * f64::from(s)) as f32 + m;
        assert_eq!(
            u.to_data(x),
            [expect(x[0], 0.1, 0.7), expect(x[1], 3.0, -2.5)]
        );
        let mut back = u.to_data(x);
        u.to_model(&mut back);
        for (b, x) in back.iter().zip(x) {
            assert!(
                (b - x).abs() <= 4.0 * f32::EPSILON * x.abs().max(1.0),
                "{b} {x}"
            );
        }
    }
}
