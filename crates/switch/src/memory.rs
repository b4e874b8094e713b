//! How much memory this process may use, and the embedded ledger's page
//! cache sized from it when the configuration does not say.
//!
//! The page cache is most of the switch's resident memory. The 30-minute
//! soak (`benches/soak.sh 30 2500 64`, about 700,000 live transactions, a
//! ledger of 2 GB) had its p50 and p99 rise two- to fourfold after minute
//! 20 with a cache of 256 MB and stayed flat with 1 GB; a shop's box with 2 GB of memory
//! cannot give it 1 GB. So the default follows the machine.

use std::path::Path;

/// The page cache when `[storage] cache_mb` is absent: this share of the
/// usable memory...
const CACHE_SHARE: u64 = 8;
/// ...but no less than this (a ledger needs some cache to run at all)...
const CACHE_MIN: u64 = 128 << 20;
/// ...and no more than this: what the soak needed with room to spare.
const CACHE_MAX: u64 = 4 << 30;
/// When the memory cannot be read (not Linux, no `/proc`).
const CACHE_UNKNOWN: u64 = 256 << 20;

/// The page cache in bytes: `configured_mb` if given, else an eighth of
/// the usable memory between 128 MB and 4 GB (256 MB if unknown).
pub fn ledger_cache_bytes(configured_mb: Option<u64>) -> u64 {
    match configured_mb {
        Some(mb) => mb.saturating_mul(1 << 20),
        None => cache_for(usable_bytes()),
    }
}

fn cache_for(usable: Option<u64>) -> u64 {
    usable.map_or(CACHE_UNKNOWN, |m| {
        (m / CACHE_SHARE).clamp(CACHE_MIN, CACHE_MAX)
    })
}

/// The memory this process may use: the machine's, or its cgroup's limit
/// if lower (a container, a systemd `MemoryMax=`).
pub fn usable_bytes() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| mem_total(&s))?;
    let limit = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| cgroup_limit(&s, Path::new("/sys/fs/cgroup")));
    Some(limit.map_or(total, |l| l.min(total)))
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let kb: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => kb.checked_mul(1024),
        _ => None,
    }
}

/// The lowest memory limit on the way from this process's cgroup (as
/// `/proc/self/cgroup` names it) up to the root under `root`: cgroup v1's
/// `memory` hierarchy and v2's unified one, whichever is mounted. "No
/// limit" (`max`, or v1's huge number) is no lower than the machine.
fn cgroup_limit(cgroup: &str, root: &Path) -> Option<u64> {
    let mut limits = Vec::new();
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (dir, file) = if controllers.is_empty() {
            (root.to_path_buf(), "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (root.join("memory"), "memory.limit_in_bytes")
        } else {
            continue;
        };
        // A process outside its cgroup namespace sees `..` here: that
        // path is not below `root`, so it is not read.
        if path.split('/').any(|c| c == "..") {
            continue;
        }
        let leaf = dir.join(path.trim_start_matches('/'));
        limits.extend(
            leaf.ancestors()
                .take_while(|d| d.starts_with(&dir))
                .filter_map(|d| std::fs::read_to_string(d.join(file)).ok())
                .filter_map(|s| s.trim().parse::<u64>().ok()),
        );
    }
    limits.into_iter().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machines_memory_is_read_from_meminfo_in_kilobytes() {
        let meminfo = "MemTotal:       24684080 kB\nMemFree:        23335000 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_684_080 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: many kB\n"), None);
        assert_eq!(mem_total("MemTotal: 12\n"), None, "no unit");
    }

    #[test]
    fn a_cgroup_limit_is_read_in_v1_and_v2_and_the_lowest_on_the_way_up_wins() {
        let root = std::env::temp_dir().join(format!("cgroups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let write = |dir: &Path, file: &str, text: &str| {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(file), text).unwrap();
        };
        // v2: the service has no limit of its own, its slice has 2 GB.
        write(&root.join("system.slice"), "memory.max", "2147483648\n");
        write(
            &root.join("system.slice/clubswitch.service"),
            "memory.max",
            "max\n",
        );
        let v2 = "0::/system.slice/clubswitch.service\n";
        assert_eq!(cgroup_limit(v2, &root), Some(2 << 30));
        // v1: the memory controller's own hierarchy.
        write(
            &root.join("memory/box"),
            "memory.limit_in_bytes",
            "1073741824\n",
        );
        let v1 = "5:cpu,cpuacct:/box\n4:memory:/box\n0::/\n";
        assert_eq!(cgroup_limit(v1, &root), Some(1 << 30));
        assert_eq!(cgroup_limit("4:memory:/elsewhere\n", &root), None);
        assert_eq!(cgroup_limit("4:memory:/box/../..\n", &root), None);
        assert_eq!(cgroup_limit("", &root), None);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_cache_is_an_eighth_of_memory_within_its_bounds() {
        const GB: u64 = 1 << 30;
        assert_eq!(cache_for(Some(8 * GB)), GB);
        assert_eq!(cache_for(Some(2 * GB)), 256 << 20);
        assert_eq!(cache_for(Some(512 << 20)), CACHE_MIN, "a small box");
        assert_eq!(cache_for(Some(256 * GB)), CACHE_MAX, "a large one");
        assert_eq!(cache_for(None), CACHE_UNKNOWN);
    }

    #[test]
    fn a_configured_cache_wins_and_cannot_overflow() {
        assert_eq!(ledger_cache_bytes(Some(300)), 300 << 20);
        assert_eq!(ledger_cache_bytes(Some(u64::MAX)), u64::MAX);
        let auto = ledger_cache_bytes(None);
        assert!((CACHE_MIN..=CACHE_MAX).contains(&auto), "{auto}");
    }
}
