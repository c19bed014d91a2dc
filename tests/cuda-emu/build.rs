//! Compiles the CUDA kernel sources as C++ for the CPU emulation: each (source, compile-time
//! sizes) pair the tests run becomes one module, `common.cu` and the source wrapped in a
//! namespace of its own, with its kernels registered by name (found in the source as
//! `KERNEL void name(`). With the `sanitize` feature everything is built with AddressSanitizer
//! and UndefinedBehaviorSanitizer, and the tests link their runtimes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the kernel sources live.
const KERNELS: &str = "../../host/src/cuda/kernels";

/// The modules: a kernel source and its `-D` sizes in the order the host's `defines`
/// functions give them (for `sample.cu`, followed by the core's layout offsets and
/// step row layout, [`with_offsets`]). A test that needs another shape adds it here.
const MODULES: &[(&str, &[(&str, usize)])] = &[
    // The tests' small model (H = 48: partial 32-wide tiles in training) and the seed model,
    // with the 128-sample tile an H200's shared memory gives both.
    (
        "sample.cu",
        &[("HID", 48), ("NBLK", 2), ("DIM", 2), ("SMAX", 128)],
    ),
    (
        "sample.cu",
        &[("HID", 128), ("NBLK", 3), ("DIM", 2), ("SMAX", 128)],
    ),
    // Points of other D (odd ones drop a Gaussian of each draw) on other small shapes.
    (
        "sample.cu",
        &[("HID", 32), ("NBLK", 1), ("DIM", 1), ("SMAX", 128)],
    ),
    (
        "sample.cu",
        &[("HID", 40), ("NBLK", 2), ("DIM", 3), ("SMAX", 128)],
    ),
    (
        "sample.cu",
        &[("HID", 48), ("NBLK", 1), ("DIM", 8), ("SMAX", 128)],
    ),
    (
        "sample.cu",
        &[("HID", 32), ("NBLK", 2), ("DIM", 16), ("SMAX", 128)],
    ),
    // Training the same two shapes on 2-D data, and points of D = 1 and 3 on shapes the CLI
    // does not name.
    (
        "train.cu",
        &[("HID", 48), ("NBLK", 2), ("DIM", 2), ("NT", 1000)],
    ),
    (
        "train.cu",
        &[("HID", 128), ("NBLK", 3), ("DIM", 2), ("NT", 1000)],
    ),
    (
        "train.cu",
        &[("HID", 24), ("NBLK", 1), ("DIM", 1), ("NT", 1000)],
    ),
    (
        "train.cu",
        &[("HID", 40), ("NBLK", 2), ("DIM", 3), ("NT", 1000)],
    ),
    // Deliberately faulty kernels for the emulator's own tests.
    ("broken.cu", &[]),
];

