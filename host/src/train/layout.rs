//! The trainer's flat parameter vector: every weight and bias of a model of any H, B and D
//! in the core's file order ([`Model::for_each_param`], PyTorch `state_dict` order), so Adam runs
//! over one slice and the model converts in and out with a single zip.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use tinyddpm_core::noise::stream_seed;
use tinyddpm_core::{Layer, Model};

use crate::data::Domain;

pub(crate) use tinyddpm_core::Dense;

/// The core's [`tinyddpm_core::Layout`] of a model, its layers by name for the trainers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Hidden width H.
    pub hidden: usize,
    /// `time_embed.embed.0`: 1 → H.
    pub time_in: Dense,
    /// `time_embed.embed.2`: H → H.
    pub time_out: Dense,
    /// `input_layer.0`: D → H.
    pub input: Dense,
    /// `hidden_layers.k.{0,2}`: H → H twice per block.
    pub blocks: Vec<[Dense; 2]>,
    /// `output_layer`: H → D.
    pub output: Dense,
    /// Total number of parameters.
    pub len: usize,
    /// The core's layout these layers are read from.
    pub core: tinyddpm_core::Layout,
}

impl Layout {
    /// The layout of `Model<H, B>` (on 2-D points).
    pub fn of<const H: usize, const B: usize>() -> Self {
        Self::new(tinyddpm_core::Layout::of::<H, B>())
    }

    /// The layers of the core's `core`, any shape.
    pub fn new(core: tinyddpm_core::Layout) -> Self {
        let at = |layer| core.dense(layer);
        Self {
            hidden: core.hidden,
            time_in: at(Layer::TimeIn),
            time_out: at(Layer::TimeOut),
            input: at(Layer::Input),
            blocks: (0..core.blocks)
                .map(|k| [at(Layer::BlockFirst(k)), at(Layer::BlockSecond(k))])
                .collect(),
            output: at(Layer::Output),
            len: core.len(),
            core,
        }
    }

    /// D, the coordinates of a point.
    pub fn dim(&self) -> usize {
        self.core.dim
    }

    /// PyTorch's default `nn.Linear` initialisation, drawn from `seed`: weights and biases
    /// uniform in ±1/√fan_in (`kaiming_uniform_(a=√5)` reduces to exactly that bound).
    pub fn init(&self, seed: u64) -> Vec<f32> {
        let mut p = vec![0.0f32; self.len];
        let mut rng = Xoshiro128PlusPlus::from_seed(stream_seed(Domain::Init.key(seed), 0));
        for layer in self.core.iter() {
            let bound = 1.0 / (layer.i as f32).sqrt();
            for v in &mut p[layer.w..layer.end()] {
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
