//! The multistep solvers (DPM-Solver++ 2M/3M/2M SDE, UniPC): parity with diffusers' schedulers
//! on the fixture model, the visited timesteps, the SDE variant against an f64 reference fed
//! the same noise, lanes against scalar runs bit for bit, and how their names resolve.

mod common;

use common::{csv_rows, forward64, torch_model};
use tinyddpm_core::{
    ChoiceError, Lanes, NoiseStream, Sampler, SamplerChoice, Schedule, ScheduleKind, Solver,
    Spacing, chain,
};

fn schedule() -> Schedule<1000> {
    Schedule::new(ScheduleKind::SEED).unwrap()
}

fn multistep(solver: Solver, steps: u32, spacing: Spacing) -> Sampler {
    Sampler::Multistep {
        solver,
        steps,
        spacing,
    }
}

/// `np.linspace(0, 999, 21).round()[::-1][:-1]` (the fixture README's "999, 949, …, 100, 50").
const LINSPACE_20: [usize; 20] = [
    999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 500, 450, 400, 350, 300, 250, 200, 150, 100,
    50,
];
/// The fixtures' visited timesteps under `use_lu_lambdas=True`, K = 20.
const LU_20: [usize; 20] = [
    999, 947, 893, 834, 772, 704, 629, 546, 454, 353, 253, 166, 103, 61, 35, 19, 10, 4, 1, 0,
];
/// Under `use_karras_sigmas=True`, K = 20.
const KARRAS_20: [usize; 20] = [
    999, 971, 940, 908, 872, 833, 790, 743, 689, 627, 556, 472, 373, 265, 164, 88, 41, 16, 4, 0,
];
/// Under `use_karras_sigmas=True`, K = 15.
const KARRAS_15: [usize; 15] = [
    999, 960, 917, 869, 815, 753, 681, 593, 484, 350, 205, 92, 32, 8, 0,
];

/// Runs `sampler` from each fixture row's x_T (the stream of index i; these samplers are
/// deterministic and multiply its noise by 0) and returns the worst absolute difference to
/// diffusers' x₀, after checking the visited timesteps.
fn worst_against_diffusers(file: &str, sampler: Sampler, timesteps: &[usize]) -> f32 {
    let model = torch_model();
    let schedule = schedule();
    sampler.validate(1000).unwrap();
    let steps: Vec<_> = sampler.steps(&schedule).collect();
    let visited: Vec<_> = steps.iter().map(|s| s.t as usize).collect();
    assert_eq!(visited, timesteps, "{file}: visited timesteps");
    for (k, step) in steps.iter().enumerate() {
        assert_eq!(sampler.timestep(&schedule, k), timesteps[k]);
        assert_eq!(step.t_input, timesteps[k] as f32 / 1000.0);
        assert_eq!(step.sigma, 0.0, "{file}: deterministic");
    }
    let rows = csv_rows(file);
    assert_eq!(rows.len(), 256);
    let mut worst = 0.0f32;
    for (i, r) in rows.iter().enumerate() {
        let mut noise = [NoiseStream::new(0, i as u64)];
        let x = chain(
            &*model,
            steps.iter().copied(),
            [r[0] as f32, r[1] as f32],
            &mut noise,
            |_, _| (),
        );
        worst = worst
            .max((x[0] - r[2] as f32).abs())
            .max((x[1] - r[3] as f32).abs());
    }
    println!("{file}: worst abs difference {worst:e}");
    worst
}

fn matches_diffusers(file: &str, sampler: Sampler, timesteps: &[usize]) {
    let worst = worst_against_diffusers(file, sampler, timesteps);
    assert!(worst <= 1e-4, "{file}: worst abs difference {worst:e}");
}

#[test]
fn dpmpp_2m_linspace_matches_diffusers_within_1e_4() {
    let sampler = multistep(Solver::DpmPp2m, 20, Spacing::Linspace);
    matches_diffusers("dpm_ref_2m_linspace_20.csv", sampler, &LINSPACE_20);
}

#[test]
fn dpmpp_3m_linspace_matches_diffusers_within_1e_4() {
    let sampler = multistep(Solver::DpmPp3m, 20, Spacing::Linspace);
    matches_diffusers("dpm_ref_3m_linspace_20.csv", sampler, &LINSPACE_20);
}

