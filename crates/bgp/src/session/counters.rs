//! What one session task wrote and read: running totals, counted where the bytes are written
//! and where messages are decoded, readable at any time without waking the task.

use super::failure::FailureReason;
use crate::wire::{Message, message_type};
use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals of one session task, over every connection it made. Shared between the task
/// (which counts) and its [`Session`](super::Session) handle ([`Session::counters`](super::Session::counters)).
#[derive(Debug, Default)]
pub struct SessionCounters {
    updates_sent: AtomicU64,
    update_bytes_sent: AtomicU64,
    prefixes_announced: AtomicU64,
    prefixes_withdrawn: AtomicU64,
    prefixes_advertised: AtomicU64,
    /// Received messages by type: OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH.
    received: [AtomicU64; 5],
    /// Failed attempts to reach the peer, by [`FailureReason::index`].
    connect_failures: [AtomicU64; 5],
}

/// The message types, in the order of [`CounterSnapshot::received`].
pub const RECEIVED_TYPES: [&str; 5] = [
    "open",
    "update",
    "notification",
    "keepalive",
    "route_refresh",
];

/// A copy of [`SessionCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// UPDATE messages written to the socket (End-of-RIB markers included).
    pub updates_sent: u64,
    /// Octets of those UPDATEs, whole messages (19-octet header included).
    pub update_bytes_sent: u64,
    /// Prefixes announced in them (NLRI and MP_REACH_NLRI).
    pub prefixes_announced: u64,
    /// Prefixes withdrawn in them (Withdrawn Routes and MP_UNREACH_NLRI).
    pub prefixes_withdrawn: u64,
    /// Prefixes the peer has from us now (the Adj-RIB-Out's size; 0 while not Established).
    pub prefixes_advertised: u64,
    /// Messages received, by type in the order of [`RECEIVED_TYPES`].
    pub received: [u64; 5],
    /// Failed attempts to reach the peer, by reason in the order of [`FailureReason::ALL`].
    pub connect_failures: [u64; 5],
}

/// Prefixes an UPDATE announces and withdraws.
fn prefix_counts(message: &Message) -> (u64, u64) {
    let Message::Update(u) = message else {
        return (0, 0);
    };
    let a = &u.attributes;
    let announced = u.nlri.len() + a.mp_reach.as_ref().map_or(0, |m| m.nlri.len());
    let withdrawn = u.withdrawn.len() + a.mp_unreach.as_ref().map_or(0, |m| m.withdrawn.len());
    (announced as u64, withdrawn as u64)
}

impl SessionCounters {
    /// Counts one message written whole to the socket, `len` octets long.
    pub fn sent(&self, message: &Message, len: usize) {
        if message.message_type() != message_type::UPDATE {
            return;
        }
        let (announced, withdrawn) = prefix_counts(message);
        self.updates_sent.fetch_add(1, Ordering::Relaxed);
        self.update_bytes_sent
            .fetch_add(len as u64, Ordering::Relaxed);
        self.prefixes_announced
            .fetch_add(announced, Ordering::Relaxed);
        self.prefixes_withdrawn
            .fetch_add(withdrawn, Ordering::Relaxed);
    }

    /// Counts one message received and decoded.
    pub fn received(&self, message: &Message) {
        let slot = usize::from(message.message_type()).wrapping_sub(1);
        if let Some(c) = self.received.get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one failed attempt to reach the peer.
    pub fn connect_failed(&self, reason: FailureReason) {
        if let Some(c) = self.connect_failures.get(reason.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sets the number of prefixes the peer has from us.
    pub fn set_advertised(&self, prefixes: usize) {
        self.prefixes_advertised
            .store(prefixes as u64, Ordering::Relaxed);
    }

    /// The totals now.
    pub fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            updates_sent: get(&self.updates_sent),
            update_bytes_sent: get(&self.update_bytes_sent),
            prefixes_announced: get(&self.prefixes_announced),
            prefixes_withdrawn: get(&self.prefixes_withdrawn),
            prefixes_advertised: get(&self.prefixes_advertised),
            received: self.received.each_ref().map(get),
            connect_failures: self.connect_failures.each_ref().map(get),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Family, MpUnreach, PathAttributes, Update};

    #[test]
    fn only_updates_count_as_sent_with_their_prefixes_and_length() {
        let c = SessionCounters::default();
        c.sent(&Message::Keepalive, 19);
        let update = Message::Update(Update {
            withdrawn: vec!["203.0.113.1/32".parse().unwrap()],
            nlri: vec![
                "203.0.113.2/32".parse().unwrap(),
                "203.0.113.3/32".parse().unwrap(),
            ],
            ..Update::default()
        });
        c.sent(&update, 60);
        let v6_withdrawal = Message::Update(Update {
            attributes: PathAttributes {
                mp_unreach: Some(MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn: vec!["2001:db8::1/128".parse().unwrap()],
                }),
                ..PathAttributes::default()
            },
            ..Update::default()
        });
        c.sent(&v6_withdrawal, 47);
        c.received(&Message::Keepalive);
        c.received(&Message::Keepalive);
        c.received(&update);
        c.set_advertised(2);
        c.connect_failed(FailureReason::NoReply);
        c.connect_failed(FailureReason::NoReply);
        c.connect_failed(FailureReason::Other);
        assert_eq!(
            c.snapshot(),
            CounterSnapshot {
                updates_sent: 2,
                update_bytes_sent: 107,
                prefixes_announced: 2,
                prefixes_withdrawn: 2,
                prefixes_advertised: 2,
                received: [0, 1, 0, 2, 0],
                connect_failures: [0, 2, 0, 0, 1],
            }
        );
    }
}
