//! Fuzz the framer and every message decoder.
//!
//! The first input octet picks the session (4-octet AS, iBGP, extended messages); the rest is
//! a TCP byte stream. Every message the framer returns is encoded again; when that succeeds,
//! decoding it must give the same message (RFC 7606 issues aside, which encoding drops), and
//! encoding that must give the same bytes. Nothing may panic.
#![no_main]

use bytes::BytesMut;
use ferrolb_bgp::wire::{Message, SessionContext, try_parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let ctx = SessionContext {
        four_octet_as: mode & 1 != 0,
        ibgp: mode & 2 != 0,
        extended_message: mode & 4 != 0,
        ..SessionContext::before_open()
    };
    let mut buf = BytesMut::from(stream);
    while let Ok(Some(message)) = try_parse(&mut buf, &ctx) {
        let _ = message.to_owned_words();
        let Ok(bytes) = message.encode(&ctx) else {
            continue;
        };
        let mut again = BytesMut::from(&bytes[..]);
        let decoded = try_parse(&mut again, &ctx)
            .expect("our own encoding decodes")
            .expect("our own encoding is a whole message");
        assert!(again.is_empty());
        assert_eq!(without_issues(decoded.clone()), without_issues(message));
        assert_eq!(decoded.encode(&ctx).expect("re-encodes"), bytes);
    }
});

fn without_issues(m: Message) -> Message {
    match m {
        Message::Update(mut u) => {
            u.issues.clear();
            Message::Update(u)
        }
        other => other,
    }
}

trait Words {
    fn to_owned_words(&self) -> String;
}

impl Words for Message {
    /// Display of received NOTIFICATIONs must not panic either.
    fn to_owned_words(&self) -> String {
        match self {
            Message::Notification(n) => n.to_string(),
            _ => String::new(),
        }
    }
}
