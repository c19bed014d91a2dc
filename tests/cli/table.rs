//! The files a table case starts from, and the table's runner: a hostile run in a prepared folder,
//! checked for one line, its exit status, and a folder left as it was.

use super::*;

pub(crate) fn model_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = with_model();
        std::fs::read(dir.path().join("m.tdm")).unwrap()
    })
}

/// Bytes of `q.tdm`, `m.tdm` quantized (made once, by the binary).
pub(crate) fn q_model_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.tdm"), model_bytes()).unwrap();
        let args = ["--calibration", "2000", "--out", "q.tdm"];
        ok(
            dir.path(),
            &[&["quantize", "--model", "m.tdm"][..], &args].concat(),
        );
        std::fs::read(dir.path().join("q.tdm")).unwrap()
    })
}

/// `q.tdm` with `edit` applied to its bytes and the CRC recomputed.
pub(crate) fn edited_q_model(edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut bytes = q_model_bytes().to_vec();
    edit(&mut bytes);
    let n = bytes.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// `q.tdm` whose last shift (the output layer's second channel, just before the 15
/// exponents and the CRC) is 63, one above the format's limit.
pub(crate) fn bad_shift_q_model() -> Vec<u8> {
    edited_q_model(|b| {
        let at = b.len() - 4 - 15 - 1;
        b[at] = 63;
    })
}

/// Bytes of a checkpoint of a short H = 32 run (made once, by the binary).
pub(crate) fn checkpoint_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let args = ["--steps", "20", "--batch", "8", "--hidden", "32"];
        let more = ["--checkpoint", "c.ckpt", "--out", "t.tdm"];
        ok(dir.path(), &[&["train"][..], &args, &more].concat());
        std::fs::read(dir.path().join("c.ckpt")).unwrap()
    })
}

/// The seed model of `m.tdm` with `edit` applied, re-encoded (a valid CRC).
pub(crate) fn edited_model(edit: impl FnOnce(&mut SeedModel, &mut Header)) -> Vec<u8> {
    let mut model = Box::new(SeedModel::ZERO);
    let header = tinyddpm_core::file::decode_into(model_bytes(), &mut *model).unwrap();
    let mut header = header;
    edit(&mut model, &mut header);
    modelfile::encode(&*model, &header).unwrap()
}

/// A model whose input and output biases are 3e38: every weight finite, so it loads, but
/// its output overflows.
pub(crate) fn huge_bias_model() -> Vec<u8> {
    edited_model(|m, _| {
        m.for_each_tensor_mut(|name, _, data| {
            let name = name.to_string();
            if name == "output_layer.bias" || name == "input_layer.0.bias" {
                data.fill(3e38);
            }
        })
    })
}

/// A model whose header (CRC-valid) holds betas near 1: ᾱ vanishes and sampling overflows.
pub(crate) fn absurd_betas_model() -> Vec<u8> {
    edited_model(|_, h| {
        h.schedule = ScheduleKind::Linear {
            beta_start: 0.99,
            beta_end: 0.999,
        }
    })
}

