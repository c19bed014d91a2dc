//! The instruction-set paths and their entry points: each generic kernel of float/ and
//! integer/ compiled with a path's target features, entered only on a [`Simd`] the CPU has.

use tinyddpm_core::{NoiseStream, Real, Step};

use super::chain::Kept;
use super::float::kernel::{self, Batch1Scratch, Run};
use super::float::packed::Layers;
use super::float::vectors::PortableF32;
use super::integer::kernel as qkernel;
use super::integer::packed::QLayers;
use super::integer::vectors::PortableI32;

/// An instruction-set path of the sampler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// [`Simd::Avx512`], the integer model's multiply-adds by AVX-512 VNNI (`vpdpwssd`);
    /// the float model runs exactly as on [`Simd::Avx512`].
    Avx512Vnni,
    /// 16 lanes of AVX-512F (with AVX-512BW, which the integer tiles use).
    Avx512,
    /// 8 lanes of AVX (selected on CPUs with AVX2).
    Avx2,
    /// 4 lanes of plain Rust, any CPU.
    Portable,
}

/// Tile shape of each throughput path: `S` sample vectors × `J` outputs in registers, each
/// k step `S` activation loads, `J` weight broadcasts and `S·J` multiplies and adds.
/// AVX-512: 24 accumulators + 6 activations of 32 zmm registers (the weight is a memory
/// operand broadcast into the multiply). AVX2 has no broadcast operand, and 16 ymm registers
/// must hold the accumulators, the activations, the weight and the product: 2 × 6 = 12 + 2 +
/// 1 + 1; 3 × 4 needs 17 and spills (docs/performance.md, "Constants chosen by measurement",
/// has the figures). The integer tiles have the same shapes (`J` even: outputs in pairs), so
/// a tile holds as many samples on both kinds.
const AVX512_S: usize = 6;
const AVX512_J: usize = 4;
const AVX2_S: usize = 2;
const AVX2_J: usize = 6;
const PORTABLE_S: usize = 3;
const PORTABLE_J: usize = 4;
/// Lanes of the portable path (float and integer).
const PORTABLE_LANES: usize = PortableF32::LANES;
/// Output vectors per block on the batch-1 path: 8 independent add chains cover the add
/// latency, and 8·16 = 128 outputs are one seed-sized layer per block on AVX-512.
const BATCH1_VECTORS: usize = 8;

impl Simd {
    /// Every path, widest first.
    pub const ALL: [Simd; 4] = [Simd::Avx512Vnni, Simd::Avx512, Simd::Avx2, Simd::Portable];

    /// The widest path this CPU runs.
    pub fn detect() -> Self {
        Self::ALL
            .into_iter()
            .find(|s| s.is_available())
            .unwrap_or(Simd::Portable)
    }

    /// Whether this CPU has the instructions of the path.
    pub fn is_available(self) -> bool {
        match self {
            Simd::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512Vnni => {
                Simd::Avx512.is_available() && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Samples per throughput tile.
    pub fn tile_samples(self) -> usize {
        match self {
            Simd::Avx512Vnni | Simd::Avx512 => AVX512_S * 16,
            Simd::Avx2 => AVX2_S * 8,
            Simd::Portable => PORTABLE_S * PORTABLE_LANES,
        }
    }

    /// Outputs per throughput tile (`J`), the block width of the packed layers.
    pub(super) fn tile_outputs(self) -> usize {
        match self {
            Simd::Avx512Vnni | Simd::Avx512 => AVX512_J,
            Simd::Avx2 => AVX2_J,
            Simd::Portable => PORTABLE_J,
        }
    }

    /// Lanes of one vector on the batch-1 path (outputs side by side).
    pub(super) fn batch1_lanes(self) -> usize {
        match self {
            Simd::Avx512Vnni | Simd::Avx512 => 16,
            Simd::Avx2 => 8,
            Simd::Portable => PORTABLE_LANES,
        }
    }

    /// Outputs per block on the batch-1 path, the block width of its packed layers.
    pub(super) fn batch1_outputs(self) -> usize {
        BATCH1_VECTORS * self.batch1_lanes()
    }

    /// Panics unless the CPU has the path: every entry point below relies on this check.
    pub(super) fn require(self) {
        assert!(self.is_available(), "{self:?} is not available on this CPU");
    }

    /// One float tile (available: checked by the caller).
    pub(super) fn float_tile(
        self,
        layers: &Layers,
        run: Run<'_>,
        x: &mut [f32],
        noise: &mut [NoiseStream],
        kept: Option<&mut Kept<'_>>,
    ) {
        match self {
            // SAFETY: the caller checked that the CPU has the path's target feature.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512Vnni | Simd::Avx512 => unsafe {
                x86::tile_avx512(layers, run, x, noise, kept)
            },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { x86::tile_avx2(layers, run, x, noise, kept) },
            _ => kernel::sample_tile::<PortableF32, PORTABLE_S, PORTABLE_J>(
                layers, run, x, noise, kept,
            ),
        }
    }

    /// One integer tile, `tembs` holding each step's embedding every `hidden` (available:
    /// checked by the caller).
    pub(super) fn integer_tile(
        self,
        layers: &QLayers,
        run: (&[Step], &[i16], usize),
        x: &mut [f32],
        noise: &mut [NoiseStream],
        kept: Option<&mut Kept<'_>>,
    ) {
        match self {
            // SAFETY: the caller checked that the CPU has the path's target features.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512Vnni => unsafe { x86::qtile_avx512vnni(layers, run, x, noise, kept) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { x86::qtile_avx512(layers, run, x, noise, kept) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { x86::qtile_avx2(layers, run, x, noise, kept) },
            _ => qkernel::sample_tile::<PortableI32<PORTABLE_LANES>, PORTABLE_S, PORTABLE_J>(
                layers, run, x, noise, kept,
            ),
        }
    }

    /// The batch-1 time embedding into `temb` (available: checked by the caller).
    pub(super) fn batch1_time_embedding(
        self,
        layers: &Layers,
        t_input: f32,
        scratch: &mut Batch1Scratch,
        temb: &mut [f32],
    ) {
        match self {
            // SAFETY: the caller checked that the CPU has the path's target feature.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512Vnni | Simd::Avx512 => unsafe {
                x86::temb_avx512(layers, t_input, scratch, temb)
            },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { x86::temb_avx2(layers, t_input, scratch, temb) },
            _ => kernel::time_embedding_batch1::<PortableF32, BATCH1_VECTORS>(
                layers, t_input, scratch, temb,
            ),
        }
    }

    /// The batch-1 predicted noise (available: checked by the caller).
    pub(super) fn batch1_predict_noise(
        self,
        layers: &Layers,
        x: &[f32],
        temb: &[f32],
        scratch: &mut Batch1Scratch,
        eps: &mut [f32],
    ) {
        match self {
            // SAFETY: the caller checked that the CPU has the path's target feature.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512Vnni | Simd::Avx512 => unsafe {
                x86::batch1_avx512(layers, x, temb, scratch, eps)
            },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { x86::batch1_avx2(layers, x, temb, scratch, eps) },
            _ => kernel::predict_noise_batch1::<PortableF32, BATCH1_VECTORS>(
                layers, x, temb, scratch, eps,
            ),
        }
    }
}

