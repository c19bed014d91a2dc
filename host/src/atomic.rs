//! Writing files so that a reader never sees half of one: the bytes go to a temporary file
//! beside the target (`tempfile`, created with an unpredictable name), are flushed to disk,
//! and the temporary file is renamed over the target (atomic on POSIX filesystems). A crash
//! or a failed write leaves the previous file intact.
//!
//! Only regular files are replaced: a symbolic link is followed and its target written (in
//! the target's folder, so the rename stays atomic), and a directory, device, FIFO or socket
//! is refused, since renaming over one would destroy it (`/dev/null` turned into a file).
//!
//! A temporary is named `NAME.PID.XXXXXX.tmp`, `NAME` cut short when the whole would pass the
//! folder's name limit (a legal 250-byte target name must still be writable), and its writer
//! holds an exclusive `flock` on it until it is renamed or removed. A process killed mid-write
//! (kill -9, power loss) leaves its temporary behind, unlocked: the next successful write of
//! the same target removes those it can lock. The lock, not the pid, says whether a writer
//! lives: a writer in another PID namespace (another container sharing the folder) has a pid
//! that means nothing here, but its lock is seen by every process.
//!
//! Every temporary being written is listed ([`remove_live_temporaries`]) so that a process
//! stopped by a signal at a point where it cannot unwind still removes them.
//!
//! Errors name the target the user gave, never the temporary's path.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::TempPath;

/// Symbolic links followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The file a write to `path` replaces or creates: `path` with every symbolic link followed,
/// checked to be a regular file or nothing yet, in an existing folder.
pub fn target(path: &Path) -> io::Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(refused("is an empty path"));
    }
    // "out/" names a folder even when it does not exist: never treat it as a file name.
    if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
        return Err(refused("names a folder (ends with /), not a file"));
    }
    // Following every link, as the kernel does: this also sees through /proc's links to
    // pipes and terminals (/dev/stdout), which name no path.
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => return fs::canonicalize(path),
        Ok(meta) => {
            let why = describe(&meta.file_type());
            return Err(refused(&format!("{why}; only regular files are written")));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) if is_loop(&e) => return Err(refused(TOO_MANY_LINKS)),
        Err(e) => return Err(e),
    }
    // Nothing there yet, or a link to nothing yet: the file is created where the links lead.
    let mut current = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(folder) => folder.join(link),
                    None => link,
                };
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return new_file(current),
            // It appeared since: let the caller try again.
            Ok(_) => return Err(io::Error::other("changed while being checked")),
            Err(e) => return Err(e),
        }
    }
    Err(refused(TOO_MANY_LINKS))
}

const TOO_MANY_LINKS: &str = "has too many levels of symbolic links";

fn is_loop(e: &io::Error) -> bool {
    #[cfg(unix)]
    return e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error());
    #[cfg(not(unix))]
    false
}

/// A path that does not exist yet: it needs a file name and an existing folder.
fn new_file(path: PathBuf) -> io::Result<PathBuf> {
    if path.file_name().is_none() {
        return Err(refused("names a folder, not a file"));
    }
    let folder = folder_of(&path);
    if !folder.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("folder {} does not exist", folder.display()),
        ));
    }
    Ok(path)
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.to_string())
}

/// A file type in words, for the refusal message.
fn describe(kind: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_char_device() || kind.is_block_device() {
            return "is a device";
        }
        if kind.is_fifo() {
            return "is a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "is a socket";
        }
    }
    if kind.is_dir() {
        "is a directory"
    } else {
        "is not a regular file"
    }
}

/// A file being written: bytes go to a temporary file beside the target;
/// [`AtomicFile::commit`] puts it in place. Dropped without a commit, the temporary file is
/// removed and the target is untouched.
pub struct AtomicFile {
    // The plain file, not tempfile's wrapper, whose errors would name the temporary path.
    // Its open file description holds the temporary's `flock` while it lives.
    writer: BufWriter<fs::File>,
    /// Removes the temporary file when dropped.
    temp: TempPath,
    target: PathBuf,
    /// Keeps the temporary in [`LIVE`] while it may exist.
    _listed: Listed,
}