/// The names of a source's entry points.
fn kernels(source: &str) -> Vec<String> {
    source
        .split("KERNEL void ")
        .skip(1)
        .map(|rest| {
            let rest = match rest.strip_prefix("__launch_bounds__(") {
                Some(bounded) => bounded.split_once(')').expect("closed bounds").1,
                None => rest,
            };
            rest.split_once('(')
                .expect("a parameter list")
                .0
                .trim()
                .to_string()
        })
        .collect()
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir"));
    let kernels_dir = root.join(KERNELS);
    let cpp = root.join("cpp");
    let sanitize = std::env::var_os("CARGO_FEATURE_SANITIZE").is_some();

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .include(&kernels_dir)
        .include(&cpp)
        // Bits as the GPU computes them with --fmad=false: every operation rounded on its
        // own (fmaf stays fused), no fast-math; float4 loads through float pointers.
        .flag("-ffp-contract=off")
        .flag("-fno-fast-math")
        .flag("-fno-strict-aliasing")
        // `#pragma unroll` is NVRTC's.
        .flag("-Wno-unknown-pragmas")
        .file(cpp.join("runtime.cpp"))
        .file(cpp.join("maths.cpp"));
    if sanitize {
        build
            .flag("-fsanitize=address,undefined")
            .flag("-fno-sanitize-recover=all")
            .flag("-fno-omit-frame-pointer");
        // rustc links with -nodefaultlibs, which keeps the compiler driver from adding the
        // sanitizers' runtimes: name them (ahead of the C library, as AddressSanitizer
        // requires of its runtime).
        println!("cargo:rustc-link-lib=dylib=asan");
        println!("cargo:rustc-link-lib=dylib=ubsan");
    }

    let mut table = String::new();
    for (i, (source, sizes)) in MODULES.iter().enumerate() {
        let defines = with_offsets(source, sizes);
        let dir = if *source == "broken.cu" {
            &cpp
        } else {
            &kernels_dir
        };
        let text = std::fs::read_to_string(dir.join(source)).expect("kernel source");
        let mut unit = String::from("#include \"cuda_cpu.h\"\n");
        for (name, value) in &defines {
            writeln!(unit, "#define {name} {value}").unwrap();
        }
        writeln!(unit, "namespace kernels_{i} {{").unwrap();
        writeln!(unit, "#include \"common.cu\"").unwrap();
        writeln!(unit, "#include \"{source}\"").unwrap();
        let list: Vec<String> = kernels(&text)
            .iter()
            .map(|k| format!("EMU_KERNEL({k})"))
            .collect();
        writeln!(
            unit,
            "static const ::emu::Kernel kernels[] = {{{}}};",
            list.join(", ")
        )
        .unwrap();
        writeln!(unit, "}}").unwrap();
        let sizes: Vec<String> = defines.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(
            unit,
            "extern \"C\" const ::emu::Module emu_module_{i} = {{\"{source}\", \"{}\", \
             kernels_{i}::kernels, {}}};",
            sizes.join(" "),
            list.len()
        )
        .unwrap();
        let path = out.join(format!("module_{i}.cpp"));
        std::fs::write(&path, unit).expect("write module");
        build.file(&path);
        writeln!(table, "extern \"C\" const ::emu::Module emu_module_{i};").unwrap();
    }
    let all: Vec<String> = (0..MODULES.len())
        .map(|i| format!("&emu_module_{i}"))
        .collect();
    writeln!(
        table,
        "static const ::emu::Module *const modules[] = {{{}}};\n\
         // Module i, or null past the last.\n\
         extern \"C\" const ::emu::Module *emu_module_at(size_t i) {{\n\
         \x20   return i < {} ? modules[i] : nullptr;\n\
         }}",
        all.join(", "),
        MODULES.len()
    )
    .unwrap();
    let modules = out.join("modules.cpp");
    std::fs::write(&modules, format!("#include \"cuda_cpu.h\"\n{table}")).expect("write table");
    build.file(&modules);
    build.compile("cuda_emu");

    for dir in [&kernels_dir, &cpp] {
        rerun_if_changed(dir);
    }
}

/// `sizes`, and for `sample.cu` the core's parameter offsets for its H, B and D and its step
/// row layout, as the host's `cuda::sample::defines` appends them.
fn with_offsets(source: &str, sizes: &[(&'static str, usize)]) -> Vec<(&'static str, usize)> {
    let mut defines = sizes.to_vec();
    if source == "sample.cu" {
        let size = |name| sizes.iter().find(|(n, _)| *n == name).map(|&(_, v)| v);
        let (hidden, blocks) = size("HID").zip(size("NBLK")).expect("HID and NBLK");
        let dim = size("DIM").expect("DIM");
        let layout =
            tinyddpm_core::Layout::with_dim(hidden, blocks, dim).expect("a countable shape");
        defines.extend(layout.named_offsets());
        defines.extend(tinyddpm_core::Step::named_words());
    }
    defines
}

fn rerun_if_changed(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("source folder") {
        println!(
            "cargo:rerun-if-changed={}",
            entry.expect("entry").path().display()
        );
    }
}
