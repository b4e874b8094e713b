//! Long work that must not slow the terminals: run on a thread of its own
//! at a lower CPU priority, so on a small box the engine thread and the
//! connections always come first.

use tokio::sync::oneshot;

use crate::error::SwitchError;

/// The niceness background work runs at (the terminals' threads run at 0).
const NICENESS: i32 = 10;

/// Runs `f` on a new thread at lower priority and waits for its result
/// without blocking the async runtime. A thread of its own, because a
/// thread's priority cannot be raised back without privileges: lowering a
/// pooled thread's would slow everything it ran after.
pub async fn run<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SwitchError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("clubswitch-{name}"))
        .spawn(move || {
            lower_priority();
            let _ = tx.send(f());
        })
        .map_err(|source| SwitchError::Thread {
            name: name.to_owned(),
            source,
        })?;
    rx.await
        .map_err(|_| SwitchError::ThreadLost(name.to_owned()))
}

fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority with PRIO_PROCESS and the calling thread's id
    // changes only this thread's niceness; it reads no memory of ours.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, NICENESS) != 0 {
            tracing::debug!(
                "could not lower a background thread's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
