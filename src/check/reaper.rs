//! No process of a `command` step outlives the step: each attempt's
//! processes carry a marker in their environment, runproof is a child
//! subreaper (so descendants that `setsid` and daemonize reparent to it,
//! not to init), and when the attempt ends every process still carrying the
//! marker is killed and, when it became runproof's child, reaped.
//!
//! Why an environment marker and not a cgroup: it works the same as root and
//! as an unprivileged user, in a container or not, with no cgroup v2
//! delegation to set up; `/proc/<pid>/environ` of one's own processes is
//! readable without privileges. Its limit: a descendant that execs with a
//! cleared environment (`env -i`) *and* leaves the process group is not
//! found; it is still reparented to runproof and dies with nothing to read
//! its pipes once runproof exits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The environment variable that marks an attempt's processes.
pub const ATTEMPT_ENV: &str = "RUNPROOF_ATTEMPT";

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned
/// descendants reparent to it instead of to init, so they stay findable and
/// killable. Call once at start-up; it needs no privileges.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments; no memory is passed.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A marker unique to one attempt of this runproof process.
pub fn new_marker() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One attempt's processes: its process group and every process carrying
/// its marker. Dropping it kills them all, on success, timeout (the engine
/// drops the attempt's future) and interruption alike.
pub struct StepProcesses {
    pgid: Option<u32>,
    marker: String,
}

impl StepProcesses {
    /// Tracks the group led by `pgid` and the processes marked `marker`.
    pub fn new(pgid: Option<u32>, marker: String) -> Self {
        StepProcesses { pgid, marker }
    }

    /// Kills the group and every marked process until none is left (killed
    /// processes' children carry the marker too and are found on the next
    /// pass). Returns how many marked processes were killed.
    pub fn kill_all(&self) -> usize {
        if let Some(pgid) = self.pgid {
            // SAFETY: kill(2) with a negative pid signals the process group
            // the child leads (setsid made its pgid equal its pid).
            unsafe {
                libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
            }
        }
        let entry = format!("{ATTEMPT_ENV}={}", self.marker);
        let mut killed = 0;
        for _ in 0..50 {
            let marked = marked_processes(entry.as_bytes());
            if marked.is_empty() {
                break;
            }
            for &pid in &marked {
                // SAFETY: as above, for one process we found marked.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            killed += marked.len();
            reap(&marked);
        }
        killed
    }
}

impl Drop for StepProcesses {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Pids (other than ours) whose environment holds `entry` exactly.
fn marked_processes(entry: &[u8]) -> Vec<libc::pid_t> {
    let own = std::process::id() as libc::pid_t;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            // A zombie's environ reads empty: it no longer runs.
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|&b| b == 0).any(|var| var == entry))
                .unwrap_or(false)
        })
        .collect()
}

/// Reaps those of `pids` that became our children (through the subreaper)
/// and have died, so no zombie is left behind. Only pids we killed are
/// waited for: the runtime's own children are never touched.
fn reap(pids: &[libc::pid_t]) {
    for &pid in pids {
        // A SIGKILLed process dies within a few milliseconds; 0 means it is
        // our child and not dead yet, -1 that it is not our child.
        for _ in 0..50 {
            let mut status = 0;
            // SAFETY: waitpid on one pid with WNOHANG; `status` is a valid int.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } != 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
