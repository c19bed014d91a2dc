//! What a command checks about its files and resources before it starts work, so that a
//! long run is not lost at its end and no file is lost at all: every output can be written
//! (a regular file or nothing yet, in an existing folder; see [`tinyddpm::atomic::target`]),
//! no output is also an input or another output, and the disk can hold what is asked for.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use tinyddpm::atomic;

/// A file's identity: its device and inode when it exists, else the absolute path it would
/// be created at (its folder canonicalised, so `a`, `./a` and `dir/../a` agree).
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    Path(PathBuf),
}

fn existing(path: &Path) -> Option<Identity> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(Identity::Inode(meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        std::fs::canonicalize(path).ok().map(Identity::Path)
    }
}

/// The identity of the file a write to `path` replaces or creates.
fn output_identity(flag: &str, path: &Path) -> Result<Identity> {
    let target = atomic::target(path)
        .map_err(|e| anyhow!("cannot write {} ({flag}): {e}", path.display()))?;
    if let Some(id) = existing(&target) {
        return Ok(id);
    }
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let folder = std::fs::canonicalize(folder)
        .map_err(|e| anyhow!("cannot write {} ({flag}): {e}", path.display()))?;
    Ok(Identity::Path(
        folder.join(target.file_name().unwrap_or_default()),
    ))
}

/// Checks that every output can be written and that no output is the same file as an input
/// or as another output, except the `(input, output)` pairs in `allowed`. Flags name the
/// files in the messages (`--out`, `--model`, or a file name for `demo`).
pub fn check(
    inputs: &[(&str, &Path)],
    outputs: &[(&str, &Path)],
    allowed: &[(&str, &str)],
) -> Result<()> {
    let mut seen: Vec<(&str, Identity)> = Vec::new();
    for &(flag, path) in outputs {
        let id = output_identity(flag, path)?;
        for &(input, input_path) in inputs {
            if !allowed.contains(&(input, flag)) && existing(input_path).as_ref() == Some(&id) {
                bail!(
                    "{flag} {} is the same file as {input}: refusing to overwrite an input",
                    path.display()
                );
            }
        }
        if let Some((other, _)) = seen.iter().find(|(_, seen_id)| *seen_id == id) {
            bail!(
                "{other} and {flag} are the same file ({}): each output needs its own",
                path.display()
            );
        }
        seen.push((flag, id));
    }
    Ok(())
}

/// Fails unless the filesystem of `path` has `bytes` free (`None`: more than can be counted).
/// Where free space cannot be known, nothing is checked: the write itself then fails cleanly.
pub fn check_space(path: &Path, bytes: Option<u64>, what: &str) -> Result<()> {
    let Some(free) = free_space(path) else {
        return Ok(());
    };
    match bytes {
        Some(b) if b <= free => Ok(()),
        Some(b) => bail!(
            "{what} need at least {} and the filesystem of {} has {} free",
            size(b),
            path.display(),
            size(free)
        ),
        None => bail!("{what} need more bytes than any disk holds"),
    }
}

#[cfg(unix)]
fn free_space(path: &Path) -> Option<u64> {
    let target = atomic::target(path).ok()?;
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let stat = rustix::fs::statvfs(folder).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(not(unix))]
fn free_space(_: &Path) -> Option<u64> {
    None
}

/// Bytes in words: "3.2 GB".
fn size(bytes: u64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_files_are_found_by_inode_or_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("m.tdm"), b"model").unwrap();
        let m = d.join("m.tdm");
        let again = d.join(".").join("m.tdm");
        let e = check(&[("--model", &m)], &[("--out", &again)], &[]).unwrap_err();
        assert!(e.to_string().contains("same file as --model"), "{e}");
        let (a, b) = (d.join("new.csv"), d.join("./new.csv"));
        let e = check(&[], &[("--out", &a), ("--losses", &b)], &[]).unwrap_err();
        assert!(
            e.to_string().starts_with("--out and --losses are the same"),
            "{e}"
        );
        check(
            &[("--resume", &m)],
            &[("--checkpoint", &again)],
            &[("--resume", "--checkpoint")],
        )
        .unwrap();
        check(&[("--model", &m)], &[("--out", &a)], &[]).unwrap();
    }

    #[test]
    fn sizes_read_as_words() {
        assert_eq!(size(12), "12 bytes");
        assert_eq!(size(3_200_000_000), "3.2 GB");
    }
}