/// The x86 entry points: the generic kernels compiled with each path's target feature.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use crate::batch::float::vectors::{F32x8, F32x16};
    use crate::batch::integer::vectors::{I32x8, I32x16};

    // Not generic: compiled once, here, with the target feature, so that the intrinsics inline
    // into it (instantiated in a downstream crate, they were left as calls: 10× slower).
    #[target_feature(enable = "avx512f")]
    pub(super) fn tile_avx512(
        layers: &Layers,
        run: Run<'_>,
        x: &mut [f32],
        noise: &mut [NoiseStream],
        kept: Option<&mut Kept<'_>>,
    ) {
        kernel::sample_tile::<F32x16, AVX512_S, AVX512_J>(layers, run, x, noise, kept)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn tile_avx2(
        layers: &Layers,
        run: Run<'_>,
        x: &mut [f32],
        noise: &mut [NoiseStream],
        kept: Option<&mut Kept<'_>>,
    ) {
        kernel::sample_tile::<F32x8, AVX2_S, AVX2_J>(layers, run, x, noise, kept)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn qtile_avx512vnni(
        layers: &QLayers,
        run: (&[Step], &[i16], usize),
        x: &mut [f32],
        noise: &mut [NoiseStream],
        kept: Option<&mut Kept<'_>>,
    ) {
        qkernel::sample_tile::<I32x16<true>, AVX512_S, AVX512_J>(layers, run, x, noise, kept)
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn qtile_avx512(
        layers: &QLayers,
        run: (&[Step], &[i16], usize),
        x: &mut [f32],
        noise: &mut [NoiseStream],
        kept: Option<&mut Kept<'_>>,
    ) {
        qkernel::sample_tile::<I32x16<false>, AVX512_S, AVX512_J>(layers, run, x, noise, kept)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn qtile_avx2(
        layers: &QLayers,
        run: (&[Step], &[i16], usize),
        x: &mut [f32],
        noise: &mut [NoiseStream],
        kept: Option<&mut Kept<'_>>,
    ) {
        qkernel::sample_tile::<I32x8, AVX2_S, AVX2_J>(layers, run, x, noise, kept)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn batch1_avx512(
        layers: &Layers,
        x: &[f32],
        temb: &[f32],
        scratch: &mut Batch1Scratch,
        eps: &mut [f32],
    ) {
        kernel::predict_noise_batch1::<F32x16, BATCH1_VECTORS>(layers, x, temb, scratch, eps)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn batch1_avx2(
        layers: &Layers,
        x: &[f32],
        temb: &[f32],
        scratch: &mut Batch1Scratch,
        eps: &mut [f32],
    ) {
        kernel::predict_noise_batch1::<F32x8, BATCH1_VECTORS>(layers, x, temb, scratch, eps)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn temb_avx512(
        layers: &Layers,
        t_input: f32,
        scratch: &mut Batch1Scratch,
        temb: &mut [f32],
    ) {
        kernel::time_embedding_batch1::<F32x16, BATCH1_VECTORS>(layers, t_input, scratch, temb)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn temb_avx2(
        layers: &Layers,
        t_input: f32,
        scratch: &mut Batch1Scratch,
        temb: &mut [f32],
    ) {
        kernel::time_embedding_batch1::<F32x8, BATCH1_VECTORS>(layers, t_input, scratch, temb)
    }
}