#[test]
fn dpmpp_2m_logsnr_matches_diffusers_within_1e_4() {
    let sampler = multistep(Solver::DpmPp2m, 20, Spacing::LogSnr);
    matches_diffusers("dpm_ref_2m_lu_20.csv", sampler, &LU_20);
}

#[test]
fn dpmpp_2m_karras_matches_diffusers_within_1e_4() {
    let sampler = multistep(Solver::DpmPp2m, 20, Spacing::Karras);
    matches_diffusers("dpm_ref_2m_karras_20.csv", sampler, &KARRAS_20);
}

#[test]
fn dpmpp_3m_karras_15_matches_diffusers_within_1e_4() {
    let sampler = multistep(Solver::DpmPp3m, 15, Spacing::Karras);
    matches_diffusers("dpm_ref_3m_karras_15.csv", sampler, &KARRAS_15);
}

#[test]
fn unipc_karras_matches_diffusers_within_1e_4() {
    let sampler = multistep(Solver::UniPc, 20, Spacing::Karras);
    matches_diffusers("unipc_ref_karras_20.csv", sampler, &KARRAS_20);
}

/// The fixtures tell the solvers apart: each solver's result is far (≫ 1e-4) from the other
/// solvers' references on the same placement, so the parity above is not a coincidence of
/// similar methods.
#[test]
fn each_fixture_distinguishes_its_solver() {
    let two_m = multistep(Solver::DpmPp2m, 20, Spacing::Karras);
    let unipc = multistep(Solver::UniPc, 20, Spacing::Karras);
    let three_m = multistep(Solver::DpmPp3m, 20, Spacing::Linspace);
    for (file, sampler, timesteps) in [
        ("unipc_ref_karras_20.csv", two_m, &KARRAS_20[..]),
        ("dpm_ref_2m_karras_20.csv", unipc, &KARRAS_20),
        ("dpm_ref_2m_linspace_20.csv", three_m, &LINSPACE_20),
    ] {
        let worst = worst_against_diffusers(file, sampler, timesteps);
        assert!(worst > 1e-3, "{file} vs {sampler:?}: {worst:e}");
    }
}

/// The noise levels σ_k (k = 0 … K, σ_K = 0) and network timesteps of a placement, written
/// here from diffusers' `set_timesteps` independently of the core's grid.
fn grid64(schedule: &Schedule<1000>, steps: usize, spacing: Spacing) -> (Vec<f64>, Vec<usize>) {
    let sigma_at = |t: usize| {
        let ab = schedule.alpha_bar[t];
        ((1.0 - ab) / ab).sqrt()
    };
    let (mut sigmas, timesteps): (Vec<f64>, Vec<usize>) = match spacing {
        Spacing::Linspace => {
            let ts: Vec<usize> = (1..=steps)
                .rev()
                .map(|j| (j as f64 * (999.0 / steps as f64)).round_ties_even() as usize)
                .collect();
            (ts.iter().map(|&t| sigma_at(t)).collect(), ts)
        }
        Spacing::LogSnr => {
            let log_sigma: Vec<f64> = (0..1000).map(|t| sigma_at(t).ln()).collect();
            let (hi, lo) = (log_sigma[999], log_sigma[0]);
            (0..steps)
                .map(|k| {
                    let l = hi + k as f64 / (steps - 1) as f64 * (lo - hi);
                    let j = log_sigma
                        .iter()
                        .rposition(|&v| v <= l)
                        .unwrap_or(0)
                        .min(998);
                    let w =
                        ((l - log_sigma[j]) / (log_sigma[j + 1] - log_sigma[j])).clamp(0.0, 1.0);
                    (l.exp(), (j as f64 + w).round_ties_even() as usize)
                })
                .unzip()
        }
        _ => unreachable!("this reference places linspace and logsnr grids"),
    };
    sigmas.push(0.0);
    (sigmas, timesteps)
}

