//! Which AS a session presents and accepts: a peer AS learned from the OPEN (`PeerAs::Internal`,
//! `PeerAs::External`, MetalLB's `dynamicASN`) and a presented local AS (RFC 7705).

use ferrolb_bgp::fsm::{Action, Event, Fsm, FsmConfig, LocalAs, State};
use ferrolb_bgp::wire::{
    Capability, Family, Message, NotificationError, Open, PeerAs, SessionContext, negotiate,
};
use std::net::{IpAddr, Ipv4Addr};

const PEER_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn local() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))
}

fn peer_open(asn: u32) -> Open {
    Open::new(
        asn,
        90,
        PEER_ID,
        vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(asn),
        ],
    )
}

/// Connects `config`'s FSM, answers with the peer's OPEN, and returns the actions of that answer
/// and the FSM.
fn exchange_opens(config: FsmConfig, peer_asn: u32) -> (Vec<Action>, Fsm, Open) {
    let mut fsm = Fsm::new(config);
    fsm.handle(Event::ManualStart);
    let actions = fsm.handle(Event::TcpConnected { local: local() });
    let ours = actions
        .iter()
        .find_map(|a| match a {
            Action::Send(Message::Open(o)) => Some(o.clone()),
            _ => None,
        })
        .expect("an OPEN");
    let answer = fsm.handle(Event::MessageReceived(Message::Open(peer_open(peer_asn))));
    (answer, fsm, ours)
}

fn sent_bad_peer_as(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(a, Action::Send(Message::Notification(n)) if n.error() == NotificationError::BadPeerAs)
    })
}

#[test]
fn internal_accepts_only_our_own_as() {
    let (actions, fsm, _) = exchange_opens(FsmConfig::new(64512, PeerAs::Internal), 64512);
    assert_eq!(fsm.state(), State::OpenConfirm, "{actions:?}");
    let ctx = fsm.context();
    assert!(ctx.ibgp);
    assert_eq!(ctx.peer_asn, 64512);

    let (actions, fsm, _) = exchange_opens(FsmConfig::new(64512, PeerAs::Internal), 64513);
    assert!(sent_bad_peer_as(&actions), "{actions:?}");
    assert_eq!(fsm.state(), State::Idle);
}

#[test]
fn external_accepts_any_other_as_and_learns_it() {
    for peer in [64513, 4_200_000_001] {
        let (actions, fsm, _) = exchange_opens(FsmConfig::new(64512, PeerAs::External), peer);
        assert_eq!(fsm.state(), State::OpenConfirm, "{actions:?}");
        let ctx = fsm.context();
        assert!(!ctx.ibgp);
        assert_eq!(ctx.peer_asn, peer);
    }
    let (actions, _, _) = exchange_opens(FsmConfig::new(64512, PeerAs::External), 64512);
    assert!(sent_bad_peer_as(&actions), "{actions:?}");
}

#[test]
fn a_local_as_is_presented_in_the_open_and_the_peer_is_judged_against_it() {
    let mut config = FsmConfig::new(64512, 65100);
    config.local_as = Some(LocalAs {
        asn: 65000,
        replace_as: false,
    });
    let (actions, fsm, ours) = exchange_opens(config.clone(), 65100);
    assert_eq!(fsm.state(), State::OpenConfirm, "{actions:?}");
    assert_eq!(ours.asn, 65000);
    assert!(ours.capabilities.contains(&Capability::FourOctetAs(65000)));
    // Our real AS follows the presented one in the AS_PATH of our routes.
    let ctx: SessionContext = fsm.context();
    assert_eq!((ctx.local_asn, ctx.real_asn), (65000, Some(64512)));

    config.local_as = Some(LocalAs {
        asn: 65000,
        replace_as: true,
    });
    let (_, fsm, _) = exchange_opens(config.clone(), 65100);
    assert_eq!(fsm.context().real_asn, None);

    // A peer that expects our real AS sees the presented one: iBGP by the presented AS.
    config.peer_asn = PeerAs::Internal;
    let (actions, fsm, _) = exchange_opens(config, 65000);
    assert_eq!(fsm.state(), State::OpenConfirm, "{actions:?}");
    assert!(fsm.context().ibgp);
}

#[test]
fn negotiate_takes_a_number_or_a_kind() {
    let ours = peer_open(64512);
    let theirs = Open::new(
        64513,
        90,
        Ipv4Addr::new(198, 18, 0, 9),
        vec![Capability::Multiprotocol(Family::Ipv4Unicast)],
    );
    assert!(negotiate(&ours, &theirs, 64513).is_ok());
    assert_eq!(
        negotiate(&ours, &theirs, 64514).unwrap_err(),
        NotificationError::BadPeerAs
    );
    assert!(negotiate(&ours, &theirs, PeerAs::External).is_ok());
    assert_eq!(
        negotiate(&ours, &theirs, PeerAs::Internal).unwrap_err(),
        NotificationError::BadPeerAs
    );
    assert_eq!(PeerAs::External.to_string(), "external");
    assert_eq!(PeerAs::Exact(7).to_string(), "7");
}
