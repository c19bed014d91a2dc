//! The seed jobs timed on the GPU, for `benches/gpu.sh`: 10,000 training steps at batch 128
//! (graph replay, then 1,000 steps with plain launches for comparison), and 10,000 samples ×
//! 1,000 DDPM steps (and 50 DDIM steps, 20 DPM-Solver++(2M) and 20 UniPC steps). Writes the
//! GPU-trained model, its loss log and the GPU samples under `$TINYDDPM_BENCH_DIR` (default
//! `gpu-bench`) for `tinyddpm eval`.
//!
//! GPU only: without a usable GPU it prints "skipped: no CUDA device (why)" and ends.

use std::time::Instant;

use tinyddpm::batch::{FlatRequest, Init};
use tinyddpm::cuda::{self, GpuTrainer};
use tinyddpm::train::{TrainConfig, Training};
use tinyddpm_core::file::Header;
use tinyddpm_core::{Sampler, Schedule, ScheduleKind, Solver};

fn main() {
    let gpu = match cuda::probe() {
        Ok(gpu) => gpu,
        Err(reason) => {
            println!("skipped: no CUDA device ({reason})");
            return;
        }
    };
    let dir = std::path::PathBuf::from(
        std::env::var("TINYDDPM_BENCH_DIR").unwrap_or_else(|_| "gpu-bench".into()),
    );
    std::fs::create_dir_all(&dir).expect("bench directory");
    let s = Box::new(Schedule::<1000>::new(ScheduleKind::SEED).expect("seed schedule"));
    println!("device: {} ({})", gpu.name(), gpu.arch());

    let config = TrainConfig::default();
    let steps = config.steps;
    let mut trainer =
        GpuTrainer::<1000>::new(&gpu, config.clone(), 128, 3, &s).expect("GPU trainer");
    let mut losses = Vec::new();
    let t0 = Instant::now();
    trainer
        .run(steps, &mut |_, loss| losses.push(loss))
        .expect("GPU training");
    let train_s = t0.elapsed().as_secs_f64();
    println!(
        "gpu-train steps={steps} batch={} graph=on seconds={train_s:.3} ms_per_step={:.4} \
         loss_mean_last200={:.5}",
        config.batch,
        1e3 * train_s / steps as f64,
        losses[losses.len() - 200..].iter().sum::<f32>() / 200.0
    );
    let log: String = losses
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{i},{l}\n"))
        .collect();
    std::fs::write(dir.join("gpu_losses.csv"), format!("step,loss\n{log}")).expect("losses");
    let flat = trainer.model().expect("model");
    let model = flat.to_model::<128, 3, 2>().expect("the seed shape");
    let header = Header::new::<128, 3, 1000>(ScheduleKind::SEED, Sampler::Ddpm);
    tinyddpm::modelfile::save(&dir.join("gpu_model.tdm"), &*model, &header).expect("model file");

    let mut plain = GpuTrainer::<1000>::new(&gpu, config, 128, 3, &s).expect("GPU trainer");
    plain.use_graph(false);
    let t0 = Instant::now();
    plain.run(1000, &mut |_, _| {}).expect("GPU training");
    let plain_s = t0.elapsed().as_secs_f64();
    println!(
        "gpu-train steps=1000 graph=off ms_per_step={:.4}",
        1e3 * plain_s / 1000.0
    );

    let sampler = Sampler::Ddpm;
    gpu.sample(
        &FlatRequest {
            model: &flat,
            schedule: &s,
            sampler: &sampler,
            init: Init::Noise,
            seed: 1,
            first: 0,
            count: 256,
        },
        &|_| {},
    )
    .expect("warm-up");
    let count = 10_000;
    let t0 = Instant::now();
    let xs = gpu
        .sample(
            &FlatRequest {
                model: &flat,
                schedule: &s,
                sampler: &sampler,
                init: Init::Noise,
                seed: 1,
                first: 0,
                count,
            },
            &|_| {},
        )
        .expect("GPU sampling");
    let sample_s = t0.elapsed().as_secs_f64();
    let xs = xs.as_chunks::<2>().0;
    println!("gpu-sample-ddpm n={count} steps=1000 seconds={sample_s:.4}");
    // The few-step samplers: DDIM and the multistep solvers at their defaults.
    for (name, fast) in [
        ("ddim50", Sampler::DDIM_DEFAULT),
        ("dpmpp-2m-20", Sampler::multistep(Solver::DpmPp2m)),
        ("unipc-20", Sampler::multistep(Solver::UniPc)),
    ] {
        let t0 = Instant::now();
        gpu.sample(
            &FlatRequest {
                model: &flat,
                schedule: &s,
                sampler: &fast,
                init: Init::Noise,
                seed: 1,
                first: 0,
                count,
            },
            &|_| {},
        )
        .expect("GPU sampling");
        println!(
            "gpu-sample-{name} n={count} seconds={:.4}",
            t0.elapsed().as_secs_f64()
        );
    }
    for i in (0..count).step_by(625) {
        let want = tinyddpm_core::sample(&*model, &s, &sampler, 1, i as u64);
        assert_eq!(
            xs[i].map(f32::to_bits),
            want.map(f32::to_bits),
            "sample {i}"
        );
    }
    let csv: String = xs.iter().map(|[x, y]| format!("{x},{y}\n")).collect();
    std::fs::write(dir.join("gpu_samples.csv"), format!("x,y\n{csv}")).expect("samples");
}