/// `m.tdm` with its last weight NaN and the CRC recomputed, as a bad writer would leave it.
pub(crate) fn nan_weight_model() -> Vec<u8> {
    let mut bytes = model_bytes().to_vec();
    let n = bytes.len();
    bytes[n - 8..n - 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// The checkpoint header as `tinyddpm::train` encodes it (postcard, after the 12-byte
/// preamble), mirrored here to craft a CRC-valid checkpoint with a hostile field.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct CheckpointHeader {
    pub(crate) hidden: u32,
    pub(crate) blocks: u32,
    pub(crate) timesteps: u32,
    pub(crate) schedule: ScheduleKind,
    pub(crate) params: u64,
    pub(crate) step: u64,
    pub(crate) steps: u64,
    pub(crate) batch: u64,
    pub(crate) lr: f32,
    pub(crate) seed: u64,
    pub(crate) ema: Option<f32>,
}

/// The short run's checkpoint with its header edited (CRC-valid).
pub(crate) fn edited_checkpoint(edit: impl FnOnce(&mut CheckpointHeader)) -> Vec<u8> {
    let bytes = checkpoint_bytes();
    let head_len = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
    let mut header: CheckpointHeader = postcard::from_bytes(&bytes[12..12 + head_len]).unwrap();
    edit(&mut header);
    let head = postcard::to_allocvec(&header).unwrap();
    let mut out = bytes[..10].to_vec();
    out.extend_from_slice(&(head.len() as u16).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&bytes[12 + head_len..bytes.len() - 4]);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The short run's checkpoint claiming a batch of a billion examples.
pub(crate) fn huge_batch_checkpoint() -> Vec<u8> {
    edited_checkpoint(|h| h.batch = 1_000_000_000)
}

/// The PyTorch state dict without tensor `drop`, and with `reshape` applied.
pub(crate) fn state_dict(drop: &str, reshape: Option<(&str, Vec<usize>)>) -> Vec<u8> {
    let bytes = std::fs::read(fixture("torch_model_3k.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .filter(|(name, _)| *name != drop)
        .map(|(name, view)| {
            let shape = match &reshape {
                Some((which, shape)) if *which == name => shape.clone(),
                _ => view.shape().to_vec(),
            };
            let view =
                safetensors::tensor::TensorView::new(view.dtype(), shape, view.data()).unwrap();
            (name.to_string(), view)
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// One step of a case's setup, in its folder (which always holds `m.tdm`).
#[derive(Clone, Copy)]
pub(crate) enum Setup {
    /// A file with these bytes.
    File(&'static str, &'static [u8]),
    /// A file with the bytes the function makes.
    Make(&'static str, fn() -> Vec<u8>),
    /// A folder.
    Dir(&'static str),
    /// A symbolic link: path, then what it points to.
    Symlink(&'static str, &'static str),
    /// A hard link: path, then the file it links.
    HardLink(&'static str, &'static str),
    /// A FIFO (named pipe).
    Fifo(&'static str),
    /// A character device like /dev/null (needs root).
    NullDevice(&'static str),
    /// A file another live writer holds: created and `flock`ed by the test for the whole
    /// run, as a writer in another PID namespace (whose pid this one cannot see) would.
    Held(&'static str),
}

/// Makes a file's bytes.
pub(crate) type Bytes = fn() -> Vec<u8>;

/// What a case's standard input holds.
#[derive(Clone, Copy, Default)]
pub(crate) enum Feed {
    /// Nothing (`/dev/null`).
    #[default]
    Nothing,
    /// These bytes, then the end.
    Bytes(fn() -> Vec<u8>),
    /// These bytes over and over, until the reader stops reading (like `yes`).
    Endless(&'static [u8]),
}

/// A run in a folder prepared by `setup`: it exits with `code`, and its stderr contains
/// `message` — as one line when the run fails, at most one line besides notes otherwise.
/// Afterwards every file of the folder is as it was, byte for byte (symbolic links, FIFOs
/// and devices included), no file but those in `created` appeared, and no temporary file is
/// left.
#[derive(Default)]
pub(crate) struct Case {
    pub(crate) setup: &'static [Setup],
    pub(crate) args: &'static [&'static str],
    pub(crate) code: i32,
    pub(crate) message: &'static str,
    pub(crate) created: &'static [&'static str],
    /// Needs root (device nodes): skipped, visibly, otherwise.
    pub(crate) root: bool,
    /// Run with `ulimit -f` of this many blocks (a full disk).
    pub(crate) file_limit_blocks: Option<u32>,
    /// Run with `ulimit -v` of this many KiB (an address-space limit).
    pub(crate) memory_limit_kib: Option<u32>,
    /// Run as user `nobody` under `prlimit --nproc` of this many processes (threads count):
    /// needs root to change user, skipped visibly otherwise.
    pub(crate) nproc: Option<u32>,
    pub(crate) env: &'static [(&'static str, &'static str)],
    pub(crate) stdin: Feed,
    /// Stdout is a pipe whose reader has gone (`| head -0`).
    pub(crate) closed_stdout: bool,
    /// A writer that opens this FIFO of the setup a while after the run began (past the
    /// moment the run says it waits) and writes these bytes.
    pub(crate) late_writer: Option<(&'static str, Bytes)>,
}

/// What a folder holds, recursively, without following links.
#[derive(Debug, PartialEq)]
pub(crate) enum Entry {
    File(Vec<u8>),
    Link(PathBuf),
    Dir,
    Other(String),
}

pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut all = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for e in std::fs::read_dir(dir.join(&rel)).unwrap() {
            let e = e.unwrap();
            let path = rel.join(e.file_name());
            let kind = e.file_type().unwrap();
            let entry = if kind.is_symlink() {
                Entry::Link(std::fs::read_link(e.path()).unwrap())
            } else if kind.is_dir() {
                todo.push(path.clone());
                Entry::Dir
            } else if kind.is_file() {
                Entry::File(std::fs::read(e.path()).unwrap())
            } else {
                Entry::Other(format!("{kind:?}"))
            };
            all.insert(path, entry);
        }
    }
    all
}

/// Whether this process runs as root (a new file's owner is the effective user).
pub(crate) fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().metadata().unwrap().uid() == 0
}

/// A command that runs what follows it as user `nobody` (65534).
fn as_nobody() -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    command
}

/// Whether a process limit can be tried here: root to become `nobody`, `setpriv` and
/// `prlimit` present, and the binary runnable by `nobody` (its folders searchable).
fn can_limit_processes() -> bool {
    static CAN: OnceLock<bool> = OnceLock::new();
    *CAN.get_or_init(|| {
        is_root()
            && as_nobody()
                .args(["prlimit", "--nproc=64", "--"])
                .arg(env!("CARGO_BIN_EXE_tinyddpm"))
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
    })
}

/// Prepares `setup` in `dir`; false when a step cannot be made here (then skipped). The
/// files [`Setup::Held`] names come back open and locked: the lock lasts while they live.
pub(crate) fn prepare(dir: &Path, setup: &[Setup]) -> Option<Vec<std::fs::File>> {
    std::fs::write(dir.join("m.tdm"), model_bytes()).unwrap();
    let mut held = Vec::new();
    for step in setup {
        let made = match *step {
            Setup::File(path, bytes) => std::fs::write(dir.join(path), bytes).is_ok(),
            Setup::Make(path, make) => std::fs::write(dir.join(path), make()).is_ok(),
            Setup::Dir(path) => std::fs::create_dir_all(dir.join(path)).is_ok(),
            Setup::Symlink(path, to) => std::os::unix::fs::symlink(to, dir.join(path)).is_ok(),
            Setup::HardLink(path, of) => std::fs::hard_link(dir.join(of), dir.join(path)).is_ok(),
            Setup::Fifo(path) => Command::new("mkfifo")
                .arg(dir.join(path))
                .status()
                .is_ok_and(|s| s.success()),
            Setup::NullDevice(path) => Command::new("mknod")
                .arg(dir.join(path))
                .args(["c", "1", "3"])
                .status()
                .is_ok_and(|s| s.success()),
            Setup::Held(path) => std::fs::write(dir.join(path), b"a live writer's part")
                .and_then(|()| std::fs::File::open(dir.join(path)))
                .and_then(|file| {
                    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
                    held.push(file);
                    Ok(())
                })
                .is_ok(),
        };
        if !made {
            return None;
        }
    }
    Some(held)
}

/// Feeds `feed` to the child's stdin from a thread; the thread ends when the feed does or
/// the child stops reading.
fn feed(
    stdin: Option<std::process::ChildStdin>,
    feed: Feed,
) -> Option<std::thread::JoinHandle<()>> {
    use std::io::Write;
    let mut stdin = stdin?;
    Some(std::thread::spawn(move || match feed {
        Feed::Nothing => {}
        Feed::Bytes(make) => {
            let _ = stdin.write_all(&make());
        }
        Feed::Endless(bytes) => {
            let block = bytes.repeat(65536 / bytes.len().max(1) + 1);
            while stdin.write_all(&block).is_ok() {}
        }
    }))
}

/// Opens the FIFO `path` for writing once a reader has it open (retrying while none has, so
/// a run that never opens it cannot hang the test), then writes `bytes`.
fn write_late(path: PathBuf, bytes: Vec<u8>, done: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::Ordering;
    // Past the run's grace period, so it has said what it waits for.
    std::thread::sleep(Duration::from_millis(600));
    while !done.load(Ordering::Relaxed) {
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&path);
        if let Ok(mut fifo) = opened {
            // Opened without blocking (no reader yet is an error, not a wait); written with.
            let flags = rustix::fs::fcntl_getfl(&fifo).unwrap();
            rustix::fs::fcntl_setfl(&fifo, flags - rustix::fs::OFlags::NONBLOCK).unwrap();
            let _ = fifo.write_all(&bytes);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` to its end (killed after ten minutes) with `case`'s stdin, stdout and late
/// writer; returns its exit status and stderr.
fn run_to_end(mut command: Command, case: &Case, dir: &Path) -> (std::process::ExitStatus, String) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stdin = match case.stdin {
        Feed::Nothing => Stdio::null(),
        _ => Stdio::piped(),
    };
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir(dir)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // A closed stdout: the reader is gone before the run prints.
    let reader = (!case.closed_stdout)
        .then(|| std::thread::spawn(move || std::io::copy(&mut { stdout }, &mut std::io::sink())));
    let feeder = feed(child.stdin.take(), case.stdin);
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let writer = case.late_writer.map(|(path, bytes)| {
        let (path, done) = (dir.join(path), done.clone());
        std::thread::spawn(move || write_late(path, bytes(), done))
    });
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let begin = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if begin.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            panic!("{:?}: still running after ten minutes", case.args);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    done.store(true, Ordering::Relaxed);
    for thread in [feeder, writer].into_iter().flatten() {
        thread.join().unwrap();
    }
    if let Some(reader) = reader {
        let _ = reader.join().unwrap();
    }
    (status, errors.join().unwrap())
}

pub(crate) fn run_case(case: &Case) {
    let what = case.args.join(" ");
    if case.root && !is_root() {
        eprintln!("skipped (needs root): {what}");
        return;
    }
    if case.nproc.is_some() && !can_limit_processes() {
        eprintln!(
            "skipped (a process limit needs root, setpriv and prlimit, and a binary user \
             nobody can run): {what}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(_held) = prepare(d, case.setup) else {
        eprintln!("skipped (its files cannot be made here): {what}");
        return;
    };
    let before = snapshot(d);
    let mut limits = String::new();
    if let Some(blocks) = case.file_limit_blocks {
        limits += &format!("trap '' XFSZ; ulimit -f {blocks}; ");
    }
    if let Some(kib) = case.memory_limit_kib {
        limits += &format!("ulimit -v {kib}; ");
    }
    let mut command = match case.nproc {
        Some(n) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
            let mut command = as_nobody();
            command.args(["prlimit", &format!("--nproc={n}"), "--"]);
            command
        }
        None => Command::new("sh"),
    };
    if case.nproc.is_some() {
        command.arg("sh");
    }
    command
        .arg("-c")
        .arg(format!("{limits}exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_tinyddpm"))
        .args(case.args)
        .envs(case.env.iter().copied());
    let (status, stderr) = run_to_end(command, case, d);
    let line = stderr.trim_end();
    assert_eq!(status.code(), Some(case.code), "{what}: {stderr}");
    // Notes aside, a failure is one line, and a success at most one.
    let said = line.lines().filter(|l| !l.starts_with("note: ")).count();
    match case.code {
        0 => assert!(said <= 1, "{what}: {stderr}"),
        _ => assert_eq!(said, 1, "{what}: {stderr}"),
    }
    assert!(
        line.contains(case.message),
        "{what}: {line:?} lacks {:?}",
        case.message
    );
    assert!(
        !line.contains("panicked") && !line.contains("internal error"),
        "{what}: {line}"
    );
    for line in line.lines() {
        assert!(line.len() < 400, "{what}: a line of {} bytes", line.len());
        // A cause is said once, not repeated by each layer of context.
        let parts: Vec<&str> = line.split(": ").filter(|p| p.len() > 12).collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(
                !parts[i + 1..].contains(p),
                "{what}: {p:?} repeated in {line}"
            );
        }
    }
    let mut after = snapshot(d);
    for name in case.created {
        assert!(
            after.remove(Path::new(name)).is_some(),
            "{what}: {name} not written"
        );
    }
    let temps: Vec<_> = after
        .keys()
        .filter(|p| p.to_string_lossy().ends_with(".tmp") && !before.contains_key(*p))
        .collect();
    assert!(temps.is_empty(), "{what}: left {temps:?}");
    let new: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert!(new.is_empty(), "{what}: wrote {new:?}");
    for (path, entry) in &before {
        assert!(
            after.get(path) == Some(entry),
            "{what}: changed {}",
            path.display()
        );
    }
}

/// `m.tdm` with one bit flipped in its weights.
pub(crate) fn flipped_model() -> Vec<u8> {
    let mut b = model_bytes().to_vec();
    b[1000] ^= 0x10;
    b
}

pub(crate) const U64_MAX: &str = "18446744073709551615";