/// SDE-DPM-Solver++(2M), midpoint, in f64 as diffusers writes it (D₀, D₁ and the step's
/// terms, not the core's weights), with the f64 network and the core's noise stream: the
/// first pair is x_T, then one pair per step.
fn sde_2m64(spacing: Spacing, steps: usize, seed: u64, index: u64) -> [f64; 2] {
    let model = torch_model();
    let schedule = schedule();
    let (sigmas, timesteps) = grid64(&schedule, steps, spacing);
    let sampler = multistep(Solver::DpmPp2mSde, steps as u32, spacing);
    let core_timesteps: Vec<_> = sampler.steps(&schedule).map(|s| s.t as usize).collect();
    assert_eq!(core_timesteps, timesteps);
    let alpha_sigma = |sigma: f64| {
        let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
        (alpha, sigma * alpha)
    };
    let mut noise = NoiseStream::new(seed, index);
    let mut x = noise.gaussian_pair().map(f64::from);
    let mut previous: Option<([f64; 2], f64)> = None;
    for k in 0..steps {
        let eps = forward64(&model, x, f64::from(timesteps[k] as f32 / 1000.0));
        let z = noise.gaussian_pair().map(f64::from);
        let ((alpha_s, sigma_s), (alpha_t, sigma_t)) =
            (alpha_sigma(sigmas[k]), alpha_sigma(sigmas[k + 1]));
        let lambda_s = alpha_s.ln() - sigma_s.ln();
        let h = alpha_t.ln() - sigma_t.ln() - lambda_s;
        let x0 = [0, 1].map(|c| (x[c] - sigma_s * eps[c]) / alpha_s);
        // lower_order_final: the first and the last step are first order.
        let d1 = match previous {
            Some((m1, lambda_s1)) if k + 1 < steps => {
                let r0 = (lambda_s - lambda_s1) / h;
                [0, 1].map(|c| (x0[c] - m1[c]) / r0)
            }
            _ => [0.0; 2],
        };
        x = [0, 1].map(|c| {
            sigma_t / sigma_s * (-h).exp() * x[c]
                + alpha_t * (1.0 - (-2.0 * h).exp()) * (x0[c] + 0.5 * d1[c])
                + sigma_t * (1.0 - (-2.0 * h).exp()).sqrt() * z[c]
        });
        previous = Some((x0, lambda_s));
    }
    x
}

#[test]
fn sde_2m_agrees_with_an_f64_reference_fed_the_same_noise() {
    let model = torch_model();
    let schedule = schedule();
    let mut worst = 0.0f64;
    for (spacing, steps) in [(Spacing::LogSnr, 20), (Spacing::Linspace, 10)] {
        let sampler = multistep(Solver::DpmPp2mSde, steps as u32, spacing);
        assert!(
            sampler.steps(&schedule).any(|s| s.sigma > 0.1),
            "noise is used"
        );
        for index in 0..64 {
            let x = tinyddpm_core::sample(&*model, &schedule, &sampler, 9, index);
            let exact = sde_2m64(spacing, steps, 9, index);
            let err = (x[0] as f64 - exact[0]).hypot(x[1] as f64 - exact[1]);
            worst = worst.max(err / exact[0].hypot(exact[1]).max(0.1));
        }
    }
    println!("SDE-DPM-Solver++(2M) vs f64: worst relative difference {worst:e}");
    assert!(worst <= 1e-5, "worst relative difference {worst:e}");
}

/// Every solver and placement, the SDE's noise included: a batch of four lanes through
/// `chain` gives each sample's scalar bits, whatever shares its lanes.
#[test]
fn lanes_equal_scalar_runs_bit_for_bit() {
    let model = torch_model();
    let schedule = schedule();
    let idx = [5u64, 0, 1 << 40, 17];
    for (_, solver) in Solver::NAMED {
        for (spacing, steps) in [
            (Spacing::Linspace, 12),
            (Spacing::Karras, 20),
            (Spacing::LogSnr, 7),
        ] {
            let sampler = multistep(solver, steps, spacing);
            let mut noise = idx.map(|i| NoiseStream::new(11, i));
            let first = noise.each_mut().map(|s| s.gaussian_pair());
            let x = [0, 1].map(|c| Lanes(first.map(|p| p[c])));
            let x = chain(&*model, sampler.steps(&schedule), x, &mut noise, |_, _| ());
            for (lane, &i) in idx.iter().enumerate() {
                let alone = tinyddpm_core::sample(&*model, &schedule, &sampler, 11, i);
                assert_eq!(
                    [x[0].0[lane].to_bits(), x[1].0[lane].to_bits()],
                    alone.map(f32::to_bits),
                    "{sampler:?} lane {lane}"
                );
            }
        }
    }
}

