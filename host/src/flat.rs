//! A float model of any shape: its parameters in file order and the core's [`Layout`] of
//! them, the shape read from a model file at run time instead of named at compile time.
//!
//! The host's fast paths (the SIMD sampler's packed layers, the trainer) read their tensors
//! from here, and the time embedding shared by a step's samples is the core's own code
//! ([`time_embedding_in`]) on these tensors, so a shape this build never named runs with the
//! core's bits. The core's const-generic [`Model`] stays the interface of `no_std` users and
//! the reference every fast path is tested against: [`FlatModel::of`] and
//! [`FlatModel::to_model`] convert both ways, parameter for parameter.

use tinyddpm_core::condition::{add_class, class_row};
use tinyddpm_core::file::{self, FileError, Header};
use tinyddpm_core::model::{predict_noise_in, time_embedding_in};
use tinyddpm_core::{Layer, Layout, Model, Tap, TensorName};

/// A float model's parameters in file order, with their layout.
#[derive(Clone, Debug, PartialEq)]
pub struct FlatModel {
    layout: Layout,
    params: Vec<f32>,
}

impl FlatModel {
    /// The model of `layout` whose parameters, in file order, are `params`; `None` unless
    /// it holds exactly the layout's count.
    pub fn new(layout: Layout, params: Vec<f32>) -> Option<Self> {
        (params.len() == layout.len()).then_some(Self { layout, params })
    }

    /// Every parameter zero: a network that predicts no noise.
    pub fn zero(layout: Layout) -> Self {
        let params = vec![0.0; layout.len()];
        Self { layout, params }
    }

    /// `model`'s parameters, in file order.
    pub fn of<const H: usize, const B: usize, const D: usize>(model: &Model<H, B, D>) -> Self {
        let mut params = Vec::with_capacity(Model::<H, B, D>::PARAMS);
        model.for_each_param(|w| params.push(w));
        Self {
            layout: Layout::of_dim::<H, B, D>(),
            params,
        }
    }

    /// The const-generic model these parameters make, if it has this shape.
    pub fn to_model<const H: usize, const B: usize, const D: usize>(
        &self,
    ) -> Option<Box<Model<H, B, D>>> {
        if self.layout != Layout::of_dim::<H, B, D>() {
            return None;
        }
        let mut model = Box::new(Model::<H, B, D>::ZERO);
        let mut values = self.params.iter();
        model.for_each_param_mut(|w| {
            if let Some(&v) = values.next() {
                *w = v;
            }
        });
        Some(model)
    }

    /// The float model a model file holds, of the shape its header names.
    pub fn decode(bytes: &[u8]) -> Result<Self, FileError> {
        let contents = file::open(bytes)?;
        // The decoder has judged the header: its shape counts.
        let layout = contents.layout()?;
        let params: Vec<f32> = contents.float_params()?.collect();
        Ok(Self { layout, params })
    }

    /// The model file of this model with `header` (which must describe its shape).
    pub fn encode(&self, header: &Header) -> Result<Vec<u8>, FileError> {
        let mut out = vec![0; file::encoded_len(tinyddpm_core::Kind::Float, header)?];
        let len = file::encode_params(header, &self.params, &mut out)?;
        out.truncate(len);
        Ok(out)
    }

    /// The layout: H, B, D and where each tensor lies.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// D: coordinates of a point.
    pub fn dim(&self) -> usize {
        self.layout.dim
    }

    /// H: hidden units.
    pub fn hidden(&self) -> usize {
        self.layout.hidden
    }

    /// Every parameter, in file order.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// C: the classes the model is conditioned on (0: unconditional).
    pub fn classes(&self) -> usize {
        self.layout.classes
    }

    /// Row `class` of the class embedding E (`None`: row C, ∅): what the core's
    /// [`add_class`] adds to each step's time embedding for that class. An unconditional
    /// model has one row, empty, for `None` alone; a class of C or more has none.
    pub fn class_row(&self, class: Option<u16>) -> Option<&[f32]> {
        match self.layout.class_embedding() {
            Some(rows) => class_row(&self.params[rows], self.hidden(), class),
            None => class.is_none().then_some(&[]),
        }
    }

