//! How a restarted process knows it is restarting (RFC 4724 §4.1, the R bit).
//!
//! While a session is Established the driver records "alive at T" in a small file under a
//! state directory, one per peer, refreshed every keepalive interval. A process that starts
//! and finds a record younger than the restart time it advertised is a restarting speaker:
//! the peer may still hold our routes as stale, so we set the R bit. A clean stop that
//! withdrew our routes removes the record. SIGKILL leaves it, which is the point.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The per-peer "last alive" record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartState {
    path: PathBuf,
}

impl RestartState {
    /// The record for `peer` under `dir`.
    pub fn new(dir: &Path, peer: IpAddr) -> Self {
        let name = peer.to_string().replace(':', "_");
        Self {
            path: dir.join(format!("bgp-{name}.alive")),
        }
    }

    /// The record of a session bound to `device`: an unnumbered peer (`peer` is `::`, named by the
    /// interface) or a peer in a VRF (the same address may be a peer in another VRF).
    pub fn for_device(dir: &Path, peer: IpAddr, device: &str) -> Self {
        let name = if peer.is_unspecified() {
            device.to_owned()
        } else {
            format!("{}%{device}", peer.to_string().replace(':', "_"))
        };
        Self {
            path: dir.join(format!("bgp-{name}.alive")),
        }
    }

    /// The record's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the session was last known Established, if ever recorded and readable.
    pub fn last_alive(&self) -> Option<SystemTime> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let secs: u64 = text.trim().parse().ok()?;
        UNIX_EPOCH.checked_add(Duration::from_secs(secs))
    }

    /// Whether a process starting at `now` is restarting within `restart_time`.
    pub fn is_restarting(&self, now: SystemTime, restart_time: Duration) -> bool {
        restarting(self.last_alive(), now, restart_time)
    }

    /// Records that the session is Established at `now` (atomically: write, then rename).
    pub fn mark_alive(&self, now: SystemTime) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, format!("{secs}\n"))?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Removes the record (after a stop that withdrew our routes).
    pub fn clear(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The pure decision: restarting when the last-alive record is at most `restart_time` old.
/// A record from the future (clock stepped back) counts as restarting.
pub fn restarting(last_alive: Option<SystemTime>, now: SystemTime, restart_time: Duration) -> bool {
    match last_alive {
        None => false,
        Some(t) => match now.duration_since(t) {
            Ok(age) => age <= restart_time,
            Err(_) => true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(1_700_000_000);

    #[test]
    fn decision_follows_the_restart_time() {
        let at = |s: u64| UNIX_EPOCH + T0 + Duration::from_secs(s);
        let rt = Duration::from_secs(120);
        assert!(!restarting(None, at(0), rt));
        assert!(restarting(Some(at(0)), at(119), rt));
        assert!(restarting(Some(at(0)), at(120), rt));
        assert!(!restarting(Some(at(0)), at(121), rt));
        assert!(restarting(Some(at(10)), at(0), rt));
    }

    #[test]
    fn sessions_bound_to_a_device_have_their_own_record() {
        let dir = Path::new("/run/ferrolb");
        let unnumbered = RestartState::for_device(dir, "::".parse().unwrap(), "eth1");
        assert_eq!(unnumbered.path(), Path::new("/run/ferrolb/bgp-eth1.alive"));
        let red = RestartState::for_device(dir, "2001:db8::1".parse().unwrap(), "red");
        assert_eq!(
            red.path(),
            Path::new("/run/ferrolb/bgp-2001_db8__1%red.alive")
        );
    }

    #[test]
    fn record_round_trips_and_clears() {
        let dir = std::env::temp_dir().join(format!("flb-restart-{}", std::process::id()));
        let st = RestartState::new(&dir, "2001:db8::1".parse().unwrap());
        assert!(st.path().ends_with("bgp-2001_db8__1.alive"));
        assert_eq!(st.last_alive(), None);
        let now = UNIX_EPOCH + T0;
        st.mark_alive(now).unwrap();
        assert_eq!(st.last_alive(), Some(now));
        assert!(st.is_restarting(now + Duration::from_secs(5), Duration::from_secs(120)));
        st.clear().unwrap();
        st.clear().unwrap();
        assert_eq!(st.last_alive(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
