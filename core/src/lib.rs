//! `tinyddpm-core`: the arithmetic every tinyddpm backend reproduces bit for bit.
//!
//! What lives here: the time-embedded MLP with const-generic fixed-size weights
//! ([`model`]) and the one order of its parameters ([`layout`]), both networks — float and
//! integer — as one trait ([`network`]), its layers ([`linear`]), the GELU activation with the crate's own erf-free
//! approximation ([`gelu`]), the lane arithmetic every formula is generic over ([`real`],
//! [`lanes`]), the portable `ln`/`sin`/`cos` behind the Gaussian noise ([`math`], [`noise`]),
//! the noise schedule ([`schedule`]), the reverse-process samplers ([`sampler`], their step
//! placement in [`spacing`], the multistep solvers in [`multistep`], the user's choice of one in
//! [`choice`]), class conditioning and classifier-free guidance ([`condition`]), the step row every backend applies and its word encoding ([`step`]), the reverse chain and the pure sampling function ([`sample()`],
//! [`chain`]), the integer model with its exact arithmetic ([`quant`]), and — behind the
//! default feature `file` — the file container (`container`) and the model file in it
//! (`file`).
//!
//! What must not: `std`, an allocator, `unsafe`, fused multiply-add, or any platform maths
//! library whose last bit differs between machines. Every other crate of the project (host
//! SIMD sampler, CUDA kernels, firmware) must produce the same bits as the scalar code here.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anomaly;
pub mod choice;
pub mod condition;
#[cfg(feature = "file")]
pub mod container;
#[cfg(feature = "file")]
pub mod file;
pub mod gelu;
pub mod lanes;
pub mod layout;
pub mod linear;
pub mod math;
pub mod model;
pub mod multistep;
pub mod network;
pub mod noise;
pub mod quant;
pub mod real;
pub mod sample;
pub mod sampler;
pub mod schedule;
pub mod spacing;
pub mod step;
pub mod units;

pub use anomaly::{anomaly_score, anomaly_score_in};
pub use condition::{Conditioned, Evaluations, Guidance, Guided, sample_guided};
#[cfg(feature = "file")]
pub use container::ContainerError;
#[cfg(feature = "file")]
pub use file::{Data, FileError, Header, Source};
pub use lanes::Lanes;
pub use layout::{Dense, Layout};
pub use linear::Linear;
pub use model::{Block, Layer, Model, SeedModel, Tap, TensorName};
pub use multistep::{History, Solver};
pub use network::{Kind, Network};
pub use noise::NoiseStream;
pub use quant::{QLinear, QModel, QSeedModel, QuantError};
pub use real::Real;
pub use sample::{
    Fixed, PredictNoise, PredictNoiseIn, chain, chain_in, gaussian_draw, gaussian_draw_into,
    gaussian_lanes, sample, sample_from,
};
pub use sampler::{ChoiceError, Sampler, SamplerChoice, SamplerError, Spacing, Step, Update};
pub use schedule::{Schedule, ScheduleKind};
pub use units::{ColumnNames, Units};

/// The crate README's Rust examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
