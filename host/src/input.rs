//! Opening the files a command reads, once each: a regular file, or a pipe, FIFO, terminal
//! or device read as a stream (`cat m.tdm | tinyddpm inspect /dev/stdin`, `--model <(…)`).
//! Every reader in this crate takes the opened file, so nothing is opened twice: a second
//! open of a pipe would find it drained, of a FIFO would wait for a second writer.
//!
//! Opening a FIFO for reading blocks until a writer opens it, and reading a FIFO no writer
//! has opened yet returns end-of-file at once. So a FIFO is opened without blocking
//! (`O_NONBLOCK`), then waited on with `poll` until it has data or its writer has come and
//! gone (Linux reports no hang-up on a FIFO no writer ever opened): the wait is said through
//! the caller's `waiting`, bounded when the caller asks, and the file is then read blocking.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a stream may stay silent before the caller is told it is being waited for.
const GRACE: Duration = Duration::from_millis(200);

/// How long to wait for a stream's writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patience {
    /// As long as it takes, as Unix tools do.
    Unbounded,
    /// At most this long; then the open fails ([`io::ErrorKind::TimedOut`]).
    Bounded(Duration),
}

/// Opens `path` for a reader handed only a path (no flag to name in a note): a FIFO is
/// waited for as Unix tools wait, silently.
pub fn open_path(path: &Path) -> io::Result<File> {
    open(path, Patience::Unbounded, || {})
}

/// Opens `path` for reading; a stream (FIFO, pipe, socket, terminal, device) is waited on
/// until it can be read, calling `waiting` once if that takes longer than a moment. A
/// folder is refused.
pub fn open(path: &Path, patience: Patience, waiting: impl FnOnce()) -> io::Result<File> {
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory, not a file",
        ));
    }
    if !meta.is_file() {
        wait_readable(&file, patience, waiting)?;
    }
    set_blocking(&file)?;
    Ok(file)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nonblock)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    File::open(path)
}

#[cfg(unix)]
fn set_blocking(file: &File) -> io::Result<()> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let flags = fcntl_getfl(file)?;
    Ok(fcntl_setfl(file, flags - OFlags::NONBLOCK)?)
}

#[cfg(not(unix))]
fn set_blocking(_: &File) -> io::Result<()> {
    Ok(())
}

/// Waits until `file` has data or its writer has closed it.
#[cfg(unix)]
fn wait_readable(file: &File, patience: Patience, waiting: impl FnOnce()) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let ready = |timeout: Option<Duration>| -> io::Result<bool> {
        let mut fds = [PollFd::new(file, PollFlags::IN)];
        let timeout = timeout.map(|t| Timespec {
            tv_sec: t.as_secs() as i64,
            tv_nsec: t.subsec_nanos() as _,
        });
        loop {
            match poll(&mut fds, timeout.as_ref()) {
                Ok(n) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let begin = Instant::now();
    if ready(Some(GRACE))? {
        return Ok(());
    }
    waiting();
    match patience {
        Patience::Unbounded => ready(None).map(|_| ()),
        Patience::Bounded(limit) => match ready(Some(limit.saturating_sub(begin.elapsed())))? {
            true => Ok(()),
            false => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "nothing to read after {} s (a FIFO with no writer?)",
                    limit.as_secs()
                ),
            )),
        },
    }
}

#[cfg(not(unix))]
fn wait_readable(_: &File, _: Patience, _: impl FnOnce()) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::{Read, Write};
    use std::process::Command;

    use super::*;

    fn fifo(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("fifo");
        assert!(
            Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
        path
    }

    #[test]
    fn a_fifo_without_a_writer_is_waited_for_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path());
        let mut told = false;
        let begin = Instant::now();
        let e = open(&path, Patience::Bounded(Duration::from_millis(500)), || {
            told = true
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(told);
        assert!(begin.elapsed() >= Duration::from_millis(500));
    }

    #[test]
    fn a_fifo_is_read_whole_once_its_writer_comes() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path());
        let writer_path = path.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .open(writer_path)
                .unwrap();
            w.write_all(b"0.5,0.25\n").unwrap();
        });
        let mut told = false;
        let mut file = open(&path, Patience::Unbounded, || told = true).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        writer.join().unwrap();
        assert_eq!(text, "0.5,0.25\n");
        assert!(told);
    }

    #[test]
    fn folders_are_refused_and_files_open_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path(), Patience::Unbounded, || panic!("waited")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::IsADirectory);
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let mut text = String::new();
        open(&dir.path().join("f"), Patience::Unbounded, || {
            panic!("waited")
        })
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
        assert_eq!(text, "x");
    }
}
