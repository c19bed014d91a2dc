//! `tinyddpm`: the workstation side of tinyddpm — data, training, the fast batched sampler,
//! evaluation, figures, model import/export and the CUDA backend. All model arithmetic comes
//! from `tinyddpm-core`; nothing here re-derives a formula the core holds.

pub mod atomic;
pub mod batch;
pub mod csv;
pub mod cuda;
pub mod data;
pub mod eval;
pub mod flat;
pub mod flatq;
pub mod input;
pub mod modelfile;
pub mod npy;
pub mod plot;
pub mod quantize;
pub mod run;
pub mod scores;
pub mod state_dict;
pub mod threads;
pub mod train;
