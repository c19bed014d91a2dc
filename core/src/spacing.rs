//! Where a sampler places its K steps among the T timesteps: one type that the samplers, the
//! multistep solvers' grids and the user's choice all read, so none of them imports another
//! for it.

/// Where a sampler places its K steps among the T timesteps (diffusers' `timestep_spacing`,
/// `use_karras_sigmas`, `use_lu_lambdas`). DDIM takes trailing, leading and linspace; the
/// multistep solvers linspace, karras and logsnr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "file", derive(serde::Serialize, serde::Deserialize))]
pub enum Spacing {
    /// `round(T − k·T/K) − 1`: starts at T−1 (999, 979, …, 19 for K = 50).
    Trailing,
    /// `k·(T/K)` descending: ends at 0 (980, 960, …, 0 for K = 50).
    Leading,
    /// DDIM: `round(linspace(0, T−1, K))` descending; multistep solvers:
    /// `round(linspace(0, T−1, K+1))` descending without the final 0 (999, 949, …, 50 for
    /// K = 20), whose step goes to σ = 0.
    Linspace,
    /// Karras et al.'s noise levels, ρ = 7, from σ(T−1) to σ(0); the network sees each level's
    /// timestep interpolated in ln σ and rounded.
    Karras,
    /// Noise levels uniform in log-SNR from σ(T−1) to σ(0) (Lu et al.'s DPM-Solver); timesteps
    /// as for Karras.
    LogSnr,
}

impl Spacing {
    /// Every spacing with its name, as the CLI and the firmware's settings spell it.
    pub const NAMED: [(&'static str, Spacing); 5] = [
        ("trailing", Spacing::Trailing),
        ("leading", Spacing::Leading),
        ("linspace", Spacing::Linspace),
        ("karras", Spacing::Karras),
        ("logsnr", Spacing::LogSnr),
    ];

    /// The spacing called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, s)| s)
    }

    /// This spacing's name.
    pub fn name(self) -> &'static str {
        Self::NAMED
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |&(n, _)| n)
    }
}
