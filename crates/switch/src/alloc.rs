//! How many malloc arenas the daemon uses.
//!
//! glibc gives threads that allocate at the same time their own arenas, up
//! to eight per core. The switch allocates ledger pages on request and
//! blocking-pool threads and frees them on others (the storage's flusher, the
//! archiver), so freed memory scatters over many arenas that each keep
//! their high-water mark: in the 30-minute soak resident memory rose from
//! 1.9 to 3.5 GB while the live ledger stayed bounded. With two arenas the
//! same run stays near 1 GB (see `benches/soak.sh`). An operator's own
//! `MALLOC_ARENA_MAX` still wins.

/// Arenas the daemon asks for unless `MALLOC_ARENA_MAX` is set.
pub const ARENAS: i32 = 2;

/// Limits the allocator's arenas. Call first thing in `main`, before any
/// thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tuning; it is called
        // before any other thread exists, and M_ARENA_MAX takes any
        // positive count.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
        if ok != 1 {
            eprintln!("clubswitch: could not limit malloc arenas; memory may grow");
        }
    }
}
