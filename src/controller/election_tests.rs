//! The election loop on a paused clock, against an in-memory Lease with the API server's optimistic concurrency
//! (resourceVersion), where each replica's calls can be slowed down or cut off.

use super::*;
use kube::core::Status;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The stored Lease and its resourceVersion counter.
#[derive(Default)]
struct Stored {
    lease: Option<Lease>,
    version: u64,
}

/// One replica's connection to the shared store: every call waits `delay_ms` first (`u64::MAX`: never answers).
#[derive(Clone)]
struct Link {
    stored: Arc<Mutex<Stored>>,
    delay_ms: Arc<AtomicU64>,
}

const CUT: u64 = u64::MAX;

impl Link {
    fn new(stored: &Arc<Mutex<Stored>>) -> Link {
        Link {
            stored: stored.clone(),
            delay_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn set_delay(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    async fn wait(&self) {
        match self.delay_ms.load(Ordering::SeqCst) {
            0 => {}
            CUT => std::future::pending().await,
            ms => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    }

    fn conflict() -> kube::Error {
        kube::Error::Api(
            Status::failure("conflict", "Conflict")
                .with_code(409)
                .boxed(),
        )
    }

    fn store(&self, mut lease: Lease) -> Lease {
        let mut stored = self.stored.lock().unwrap();
        stored.version += 1;
        lease.metadata.resource_version = Some(stored.version.to_string());
        stored.lease = Some(lease.clone());
        lease
    }
}

impl LeaseStore for Link {
    async fn get(&self, _name: &str) -> Result<Option<Lease>, kube::Error> {
        self.wait().await;
        Ok(self.stored.lock().unwrap().lease.clone())
    }
    async fn create(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        self.wait().await;
        if self.stored.lock().unwrap().lease.is_some() {
            return Err(Link::conflict());
        }
        Ok(self.store(lease.clone()))
    }
    async fn replace(&self, _name: &str, lease: &Lease) -> Result<Lease, kube::Error> {
        self.wait().await;
        let current = self
            .stored
            .lock()
            .unwrap()
            .lease
            .as_ref()
            .and_then(|l| l.metadata.resource_version.clone());
        if current != lease.metadata.resource_version {
            return Err(Link::conflict());
        }
        Ok(self.store(lease.clone()))
    }
}

/// client-go's defaults, which are also ferrolb's: lease 15 s, renew deadline 10 s, retry 2 s; request timeout 2 s.
fn timing() -> Timing {
    Timing::new(15, 10, 2, 2).unwrap()
}

/// Every role change of one replica, with the (paused) time it happened, counted from `t0`.
type Changes = Arc<Mutex<Vec<(Duration, Role)>>>;

/// Starts a replica's election loop and records its role changes.
fn replica(link: &Link, identity: &str, t0: Instant) -> Changes {
    let settings = ElectionSettings {
        namespace: "ns".into(),
        name: "lease".into(),
        identity: identity.into(),
        timing: timing(),
    };
    let (tx, mut rx) = watch::channel(Role::Unknown);
    tokio::spawn(run(link.clone(), settings, tx));
    let changes = Changes::default();
    let out = changes.clone();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let role = rx.borrow_and_update().clone();
            out.lock().unwrap().push((t0.elapsed(), role));
        }
    });
    changes
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn holder(stored: &Arc<Mutex<Stored>>) -> Option<String> {
    stored
        .lock()
        .unwrap()
        .lease
        .as_ref()?
        .spec
        .as_ref()?
        .holder_identity
        .clone()
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_renews_stays_leader() {
    let stored = Arc::new(Mutex::new(Stored::default()));
    let t0 = Instant::now();
    let a = replica(&Link::new(&stored), "a", t0);
    tokio::time::sleep(secs(119.0)).await;
    assert_eq!(*a.lock().unwrap(), vec![(secs(0.0), Role::Leader)]);
    // Created at 0, then renewed every retry period: 2, 4, ..., 118.
    assert_eq!(stored.lock().unwrap().version, 60);
    assert_eq!(holder(&stored).as_deref(), Some("a"));
}

#[tokio::test(start_paused = true)]
async fn a_cut_off_leader_steps_down_at_its_renew_deadline_before_the_standby_takes_over() {
    let stored = Arc::new(Mutex::new(Stored::default()));
    let t0 = Instant::now();
    let link_a = Link::new(&stored);
    let a = replica(&link_a, "a", t0);
    tokio::time::sleep(secs(1.0)).await;
    let b = replica(&Link::new(&stored), "b", t0);
    // a's rounds start at 0, 2, 4, ...; the last that gets through starts at 10.
    tokio::time::sleep(secs(9.5)).await;
    link_a.set_delay(CUT);
    tokio::time::sleep(secs(30.0)).await;

    // a: leader from 0; its calls hang from 10.5 and are abandoned; it steps down at 10 + renew deadline = 20,
    // not later, although its last call never returns.
    assert_eq!(
        *a.lock().unwrap(),
        vec![(secs(0.0), Role::Leader), (secs(20.0), Role::Standby(None))]
    );
    // b: standby from 1; it first saw a's last renewal (written at 10) at its round at 11, and takes over at its
    // first round at least a lease duration later: 27 (11 + 15 = 26 is not one of its rounds 1, 3, 5, ...).
    assert_eq!(
        *b.lock().unwrap(),
        vec![
            (secs(1.0), Role::Standby(Some("a".into()))),
            (secs(27.0), Role::Leader)
        ]
    );
    assert_eq!(holder(&stored).as_deref(), Some("b"));
    let transitions = stored
        .lock()
        .unwrap()
        .lease
        .as_ref()
        .and_then(|l| l.spec.as_ref()?.lease_transitions);
    assert_eq!(transitions, Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_call_slower_than_the_request_timeout_is_a_failure() {
    let stored = Arc::new(Mutex::new(Stored::default()));
    let t0 = Instant::now();
    let link = Link::new(&stored);
    // Answers after 1.9 s: under the 2 s request timeout, so the Lease is created (get + create: 3.8 s).
    link.set_delay(1900);
    let a = replica(&link, "a", t0);
    tokio::time::sleep(secs(5.0)).await;
    assert_eq!(*a.lock().unwrap(), vec![(secs(3.8), Role::Leader)]);
    // From now on every call takes 2.1 s: each is abandoned at 2 s and never reaches the store.
    let version = stored.lock().unwrap().version;
    link.set_delay(2100);
    tokio::time::sleep(secs(30.0)).await;
    assert_eq!(stored.lock().unwrap().version, version);
    // The only round that got through started at 0: the next one started late, at 3.8, read at 5.7, and its
    // update, sent after the slow-down, was abandoned at 7.7. So a steps down at 0 + 10 = 10.
    let changes = a.lock().unwrap().clone();
    assert_eq!(
        changes,
        vec![(secs(3.8), Role::Leader), (secs(10.0), Role::Standby(None))]
    );
    // Answers come fast again from 35: the rounds after the step-down got the full request timeout again (not
    // the ended tenure's deadline), so the round started at 33.7 ends at 35.7; the next one finds the Lease still
    // ours and renews it.
    link.set_delay(0);
    tokio::time::sleep(secs(3.0)).await;
    assert_eq!(a.lock().unwrap().last(), Some(&(secs(35.7), Role::Leader)));
    assert_eq!(stored.lock().unwrap().version, version + 2);
}

#[tokio::test(start_paused = true)]
async fn a_standby_does_not_take_a_live_lease_and_takes_an_expired_one_only_after_its_duration() {
    let stored = Arc::new(Mutex::new(Stored::default()));
    let t0 = Instant::now();
    let link_a = Link::new(&stored);
    let a = replica(&link_a, "a", t0);
    tokio::time::sleep(secs(0.5)).await;
    let b = replica(&Link::new(&stored), "b", t0);
    // Both run for a minute: a renews, b never takes over.
    tokio::time::sleep(secs(60.0)).await;
    assert_eq!(*a.lock().unwrap(), vec![(secs(0.0), Role::Leader)]);
    assert_eq!(
        *b.lock().unwrap(),
        vec![(secs(0.5), Role::Standby(Some("a".into())))]
    );
    // a stops answering at 60.5 (its last renewal at 60): b first sees that renewal at 60.5 and takes over at its
    // first round 15 s or more later, 76.5, by which time a stood down (at 70).
    link_a.set_delay(CUT);
    tokio::time::sleep(secs(30.0)).await;
    assert_eq!(
        a.lock().unwrap().last(),
        Some(&(secs(70.0), Role::Standby(None)))
    );
    assert_eq!(b.lock().unwrap().last(), Some(&(secs(76.5), Role::Leader)));
}

#[tokio::test(start_paused = true)]
async fn bounded_abandons_a_hung_call_at_its_deadline() {
    let settings = ElectionSettings {
        namespace: "ns".into(),
        name: "lease".into(),
        identity: "a".into(),
        timing: timing(),
    };
    let t0 = Instant::now();
    let hung = std::future::pending::<Result<(), kube::Error>>();
    let err = bounded("get", &settings, t0 + secs(2.0), hung)
        .await
        .unwrap_err();
    assert_eq!(t0.elapsed(), secs(2.0));
    assert_eq!(
        err.to_string(),
        "get of Lease ns/lease timed out after 2000 ms"
    );
}