/// Attempts at a temporary that a concurrent cleaner did not remove between its creation
/// and its lock (each attempt losing that race needs another writer's cleanup at that
/// instant: two in a row are already unlikely).
const CREATE_ATTEMPTS: usize = 8;

impl AtomicFile {
    /// Starts writing `path` (see [`target`] for what it may name).
    pub fn create(path: &Path) -> io::Result<Self> {
        let target = target(path)?;
        let folder = folder_of(&target);
        let name = target.file_name().unwrap_or(OsStr::new("out"));
        let pid = std::process::id();
        let mut prefix = temp_stem(name, name_limit(folder), pid).to_os_string();
        prefix.push(format!(".{pid}."));
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(&prefix)
            .suffix(".tmp")
            .rand_bytes(RANDOM_CHARS);
        // What `File::create` gives (the umask still applies), not tempfile's private 0600:
        // the result is the user's model or figure, not a secret.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        for _ in 0..CREATE_ATTEMPTS {
            let (file, temp) = builder
                .tempfile_in(folder)
                .map_err(without_path)?
                .into_parts();
            lock(&file)?;
            // A cleaner that locked the new file before this writer did has removed it: the
            // lock is then on a file no name leads to, and the write would be lost.
            if same_file(&file, &temp) {
                let _listed = Listed::new(temp.to_path_buf());
                return Ok(Self {
                    writer: BufWriter::new(file),
                    temp,
                    target,
                    _listed,
                });
            }
        }
        Err(io::Error::other(
            "the temporary file beside it was removed by another process each time it was made",
        ))
    }

    /// Flushes the bytes to disk, renames the temporary file over the target, then removes
    /// the temporaries that earlier, killed writers of the same target left behind.
    pub fn commit(self) -> io::Result<()> {
        let file = self.writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        self.temp.persist(&self.target).map_err(|e| e.error)?;
        // The lock goes with the file, after the rename: until then the temporary is live.
        drop(file);
        remove_stale(&self.target);
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Random characters in a temporary's name (tempfile's default).
const RANDOM_CHARS: usize = 6;
/// The longest file name assumed where the folder's own limit cannot be read (POSIX's
/// usual `NAME_MAX`).
const DEFAULT_NAME_LIMIT: usize = 255;

/// The longest file name the filesystem of `folder` takes.
fn name_limit(folder: &Path) -> usize {
    #[cfg(unix)]
    if let Ok(stat) = rustix::fs::statvfs(folder) {
        return usize::try_from(stat.f_namemax).unwrap_or(DEFAULT_NAME_LIMIT);
    }
    let _ = folder;
    DEFAULT_NAME_LIMIT
}

/// The part of the target's `name` that starts its temporaries' names: all of it when
/// `NAME.PID.XXXXXX.tmp` fits in `limit` bytes, else as much as fits (whole characters when
/// the name is UTF-8).
fn temp_stem(name: &OsStr, limit: usize, pid: u32) -> &OsStr {
    let suffix = format!(".{pid}.").len() + RANDOM_CHARS + ".tmp".len();
    let room = limit.saturating_sub(suffix).max(1);
    let bytes = name.as_encoded_bytes();
    if bytes.len() <= room {
        return name;
    }
    let mut cut = room;
    if let Ok(text) = std::str::from_utf8(bytes) {
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
    }
    cut_name(name, cut)
}

#[cfg(unix)]
fn cut_name(name: &OsStr, len: usize) -> &OsStr {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(&name.as_bytes()[..len])
}

#[cfg(not(unix))]
fn cut_name(name: &OsStr, _: usize) -> &OsStr {
    name
}

/// tempfile's error without the temporary's path, which the user never gave: the callers
/// name the target.
fn without_path(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), "cannot create a temporary file beside it"),
    }
}