    /// The network without its class embedding: what a const-generic `Model` of its shape
    /// holds ([`FlatModel::to_model`]); the embedding's rows are [`FlatModel::class_row`]'s.
    pub fn network(&self) -> FlatModel {
        let layout = self
            .layout
            .with_classes(0)
            .expect("fewer parameters than the model's");
        Self {
            params: self.params[..layout.len()].to_vec(),
            layout,
        }
    }

    /// [`FlatModel::time_embedding`] plus `row` ([`FlatModel::class_row`]): the time
    /// embedding of a step for one class.
    pub fn class_time_embedding(&self, t_input: f32, row: &[f32], temb: &mut [f32]) {
        self.time_embedding(t_input, temb);
        add_class(temb, row);
    }

    /// Layer `layer`'s weight (`[out][in]` row-major) and bias (a block index below B).
    pub fn tensors(&self, layer: Layer) -> (&[f32], &[f32]) {
        let d = self.layout.dense(layer);
        (&self.params[d.w..d.b], &self.params[d.b..d.b + d.o])
    }

    /// Every tensor with its PyTorch `state_dict` name and shape, in file order
    /// ([`Layout::for_each_tensor`]): what [`Model::for_each_tensor`] shows of the same model.
    pub fn for_each_tensor(&self, mut f: impl FnMut(TensorName, &[usize], &[f32])) {
        self.layout
            .for_each_tensor(|name, shape, at| f(name, shape, &self.params[at]));
    }

    /// [`FlatModel::for_each_tensor`], mutably.
    pub fn for_each_tensor_mut(&mut self, mut f: impl FnMut(TensorName, &[usize], &mut [f32])) {
        let params = &mut self.params;
        self.layout
            .for_each_tensor(|name, shape, at| f(name, shape, &mut params[at]));
    }

    /// The time embedding for network input `t_input` into `temb` (H long): the core's
    /// [`time_embedding_in`], so the same bits as `Model::time_embedding`.
    pub fn time_embedding(&self, t_input: f32, temb: &mut [f32]) {
        self.time_embedding_observed(t_input, temb, |_, _| ());
    }

    /// [`FlatModel::time_embedding`], showing `tap` each intermediate tensor.
    pub fn time_embedding_observed(
        &self,
        t_input: f32,
        temb: &mut [f32],
        tap: impl FnMut(Tap, &[f32]),
    ) {
        let mut hidden = vec![0.0; self.hidden()];
        time_embedding_in(
            self.tensors(Layer::TimeIn),
            self.tensors(Layer::TimeOut),
            t_input,
            (&mut hidden, temb),
            tap,
        );
    }

