//! The emulator catches what it claims to: deliberately faulty kernels (`cpp/broken.cu`) make
//! a race visible between thread orders, fail a launch whose barrier not every thread
//! reaches or whose arguments do not fit the kernel, and — in the sanitizer build — stop the
//! process at an access past a buffer or a shared array and at undefined behaviour.

use std::process::Command;

use tinyddpm::cuda::KernelSource;
use tinyddpm::cuda::launch::{Arg, Buf, Device, Launch, Plan, Session};
use tinyddpm_cuda_emu::{Emulator, Order, SANITIZED};

const BROKEN: KernelSource = KernelSource {
    name: "broken.cu",
    text: include_str!("../cpp/broken.cu"),
};

/// A plan of one launch of `kernel` over one block of `threads`, with a buffer of `floats`
/// zeros as its first argument, then `rest`.
fn one_launch(kernel: &'static str, threads: u32, floats: usize, rest: &[Arg]) -> (Plan, Buf) {
    let mut plan = Plan::new(BROKEN, Vec::new());
    let out = plan.zeros_f32(floats);
    plan.launches.push(Launch {
        kernel,
        grid: [1, 1, 1],
        block: [threads, 1, 1],
        shared_bytes: 0,
        args: [out.ptr()]
            .into_iter()
            .chain(rest.iter().copied())
            .collect(),
    });
    (plan, out)
}

fn run(plan: &Plan, order: Order) -> Result<Box<dyn Session>, String> {
    let mut session = Emulator::new(order).load(plan).map_err(|e| e.to_string())?;
    session
        .run(0..plan.launches.len(), 1)
        .map_err(|e| e.to_string())?;
    Ok(session)
}

#[test]
fn a_read_without_a_barrier_differs_between_thread_orders() {
    let (plan, out) = one_launch("read_without_barrier", 32, 32, &[]);
    let read = |order| {
        run(&plan, order)
            .expect("launch")
            .read_f32(out)
            .expect("read")
    };
    let (forward, reverse) = (read(Order::Forward), read(Order::Reverse));
    // Ascending, thread i reads i + 1 before it is written; descending, after.
    assert!(forward[0].is_nan(), "{forward:?}");
    assert_eq!(reverse[..31], (1..32).map(|i| i as f32).collect::<Vec<_>>());
}

#[test]
fn a_barrier_not_every_thread_reaches_fails_the_launch() {
    let (plan, _) = one_launch("divergent_barrier", 32, 32, &[]);
    let err = run(&plan, Order::Forward).err().expect("a failed launch");
    assert!(
        err.contains("returned while others wait at __syncthreads()"),
        "{err}"
    );
    assert!(err.contains("broken.cu"), "names the barrier: {err}");
}

#[test]
fn arguments_that_do_not_fit_the_kernel_fail_the_launch() {
    let (plan, _) = one_launch("write_past_global", 32, 64, &[Arg::F32(64.0)]);
    let err = run(&plan, Order::Forward).err().expect("a failed launch");
    assert!(
        err.contains("write_past_global has a parameter of another kind"),
        "{err}"
    );
    let (plan, _) = one_launch("write_past_global", 32, 64, &[]);
    let err = run(&plan, Order::Forward).err().expect("a failed launch");
    assert!(
        err.contains("takes a different number of arguments"),
        "{err}"
    );
    let (plan, _) = one_launch("no_such_kernel", 32, 64, &[]);
    let err = run(&plan, Order::Forward).err().expect("a failed launch");
    assert!(err.contains("no kernel no_such_kernel"), "{err}");
}

#[test]
fn a_shape_the_emulator_was_not_built_for_is_refused() {
    let mut plan = Plan::new(
        tinyddpm::cuda::TRAIN,
        vec![("HID", 40), ("NBLK", 1), ("NT", 7)],
    );
    plan.zeros_f32(1);
    let err = run(&plan, Order::Forward).err().expect("no such module");
    assert!(err.contains("add it to tests/cuda-emu/build.rs"), "{err}");
}

/// The faulty launches the sanitizer build must stop, with what it must report.
fn faults() -> Vec<(&'static str, &'static str, Plan)> {
    let (global, _) = one_launch("write_past_global", 65, 64, &[Arg::I32(64)]);
    let (shared, _) = one_launch("write_past_shared", 65, 1, &[]);
    let (mut dynamic, _) = one_launch("read_past_dynamic", 64, 64, &[Arg::I32(64)]);
    dynamic.launches[0].shared_bytes = 64 * 4;
    let (shift, _) = one_launch("shift_overflow", 1, 1, &[Arg::I32(32)]);
    vec![
        ("global", "AddressSanitizer: heap-buffer-overflow", global),
        // The array's type is known here: the bounds check stops it before the write.
        (
            "shared",
            "index 64 out of bounds for type 'float [64]'",
            shared,
        ),
        ("dynamic", "AddressSanitizer: heap-buffer-overflow", dynamic),
        ("shift", "runtime error: shift exponent 32", shift),
    ]
}

/// Runs the faulty launch named by `CUDA_EMU_FAULT` (in a child process of the test below;
/// without the variable it does nothing).
#[test]
#[ignore = "a child process of the_sanitizers_stop_faulty_kernels runs it"]
fn faulty_launch() {
    let Ok(name) = std::env::var("CUDA_EMU_FAULT") else {
        return;
    };
    let (_, _, plan) = faults()
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .expect("a known fault");
    let _ = run(&plan, Order::Forward);
}

#[test]
fn the_sanitizers_stop_faulty_kernels() {
    if !SANITIZED {
        println!("skipped: built without the sanitizers (the `sanitize` feature)");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    for (name, report, _) in faults() {
        let child = Command::new(&exe)
            .args(["--exact", "faulty_launch", "--ignored", "--nocapture"])
            .env("CUDA_EMU_FAULT", name)
            .output()
            .expect("run the child");
        let stderr = String::from_utf8_lossy(&child.stderr);
        assert!(!child.status.success(), "{name}: not stopped\n{stderr}");
        assert!(
            stderr.contains(report),
            "{name}: no {report:?} in\n{stderr}"
        );
        let first = stderr
            .lines()
            .find(|l| l.contains(report))
            .unwrap_or_default();
        println!("{name}: {}", first.trim());
    }
}