/// Takes the writer's exclusive lock on its temporary (waiting out a cleaner that holds it
/// for the instant of a removal).
fn lock(file: &fs::File) -> io::Result<()> {
    #[cfg(unix)]
    rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive)?;
    let _ = file;
    Ok(())
}

/// Whether `path` still names the open `file`.
fn same_file(file: &fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// The temporaries this process is writing now.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// An entry of [`LIVE`], removed when dropped.
struct Listed(PathBuf);

impl Listed {
    fn new(path: PathBuf) -> Self {
        live().push(path.clone());
        Self(path)
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        live().retain(|p| *p != self.0);
    }
}

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A writer that panicked leaves the list as it was: still the right list.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary this process is writing now, for a process about to exit
/// without unwinding (a second Ctrl-C): no target is touched, nothing is left behind.
pub fn remove_live_temporaries() {
    for path in live().drain(..) {
        let _ = fs::remove_file(path);
    }
}

/// Whether `name` is a temporary file of a write of `target_name`:
/// `STEM.PID.XXXXXX.tmp` (this module's, the stem the target's name or its cut, see
/// [`temp_stem`]) or `NAME.PID.tmp` (what earlier versions wrote). Whether its writer
/// still lives is the lock's to say ([`remove_if_unlocked`]).
fn is_temporary_of(name: &OsStr, target_name: &OsStr, limit: usize) -> bool {
    let Some(middle) = name
        .to_str()
        .and_then(|n| n.strip_suffix(".tmp"))
        .map(|n| n.as_bytes())
    else {
        return false;
    };
    let target_bytes = target_name.as_encoded_bytes();
    let random_ok = |r: &[u8]| r.len() == RANDOM_CHARS && r.iter().all(u8::is_ascii_alphanumeric);
    let pid_of = |p: &[u8]| std::str::from_utf8(p).ok()?.parse::<u32>().ok();
    // NAME.PID.tmp: the whole name, then a pid.
    if let Some(rest) = middle.strip_prefix(target_bytes)
        && let Some(pid) = rest.strip_prefix(b".")
        && pid_of(pid).is_some()
    {
        return true;
    }
    // STEM.PID.XXXXXX: read from the end, since the stem may hold dots.
    let mut parts = middle.rsplitn(3, |&b| b == b'.');
    let (Some(random), Some(pid), Some(stem)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Some(pid) = pid_of(pid) else {
        return false;
    };
    random_ok(random) && stem == temp_stem(target_name, limit, pid).as_encoded_bytes()
}

/// Removes the temporary at `path` unless a live writer holds its lock. The cleaner holds
/// the lock while it removes the file, so a writer that created it a moment ago and has not
/// locked it yet finds it gone and makes another ([`AtomicFile::create`]).
fn remove_if_unlocked(path: &Path) {
    let Ok(file) = fs::File::open(path) else {
        return;
    };
    #[cfg(unix)]
    {
        use rustix::fs::{FlockOperation, flock};
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = fs::remove_file(path);
        }
    }
    drop(file);
}

/// Best effort: a temporary that cannot be removed is left as it was.
fn remove_stale(target: &Path) {
    let Some(target_name) = target.file_name() else {
        return;
    };
    let folder = folder_of(target);
    let limit = name_limit(folder);
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        if is_temporary_of(&entry.file_name(), target_name, limit)
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            remove_if_unlocked(&entry.path());
        }
    }
}

/// Writes whatever `fill` writes to `path`, atomically.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut AtomicFile) -> io::Result<()>,
) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    fill(&mut file)?;
    file.commit()
}

