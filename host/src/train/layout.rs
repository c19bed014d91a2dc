//! The trainer's flat parameter vector: every weight and bias of a `Model<H, B>` in the
//! core's file order ([`Model::for_each_param`], PyTorch `state_dict` order), so Adam runs
//! over one slice and the model converts in and out with a single zip.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use tinyddpm_core::Model;
use tinyddpm_core::noise::stream_seed;

use crate::data::Domain;

/// Where one `Linear` layer lives in the flat vector: weight `[o × i]` (PyTorch layout,
/// row-major) at `w`, bias `[o]` at `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dense {
    /// Input features.
    pub i: usize,
    /// Output features.
    pub o: usize,
    /// Offset of the weight.
    pub w: usize,
    /// Offset of the bias.
    pub b: usize,
}

impl Dense {
    /// The layer `i → o` placed at `offset`; returns it and the offset after it.
    fn at(offset: usize, i: usize, o: usize) -> (Self, usize) {
        let layer = Self {
            i,
            o,
            w: offset,
            b: offset + i * o,
        };
        (layer, offset + i * o + o)
    }

    /// The weight, `[o × i]` row-major.
    pub fn weight<'a>(&self, p: &'a [f32]) -> &'a [f32] {
        &p[self.w..self.w + self.i * self.o]
    }

    /// The bias, `[o]`.
    pub fn bias<'a>(&self, p: &'a [f32]) -> &'a [f32] {
        &p[self.b..self.b + self.o]
    }
}

/// Offsets of every layer of a model with `hidden` units and `blocks` residual blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Hidden width H.
    pub hidden: usize,
    /// `time_embed.embed.0`: 1 → H.
    pub time_in: Dense,
    /// `time_embed.embed.2`: H → H.
    pub time_out: Dense,
    /// `input_layer.0`: 2 → H.
    pub input: Dense,
    /// `hidden_layers.k.{0,2}`: H → H twice per block.
    pub blocks: Vec<[Dense; 2]>,
    /// `output_layer`: H → 2.
    pub output: Dense,
    /// Total number of parameters.
    pub len: usize,
}

impl Layout {
    /// The layout of `Model<H, B>`.
    pub fn of<const H: usize, const B: usize>() -> Self {
        let (time_in, at) = Dense::at(0, 1, H);
        let (time_out, at) = Dense::at(at, H, H);
        let (input, mut at) = Dense::at(at, 2, H);
        let blocks = (0..B)
            .map(|_| {
                let (first, next) = Dense::at(at, H, H);
                let (second, next) = Dense::at(next, H, H);
                at = next;
                [first, second]
            })
            .collect();
        let (output, len) = Dense::at(at, H, 2);
        debug_assert_eq!(len, Model::<H, B>::PARAMS);
        Self {
            hidden: H,
            time_in,
            time_out,
            input,
            blocks,
            output,
            len,
        }
    }

    /// Every layer in file order.
    fn layers(&self) -> impl Iterator<Item = Dense> + '_ {
        [self.time_in, self.time_out, self.input]
            .into_iter()
            .chain(self.blocks.iter().flatten().copied())
            .chain([self.output])
    }

    /// PyTorch's default `nn.Linear` initialisation, drawn from `seed`: weights and biases
    /// uniform in ±1/√fan_in (`kaiming_uniform_(a=√5)` reduces to exactly that bound).
    pub fn init(&self, seed: u64) -> Vec<f32> {
        let mut p = vec![0.0f32; self.len];
        let mut rng = Xoshiro128PlusPlus::from_seed(stream_seed(Domain::Init.key(seed), 0));
        for layer in self.layers() {
            let bound = 1.0 / (layer.i as f32).sqrt();
            for v in &mut p[layer.w..layer.b + layer.o] {
                let u = (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0);
                *v = bound * (2.0 * u - 1.0);
            }
        }
        p
    }
}

/// The model whose parameters, in file order, are `p` (`p.len() == Model::<H, B>::PARAMS`).
pub(crate) fn model_of<const H: usize, const B: usize>(p: &[f32]) -> Box<Model<H, B>> {
    let mut model = Box::new(Model::<H, B>::ZERO);
    let mut values = p.iter();
    model.for_each_param_mut(|w| *w = *values.next().expect("layout matches the model"));
    model
}

/// The parameters of `model` in file order: the flat vector every trainer, checkpoint and
/// device buffer holds.
pub fn params_of<const H: usize, const B: usize>(model: &Model<H, B>) -> Vec<f32> {
    let mut p = Vec::with_capacity(Model::<H, B>::PARAMS);
    model.for_each_param(|w| p.push(w));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_file_order_and_counts_every_parameter() {
        let lay = Layout::of::<128, 3>();
        assert_eq!(lay.len, 116_482);
        let mut model = Box::new(Model::<8, 2>::ZERO);
        model.blocks[1].second.weight[3][5] = 1.0;
        model.output.bias[1] = 2.0;
        model.time_in.weight[4][0] = 3.0;
        let p = params_of(&model);
        let lay = Layout::of::<8, 2>();
        assert_eq!(p[lay.blocks[1][1].w + 3 * 8 + 5], 1.0);
        assert_eq!(p[lay.output.b + 1], 2.0);
        assert_eq!(p[lay.time_in.w + 4], 3.0);
        assert_eq!(*model_of::<8, 2>(&p), *model);
    }

    #[test]
    fn init_is_bounded_by_fan_in_and_seeded() {
        let lay = Layout::of::<128, 3>();
        let p = lay.init(1);
        assert_eq!(p, lay.init(1));
        assert_ne!(p, lay.init(2));
        let bound = |d: Dense, slice: &[f32]| {
            let max = slice.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(max <= 1.0 / (d.i as f32).sqrt() && max > 0.9 / (d.i as f32).sqrt());
        };
        for d in [lay.time_in, lay.input, lay.blocks[2][0], lay.output] {
            bound(d, d.weight(&p));
        }
        // the output layer's two biases are too few to come near their bound reliably
        for d in [lay.time_in, lay.input, lay.blocks[2][0]] {
            bound(d, d.bias(&p));
        }
    }
}
