//! Files the switch relies on outside the ledger (the master key, the admin
//! token, settlement and payout files, the archive), written so that a
//! power cut leaves either no file or the whole file, never a torn or empty
//! one.
//!
//! The content goes to a temporary name in the same directory and is
//! synced; only then does it get its final name, and the directory is
//! synced so the name itself survives. A file that has its final name is
//! therefore complete and on disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Who may read a file written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The owner only (keys, tokens): mode 0600.
    Owner,
    /// As the process's umask allows.
    Default,
}

/// Writes `bytes` to `path`, replacing any file there, durably.
pub fn replace(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let tmp = stage(path, bytes, access)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    sync_parent(path)
}

/// Writes `bytes` to a new file `path`, durably; fails with
/// `AlreadyExists` and changes nothing if `path` exists.
pub fn create_new(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let tmp = stage(path, bytes, access)?;
    // A hard link refuses an existing name, where a rename would replace it.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked?;
    sync_parent(path)
}

/// Gives the synced temporary file `tmp` its final name `path` and syncs
/// the directory (for files written as a stream, such as archive files).
pub fn commit(tmp: &Path, path: &Path) -> io::Result<()> {
    fs::rename(tmp, path)?;
    sync_parent(path)
}

/// Syncs a directory, so the names created, renamed or removed in it
/// survive a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents, and syncs the parent of each one
/// created, so files later made durable inside it are not lost with its
/// name.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d);
        at = d.parent();
    }
    fs::create_dir_all(dir)?;
    for d in missing.iter().rev() {
        sync_parent(d)?;
    }
    Ok(())
}

/// Copies the file `from` to the new file `to`, durably, readable by its
/// owner only (what is copied here is ledger data: archive files into a
/// backup and back); fails if `to` exists.
pub fn copy_new(from: &Path, to: &Path) -> io::Result<u64> {
    if to.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists", to.display()),
        ));
    }
    let tmp = temporary_name(to);
    let copied = fs::copy(from, &tmp).and_then(|n| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
        }
        File::open(&tmp)?.sync_all()?;
        Ok(n)
    });
    match copied {
        Ok(n) => {
            commit(&tmp, to)?;
            Ok(n)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Copies the directory `from` and everything in it to `to`, which must
/// not exist, durably. Returns the files and bytes copied.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<(u64, u64)> {
    if to.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists", to.display()),
        ));
    }
    create_dir_all(to)?;
    let (mut files, mut bytes) = (0, 0);
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            let (f, b) = copy_tree(&src, &dst)?;
            files += f;
            bytes += b;
        } else {
            bytes += copy_new(&src, &dst)?;
            files += 1;
        }
    }
    Ok((files, bytes))
}

/// The temporary name `path` is staged under before [`commit`].
/// A hidden name beside `path`, so listings that skip dot files skip it.
pub fn temporary_name(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Creates (or truncates) `path` for writing, readable as `access` says.
pub fn create_file(path: &Path, access: Access) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if access == Access::Owner {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

fn stage(path: &Path, bytes: &[u8], access: Access) -> io::Result<PathBuf> {
    let tmp = temporary_name(path);
    let written = create_file(&tmp, access).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Syncs the directory that holds `path` (the current one for a bare
/// name), so its entry survives a power cut.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;

    fn dir(name: &str) -> Scratch {
        Scratch::new(&format!("durable-file-{name}"))
    }

    #[test]
    fn replace_leaves_the_new_content_and_no_temporary_file() {
        let d = dir("replace");
        let p = d.join("settlement.csv");
        replace(&p, b"old", Access::Default).unwrap();
        replace(&p, b"new", Access::Default).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::read_dir(&*d).unwrap().count(), 1);
    }

    #[test]
    fn copy_tree_copies_nested_files_and_refuses_an_existing_target() {
        let d = dir("copy-tree");
        create_dir_all(&d.join("from/blobs")).unwrap();
        fs::write(d.join("from/db"), b"log").unwrap();
        fs::write(d.join("from/blobs/1"), b"blob").unwrap();
        assert_eq!(copy_tree(&d.join("from"), &d.join("to")).unwrap(), (2, 7));
        assert_eq!(fs::read(d.join("to/blobs/1")).unwrap(), b"blob");
        assert!(copy_tree(&d.join("from"), &d.join("to")).is_err());
    }

    #[test]
    fn create_dir_all_makes_every_missing_level() {
        let d = dir("create-dir");
        let deep = d.join("a/b/c");
        create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all(&deep).unwrap();
    }

    #[test]
    fn create_new_refuses_an_existing_file_and_keeps_it() {
        let d = dir("create-new");
        let p = d.join("master.key");
        create_new(&p, b"first", Access::Owner).unwrap();
        let again = create_new(&p, b"second", Access::Owner);
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(fs::read_dir(&*d).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
