//! Which VIPs the VIP interface holds: make before break. An announced VIP is added at once; a VIP that stops
//! being announced stays on the interface for [`VIP_LINGER`] more, because the withdrawal still has to reach the
//! router and its FIB (the UPDATE is written by the session task after the decision, and the router installs
//! it some milliseconds later): packets already on their way to this node must not find the address gone.
//! Pure: the caller gives the time.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a VIP stays on the interface after its withdrawal.
pub const VIP_LINGER: Duration = Duration::from_secs(2);

/// The announced VIPs, and those withdrawn less than [`VIP_LINGER`] ago with when they were withdrawn.
#[derive(Debug, Default)]
pub struct VipSet {
    announced: BTreeSet<IpAddr>,
    leaving: BTreeMap<IpAddr, Instant>,
}

impl VipSet {
    /// Takes the newly announced VIPs at `now`; returns what the interface must hold.
    pub fn announce(&mut self, announced: BTreeSet<IpAddr>, now: Instant) -> BTreeSet<IpAddr> {
        for gone in self.announced.difference(&announced) {
            self.leaving.entry(*gone).or_insert(now);
        }
        self.leaving.retain(|ip, _| !announced.contains(ip));
        self.announced = announced;
        self.on_interface(now)
    }

    /// What the interface must hold at `now` (forgetting VIPs whose linger is over).
    pub fn on_interface(&mut self, now: Instant) -> BTreeSet<IpAddr> {
        self.leaving
            .retain(|_, since| now.saturating_duration_since(*since) < VIP_LINGER);
        self.announced
            .iter()
            .chain(self.leaving.keys())
            .copied()
            .collect()
    }

    /// When the next withdrawn VIP must leave the interface.
    pub fn next_removal(&self) -> Option<Instant> {
        self.leaving.values().min().map(|since| *since + VIP_LINGER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn added_at_once_removed_after_the_linger_and_kept_if_announced_again() {
        let t0 = Instant::now();
        let mut v = VipSet::default();
        assert_eq!(
            v.announce(ips(&["203.0.113.1", "203.0.113.2"]), t0),
            ips(&["203.0.113.1", "203.0.113.2"])
        );
        assert_eq!(v.next_removal(), None);
        // .2 withdrawn at t0 + 1 s: still held until t0 + 3 s.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            v.announce(ips(&["203.0.113.1", "2001:db8::1"]), t1),
            ips(&["203.0.113.1", "203.0.113.2", "2001:db8::1"])
        );
        assert_eq!(v.next_removal(), Some(t1 + VIP_LINGER));
        assert_eq!(
            v.on_interface(t1 + VIP_LINGER - Duration::from_millis(1)),
            ips(&["203.0.113.1", "203.0.113.2", "2001:db8::1"])
        );
        assert_eq!(
            v.on_interface(t1 + VIP_LINGER),
            ips(&["203.0.113.1", "2001:db8::1"])
        );
        assert_eq!(v.next_removal(), None);

        // Withdrawn, then announced again within the linger: never removed, and no removal pending.
        let t2 = t1 + Duration::from_secs(10);
        v.announce(ips(&["2001:db8::1"]), t2);
        assert_eq!(v.next_removal(), Some(t2 + VIP_LINGER));
        let t3 = t2 + Duration::from_millis(500);
        assert_eq!(
            v.announce(ips(&["203.0.113.1", "2001:db8::1"]), t3),
            ips(&["203.0.113.1", "2001:db8::1"])
        );
        assert_eq!(v.next_removal(), None);
        // A second withdrawal keeps the first withdrawal time.
        v.announce(ips(&[]), t3);
        v.announce(ips(&[]), t3 + Duration::from_secs(1));
        assert_eq!(v.next_removal(), Some(t3 + VIP_LINGER));
        assert_eq!(v.on_interface(t3 + VIP_LINGER), ips(&[]));
    }
}