    /// The predicted noise ε̂ of one point `x` (D long) into `out` (D long), given its step's
    /// time embedding, showing `tap` each intermediate tensor: the core's
    /// [`predict_noise_in`], so the same bits as `Model::predict_noise_observed`.
    pub fn predict_noise_observed(
        &self,
        (x, temb): (&[f32], &[f32]),
        out: &mut [f32],
        tap: impl FnMut(Tap, &[f32]),
    ) {
        let h = self.hidden();
        let (mut a, mut b, mut c) = (vec![0.0; h], vec![0.0; h], vec![0.0; h]);
        let blocks = (0..self.layout.blocks)
            .map(|i| [Layer::BlockFirst(i), Layer::BlockSecond(i)].map(|l| self.tensors(l)));
        predict_noise_in(
            self.tensors(Layer::Input),
            blocks,
            self.tensors(Layer::Output),
            (x, temb),
            (&mut a, &mut b, &mut c),
            out,
            tap,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyddpm_core::file::{Data, Source};
    use tinyddpm_core::{Sampler, ScheduleKind};

    /// A model of shape (H, B, D) with every parameter distinct.
    fn model<const H: usize, const B: usize, const D: usize>() -> Box<Model<H, B, D>> {
        let mut m = Box::new(Model::<H, B, D>::ZERO);
        let mut n = 0u32;
        m.for_each_param_mut(|w| {
            n += 1;
            *w = (n as f32 * 0.618_034).fract() - 0.5;
        });
        m
    }

    #[test]
    fn converts_both_ways_and_names_the_core_models_tensors() {
        let m = model::<8, 2, 3>();
        let flat = FlatModel::of(&*m);
        assert_eq!(flat.to_model::<8, 2, 3>().as_deref(), Some(&*m));
        assert!(flat.to_model::<8, 2, 2>().is_none());
        let lay = flat.layout();
        for n in 0..lay.layers() {
            let layer = lay.layer(n);
            assert_eq!(flat.tensors(layer), m.tensors(layer), "{layer:?}");
        }
    }

    #[test]
    fn tensors_are_the_core_models_by_name_shape_and_value() {
        let m = model::<8, 2, 3>();
        let mut want = Vec::new();
        m.for_each_tensor(|name, shape, data| {
            want.push((name.to_string(), shape.to_vec(), data.to_vec()))
        });
        let mut flat = FlatModel::zero(Layout::of_dim::<8, 2, 3>());
        let mut values = want.iter();
        flat.for_each_tensor_mut(|name, shape, data| {
            let (n, s, d) = values.next().expect("as many tensors");
            assert_eq!((&name.to_string(), &shape.to_vec()), (n, s));
            data.copy_from_slice(d);
        });
        assert_eq!(flat, FlatModel::of(&*m));
        let mut got = Vec::new();
        flat.for_each_tensor(|name, shape, data| {
            got.push((name.to_string(), shape.to_vec(), data.to_vec()))
        });
        assert_eq!(got, want);
        assert_eq!(got[4].0, "input_layer.0.weight");
        assert_eq!(got[4].1, [8, 3]);
    }

    #[test]
    fn time_embedding_is_the_cores() {
        let m = model::<16, 1, 5>();
        let flat = FlatModel::of(&*m);
        let mut temb = [0.0f32; 16];
        for t in [0.0, 0.37, 0.999] {
            flat.time_embedding(t, &mut temb);
            assert_eq!(
                temb.map(f32::to_bits),
                m.time_embedding(t).map(f32::to_bits)
            );
        }
    }

    /// Every tensor of the forward pass, as the typed model shows it (a block taken from the
    /// wrong layers or in the wrong order would differ).
    fn forward_pass_is_the_cores<const H: usize, const B: usize, const D: usize>() {
        let m = model::<H, B, D>();
        let flat = FlatModel::of(&*m);
        let mut out = [0.0f32; D];
        for (t, x0) in [(0.0, 0.3), (0.37, -1.1), (0.999, 2.0)] {
            let x: [f32; D] = core::array::from_fn(|c| x0 + c as f32 * 0.25);
            let temb = m.time_embedding(t);
            let mut want = Vec::new();
            let eps = m.predict_noise_observed(x, &temb, |tap, v| want.push((tap, v.to_vec())));
            let mut got = Vec::new();
            flat.predict_noise_observed((&x, &temb), &mut out, |tap, v| {
                got.push((tap, v.to_vec()))
            });
            assert_eq!(out.map(f32::to_bits), eps.map(f32::to_bits));
            assert_eq!(got, want);
        }
    }

    #[test]
    fn forward_passes_are_the_cores() {
        forward_pass_is_the_cores::<16, 1, 5>();
        forward_pass_is_the_cores::<8, 3, 2>();
        forward_pass_is_the_cores::<9, 2, 1>();
    }

    #[test]
    fn files_are_the_bytes_the_core_writes_for_the_model() {
        let m = model::<8, 2, 3>();
        let data = Data {
            dim: 3,
            source: Source::File,
            units: None,
        };
        let header = Header::new::<8, 2, 1000>(ScheduleKind::SEED, Sampler::Ddpm).with_data(data);
        let mut typed = vec![0; file::encoded_len(tinyddpm_core::Kind::Float, &header).unwrap()];
        let len = file::encode(&*m, &header, &mut typed).unwrap();
        typed.truncate(len);
        let flat = FlatModel::of(&*m);
        assert_eq!(flat.encode(&header).unwrap(), typed);
        assert_eq!(FlatModel::decode(&typed).unwrap(), flat);
        let other = Header::new::<8, 2, 1000>(ScheduleKind::SEED, Sampler::Ddpm);
        assert!(flat.encode(&other).is_err(), "a header of D = 2");
    }
}
