//! Writing files so that a reader never sees half of one: the bytes go to a temporary file
//! beside the target (`tempfile`, created with an unpredictable name), are flushed to disk,
//! and the temporary file is renamed over the target (atomic on POSIX filesystems). A crash
//! or a failed write leaves the previous file intact.
//!
//! Only regular files are replaced: a symbolic link is followed and its target written (in
//! the target's folder, so the rename stays atomic), and a directory, device, FIFO or socket
//! is refused, since renaming over one would destroy it (`/dev/null` turned into a file).
//!
//! A process killed mid-write (kill -9, power loss) leaves its temporary file behind. Its
//! name starts with the target's name and the writer's process id, `NAME.PID.XXXXXX.tmp`, so
//! the next successful write of the same target removes those whose process is gone.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

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
    writer: BufWriter<fs::File>,
    /// Removes the temporary file when dropped.
    temp: TempPath,
    target: PathBuf,
}

impl AtomicFile {
    /// Starts writing `path` (see [`target`] for what it may name).
    pub fn create(path: &Path) -> io::Result<Self> {
        let target = target(path)?;
        let name = target.file_name().unwrap_or(OsStr::new("out"));
        let mut prefix = name.to_os_string();
        prefix.push(format!(".{}.", std::process::id()));
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // What `File::create` gives (the umask still applies), not tempfile's private 0600:
        // the result is the user's model or figure, not a secret.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        let (file, temp) = builder.tempfile_in(folder_of(&target))?.into_parts();
        Ok(Self {
            writer: BufWriter::new(file),
            temp,
            target,
        })
    }

    /// Flushes the bytes to disk, renames the temporary file over the target, then removes
    /// the temporaries that earlier, killed writers of the same target left behind.
    pub fn commit(self) -> io::Result<()> {
        let file = self.writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        self.temp.persist(&self.target).map_err(|e| e.error)?;
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

/// Whether `name` is a temporary file of a write of `target_name` by a process that is no
/// longer running: `NAME.PID.XXXXXX.tmp` (this module's) or `NAME.PID.tmp` (what earlier
/// versions wrote). This process's own are stale too: it writes one target at a time and has
/// just finished.
fn is_stale(name: &str, target_name: &str) -> bool {
    let Some(middle) = name
        .strip_prefix(target_name)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".tmp"))
    else {
        return false;
    };
    let (pid, random) = middle.split_once('.').unwrap_or((middle, ""));
    let random_ok = random.is_empty()
        || (random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric()));
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    random_ok && (pid == std::process::id() || process_gone(pid))
}

/// Whether no process `pid` runs. Without `/proc` this cannot be known: then it is assumed
/// to run, and its file is left alone.
fn process_gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Best effort: a temporary that cannot be removed is left as it was.
fn remove_stale(target: &Path) {
    let Some(target_name) = target.file_name().and_then(OsStr::to_str) else {
        return;
    };
    let Ok(entries) = fs::read_dir(folder_of(target)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| is_stale(n, target_name))
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = fs::remove_file(entry.path());
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
    fn stale_temporaries_of_the_target_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A pid above Linux's maximum (2^22) never runs; this process's own is stale too.
        let own = std::process::id();
        let stale = [
            "m.tdm.99999999.tmp".to_string(),
            "m.tdm.99999999.aB3xYz.tmp".to_string(),
            format!("m.tdm.{own}.Q1w2E3.tmp"),
        ];
        // Another target's, a live process's (pid 1) and a user's own file are kept.
        let kept = [
            "n.tdm.99999999.tmp",
            "m.tdm.1.aB3xYz.tmp",
            "m.tdm.backup.tmp",
        ];
        for name in stale.iter().map(String::as_str).chain(kept) {
            fs::write(d.join(name), b"leftover").unwrap();
        }
        write(&d.join("m.tdm"), b"model").unwrap();
        let mut want: Vec<&str> = kept.to_vec();
        want.push("m.tdm");
        want.sort();
        if Path::new("/proc/self").exists() {
            assert_eq!(names(d), want);
        }
    }
}
