//! The host's batched executor of every sampler: many samples at once, bit-identical to the
//! core's scalar `sample` / `sample_from` whatever the batch size, thread count or SIMD path.
//!
//! - [`Request`]: which samples of which model, with which sampler — the one description
//!   the CPU executor here, the GPU (`cuda`) and the CLI pass around; [`QRequest`] for the
//!   integer `QModel`, both a [`SampleRequest`] of a [`BatchModel`], run by the same
//!   [`sample`] / [`sample_with`]; [`FlatRequest`] for a float model of any
//!   shape on the GPU.
//! - [`sample`] / [`sample_with`]: throughput. Samples are cut into tiles of `S` SIMD
//!   vectors (lanes = samples, `S·LANES` samples per tile); rayon runs the tiles on `threads`
//!   threads, each tile running the core's reverse chain (`tinyddpm_core::chain`) with the
//!   SIMD forward pass (float/kernel.rs, integer/kernel.rs). The step table
//!   (`Sampler::steps`) and the time embeddings (`Model::time_embedding`, the core's scalar
//!   code) are computed once per call, one per step, and shared by all tiles. Noise comes
//!   from each sample's own core `NoiseStream`.
//! - [`Prepared`]: a model of any shape prepared once for a SIMD path and a sampler;
//!   [`Prepared::frames`] keeps the states of the chain at chosen steps (the same tiles, a
//!   hook in the chain), for the reverse-process figure.
//! - [`Batch1`]: latency for one sample, lanes = outputs of each layer.
//! - [`Simd`]: which instruction set runs; [`Simd::detect`] picks the widest one the CPU has
//!   (AVX-512 with VNNI, AVX-512F/BW, AVX2, else portable Rust), and every path can be forced
//!   (the tests run all).
//!
//! float/ and integer/ hold each model kind's kernels, lane types and packed layers, as the
//! core splits `Model` from `quant::QModel`.

mod batch1;
mod chain;
mod executor;
mod float;
mod integer;
mod request;
mod simd;

pub use batch1::Batch1;
pub use executor::{BatchModel, Prepared, sample, sample_with};
pub use integer::QBatch1;
pub use request::{FlatRequest, Init, QRequest, Request, SampleRequest};
pub use simd::Simd;
