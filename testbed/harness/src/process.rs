//! Processes the harness starts inside a lab namespace.

use std::fs;
use std::path::PathBuf;
use std::process::Child;

/// A process started by [`Lab::spawn_in_node`](crate::Lab::spawn_in_node). Its pid is recorded in the lab
/// directory, so `testbed/lab down` stops it even if this handle is leaked. Dropping the handle kills it.
#[derive(Debug)]
pub struct NodeProcess {
    pub(crate) child: Child,
    pub(crate) pid_file: PathBuf,
    pub(crate) log: PathBuf,
}

impl NodeProcess {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// File holding the process's standard output and error.
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// The log so far, for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (e.g. `libc::SIGKILL`) to the process without waiting.
    pub fn signal(&self, signal: i32) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on a pid we spawned and have not yet reaped cannot hit another process.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.pid_file);
    }
}