#[test]
fn multistep_options_resolve_and_ddim_options_do_not_apply() {
    let choice = |name, steps, spacing| SamplerChoice {
        name,
        steps,
        spacing,
        ..SamplerChoice::default()
    };
    let two_m = Sampler::multistep(Solver::DpmPp2m);
    assert_eq!(
        choice(Some("dpmpp-2m"), None, None).resolve(Sampler::Ddpm, 1000),
        Ok(two_m)
    );
    // Steps and spacing refine the default's solver.
    let karras = choice(None, Some(15), Some("karras")).resolve(two_m, 1000);
    let expected = Sampler::Multistep {
        solver: Solver::DpmPp2m,
        steps: 15,
        spacing: Spacing::Karras,
    };
    assert_eq!(karras, Ok(expected));
    let unipc = choice(Some("unipc"), Some(8), None).resolve(expected, 1000);
    assert_eq!(
        unipc,
        Ok(Sampler::Multistep {
            solver: Solver::UniPc,
            steps: 8,
            spacing: Spacing::LogSnr,
        })
    );
    let clip = SamplerChoice {
        clip: true,
        ..choice(Some("dpmpp-3m"), None, None)
    };
    assert_eq!(
        clip.resolve(Sampler::Ddpm, 1000),
        Err(ChoiceError::DdimOnly {
            sampler: Sampler::multistep(Solver::DpmPp3m),
            named: true
        })
    );
    // Each sampler takes its own placements, with a message saying which.
    let trailing = choice(Some("dpmpp-2m-sde"), None, Some("trailing"));
    let err = trailing.resolve(Sampler::Ddpm, 1000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SDE-DPM-Solver++(2M) takes linspace, karras or logsnr spacing, not trailing"
    );
    let ddim_karras = choice(Some("ddim"), None, Some("karras"));
    let err = ddim_karras.resolve(Sampler::Ddpm, 1000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "DDIM takes trailing, leading or linspace spacing, not karras"
    );
    // The multistep solvers' last step goes to σ = 0: K < T.
    let too_many = choice(Some("dpmpp-2m"), Some(1000), None).resolve(Sampler::Ddpm, 1000);
    assert_eq!(
        too_many.unwrap_err().to_string(),
        "DPM-Solver++(2M) steps must be between 1 and 999, got 1000"
    );
    assert!(
        choice(Some("unipc"), Some(999), Some("linspace"))
            .resolve(Sampler::Ddpm, 1000)
            .is_ok()
    );
    assert_eq!(
        choice(None, None, Some("cosine")).resolve(two_m, 1000),
        Err(ChoiceError::UnknownSpacing)
    );
}

#[test]
fn error_messages_list_every_name() {
    let names = ChoiceError::UnknownName.to_string();
    for (name, _) in Sampler::NAMES {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    let spacings = ChoiceError::UnknownSpacing.to_string();
    for (name, _) in Spacing::NAMED {
        assert!(spacings.contains(name), "{name} missing from {spacings:?}");
    }
    let fixed = ChoiceError::EveryTimestep {
        sampler: Sampler::Ddpm,
        named: true,
    };
    let fixed = fixed.to_string();
    for (name, sampler) in Sampler::NAMES {
        let takes_steps = !matches!(sampler, Sampler::Ddpm | Sampler::DdpmPosterior);
        assert!(
            !takes_steps || fixed.contains(name),
            "{name} missing from {fixed:?}"
        );
    }
}

#[test]
fn samplers_describe_themselves() {
    let described = |s: Sampler| s.describe(1000).to_string();
    assert_eq!(
        described(Sampler::multistep(Solver::DpmPp3m)),
        "DPM-Solver++(3M), 20 steps, logsnr spacing"
    );
    let unipc = Sampler::Multistep {
        solver: Solver::UniPc,
        steps: 10,
        spacing: Spacing::Karras,
    };
    assert_eq!(
        described(unipc),
        "UniPC (bh2, order 2), 10 steps, karras spacing"
    );
    assert_eq!(
        described(Sampler::DDIM_DEFAULT),
        "DDIM, 50 steps, trailing spacing, eta 0"
    );
}