/// Writes `bytes` to `path`, atomically.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |w| w.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn failed_write_keeps_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.tdm");
        write(&path, b"old").unwrap();
        let err = write_with(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("killed"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["model.tdm"]);
        write(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_special_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("real")).unwrap();
        std::os::unix::fs::symlink("real/file.csv", d.join("link.csv")).unwrap();
        write(&d.join("link.csv"), b"through").unwrap();
        assert_eq!(fs::read(d.join("real/file.csv")).unwrap(), b"through");
        assert!(
            fs::symlink_metadata(d.join("link.csv"))
                .unwrap()
                .is_symlink()
        );
        write(&d.join("link.csv"), b"again").unwrap();
        assert_eq!(fs::read(d.join("real/file.csv")).unwrap(), b"again");
        let e = write(&d.join("real"), b"x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "is a directory; only regular files are written"
        );
        let e = write(&d.join("real/"), b"x").unwrap_err();
        assert!(e.to_string().contains("ends with /"), "{e}");
        let e = write(&d.join("none/x"), b"x").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        let e = write(&d.join("loop"), b"x").unwrap_err();
        assert_eq!(e.to_string(), TOO_MANY_LINKS);
        assert_eq!(names(d), ["link.csv", "loop", "real"]);
    }

    #[test]
    fn unlocked_temporaries_of_the_target_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Killed writers' leftovers: nobody holds their lock, whatever their pid says (1 runs
        // here, and a pid of another PID namespace may run too).
        let stale = [
            "m.tdm.99999999.tmp",
            "m.tdm.99999999.aB3xYz.tmp",
            "m.tdm.1.aB3xYz.tmp",
        ];
        // Another target's, a user's own file, and a live writer's (locked, of a pid this
        // process cannot see: a writer in another container).
        let kept = [
            "n.tdm.99999999.tmp",
            "m.tdm.backup.tmp",
            "m.tdm.77777777.Zz9Zz9.tmp",
        ];
        for name in stale.iter().chain(&kept) {
            fs::write(d.join(name), b"leftover").unwrap();
        }
        let live = fs::File::open(d.join(kept[2])).unwrap();
        #[cfg(unix)]
        rustix::fs::flock(&live, rustix::fs::FlockOperation::LockExclusive).unwrap();
        write(&d.join("m.tdm"), b"model").unwrap();
        let mut want: Vec<&str> = kept.to_vec();
        want.push("m.tdm");
        want.sort();
        assert_eq!(names(d), want);
        drop(live);
        write(&d.join("m.tdm"), b"model").unwrap();
        assert_eq!(
            names(d),
            ["m.tdm", "m.tdm.backup.tmp", "n.tdm.99999999.tmp"]
        );
    }

    #[test]
    fn a_name_at_the_limit_is_written_and_its_cut_temporaries_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let limit = name_limit(d);
        let long = format!("{}.csv", "é".repeat((limit - 4) / 2));
        assert!(
            long.len() <= limit && long.len() > limit - 2,
            "{}",
            long.len()
        );
        // A killed writer's temporary of the long name, cut as this module cuts it.
        let stem = temp_stem(OsStr::new(&long), limit, 99_999_999);
        let leftover = format!("{}.99999999.q1W2e3.tmp", stem.to_str().unwrap());
        assert!(leftover.len() <= limit);
        fs::write(d.join(&leftover), b"half").unwrap();
        write(&d.join(&long), b"data").unwrap();
        assert_eq!(fs::read(d.join(&long)).unwrap(), b"data");
        assert_eq!(names(d), std::slice::from_ref(&long));
        // A shorter name that the cut stem starts is another target.
        let other = format!("{}.99999999.q1W2e3.tmp", &long[..limit / 2 - 1]);
        assert!(!is_temporary_of(
            OsStr::new(&other),
            OsStr::new(&long),
            limit
        ));
    }

    #[test]
    fn a_temporary_that_cannot_be_made_is_named_by_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x".repeat(name_limit(dir.path()) + 1));
        let e = write(&path, b"x").unwrap_err();
        assert!(!e.to_string().contains(".tmp"), "{e}");
    }

    #[test]
    fn live_temporaries_are_listed_until_committed_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = AtomicFile::create(&d.join("a.csv")).unwrap();
        let temp = file.temp.to_path_buf();
        assert!(live().contains(&temp));
        drop(file);
        assert!(!live().contains(&temp));
        // Removing them all is left to the CLI's test of a second Ctrl-C: here it would
        // remove the temporaries of the tests running beside this one.
    }
}
