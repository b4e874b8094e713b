//! The power-cut image: what a directory watched by `powercut.so` would
//! hold after a power cut at the moment its process was killed.
//!
//! `powercut.so` (built here from `powercut.c` with the system's C
//! compiler) keeps the durable part of the directory in a state directory:
//! each file's content as of its last fsync, and the names as of each
//! directory's last fsync. [`image`] builds the directory from it and from
//! the files as they are, taking of each file's writes since its last sync
//! nothing, everything, or a random subset of 4 KiB pages (a torn write).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Lcg;

const PAGE: usize = 4096;

/// Builds `powercut.so` once per test binary and returns its path.
pub fn library() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/powercut.c");
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("powercut.so");
            let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
                .args([
                    "-O2",
                    "-Wall",
                    "-Wno-format-truncation",
                    "-shared",
                    "-fPIC",
                    "-o",
                ])
                .arg(&out)
                .arg(&src)
                .args(["-ldl", "-lpthread"])
                .status()
                .expect("a C compiler (cc) to build the power-cut library");
            assert!(status.success(), "building {}", src.display());
            out
        })
        .clone()
}

/// The environment that makes a process load `powercut.so`, watching
/// `dir` and keeping the durable state in `state`.
pub fn env(dir: &Path, state: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), library().display().to_string()),
        ("POWERCUT_DIR".into(), dir.display().to_string()),
        ("POWERCUT_STATE".into(), state.display().to_string()),
    ]
}

/// What of the writes not yet synced the power cut leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsynced {
    /// Nothing: the disk kept only what was synced.
    Nothing,
    /// Everything: the cut came just after the disk wrote it all.
    Everything,
    /// Each 4 KiB page written since the last sync, or not, at random.
    Torn,
}

impl Unsynced {
    pub fn pick(rng: &mut Lcg) -> Unsynced {
        match rng.below(3) {
            0 => Unsynced::Nothing,
            1 => Unsynced::Everything,
            _ => Unsynced::Torn,
        }
    }
}

/// What building an image did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Built {
    pub files: usize,
    /// Pages written since their file's last sync.
    pub unsynced_pages: usize,
    /// Of those, pages the image took (a torn write takes some).
    pub pages_taken: usize,
}

/// Builds in `out` (which must not exist) the image of `real`, the
/// directory a process watched by `powercut.so` with `state` was killed in.
pub fn image(state: &Path, real: &Path, out: &Path, unsynced: Unsynced, rng: &mut Lcg) -> Built {
    let names = fs::read_to_string(state.join("names")).expect("the power-cut state's names");
    let live: HashSet<String> = fs::read_to_string(state.join("live"))
        .expect("the power-cut state's live inodes")
        .lines()
        .map(str::to_owned)
        .collect();
    fs::create_dir_all(out).unwrap();
    let mut built = Built::default();
    let mut files = Vec::new();
    for line in names.lines() {
        match line.split_once(' ') {
            Some(("D", path)) => fs::create_dir_all(out.join(path)).unwrap(),
            Some(("F", rest)) => {
                let (inode, path) = rest.split_once(' ').expect("F <ino>.<gen> <path>");
                files.push((inode.to_owned(), path.to_owned()));
            }
            _ => panic!("unreadable power-cut names line {line:?}"),
        }
    }
    for (inode, path) in files {
        let durable = fs::read(state.join("inodes").join(&inode)).unwrap_or_default();
        // The real file holds what was written since only if it is the
        // same file: same name, same inode, the same generation of it.
        let now = fs::metadata(real.join(&path)).ok().filter(|m| {
            use std::os::unix::fs::MetadataExt;
            inode.split_once('.').map(|(ino, _)| ino) == Some(&m.ino().to_string())
                && live.contains(&inode)
        });
        let content = match now {
            Some(_) => {
                let current = fs::read(real.join(&path)).unwrap();
                tear(&durable, &current, unsynced, rng, &mut built)
            }
            None => durable,
        };
        let dest = out.join(&path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&dest, content).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = fs::metadata(real.join(&path)) {
                let _ =
                    fs::set_permissions(&dest, fs::Permissions::from_mode(m.permissions().mode()));
            }
        }
        built.files += 1;
    }
    built
}

/// A file after the cut: `durable` with the pages of `current` that differ
/// from it taken as `unsynced` says.
fn tear(
    durable: &[u8],
    current: &[u8],
    unsynced: Unsynced,
    rng: &mut Lcg,
    built: &mut Built,
) -> Vec<u8> {
    let pages = durable.len().max(current.len()).div_ceil(PAGE);
    let page = |data: &[u8], p: usize| -> Vec<u8> {
        let start = (p * PAGE).min(data.len());
        let end = ((p + 1) * PAGE).min(data.len());
        data[start..end].to_vec()
    };
    let mut out = durable.to_vec();
    // The length after the cut: the synced one, the current one, or (torn)
    // either.
    let len = match unsynced {
        Unsynced::Nothing => durable.len(),
        Unsynced::Everything => current.len(),
        Unsynced::Torn if rng.below(2) == 0 => durable.len(),
        Unsynced::Torn => current.len(),
    };
    for p in 0..pages {
        let (old, new) = (page(durable, p), page(current, p));
        if old == new {
            continue;
        }
        built.unsynced_pages += 1;
        let take = match unsynced {
            Unsynced::Nothing => false,
            Unsynced::Everything => true,
            Unsynced::Torn => rng.below(2) == 0,
        };
        if take {
            built.pages_taken += 1;
            let start = p * PAGE;
            if out.len() < start + new.len() {
                out.resize(start + new.len(), 0);
            }
            out[start..start + new.len()].copy_from_slice(&new);
        }
    }
    // Past the end of what was synced, a page not taken reads as zeros.
    out.resize(len, 0);
    out
}
