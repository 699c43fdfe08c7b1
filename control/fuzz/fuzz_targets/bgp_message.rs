//! The BGP message decoder on arbitrary bytes, for a 4-octet-AS session and a 2-octet one:
//! it must never panic, and whatever it decodes must encode, and decode again to the same
//! message.
//!
//! Two ways in: the bytes as a TCP stream (framed, so the marker and length checks run), and
//! the bytes after the first as the body of a message whose type the first byte picks, under
//! a valid header (so the fuzzer does not have to find 16 bytes of 0xff first).
//!
//! Run: `cd control && cargo +nightly fuzz run bgp_message -- -max_total_time=60`
//! (seed the corpus with the captured vectors: see control/fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdwan_control::bgp::wire::{frame, Message, Received, Session, HEADER_LEN, MAX_MESSAGE_LEN};

fn check(msg: &[u8], session: &Session) {
    let Ok(received) = Message::decode(msg, session) else {
        return;
    };
    if let Received::Update(o) = &received {
        if o.treat_as_withdraw.is_some() {
            assert!(o.update.announced().is_empty());
            // A treat-as-withdraw of routes of two families is two MP_UNREACH_NLRI: right
            // for the RIB, not one message to send. Nothing more to check then.
            let unreach = o
                .update
                .attributes
                .iter()
                .filter(|a| a.type_code() == 15)
                .count();
            if unreach > 1 {
                return;
            }
        }
    }
    let message = received.into_message();
    let bytes = message
        .encode(session)
        .unwrap_or_else(|e| panic!("decoded {message:?} but cannot encode it: {e}"));
    let again = Message::decode(&bytes, session)
        .unwrap_or_else(|e| panic!("re-encoded {message:?} does not decode: {e}"))
        .into_message();
    assert_eq!(again, message);
}

fuzz_target!(|data: &[u8]| {
    for four_octet_as in [true, false] {
        let session = Session::all_families(four_octet_as);
        if let Ok(Some(len)) = frame(data) {
            check(&data[..len], &session);
        }
        if let Some((&kind, body)) = data.split_first() {
            let len = HEADER_LEN + body.len();
            if len <= MAX_MESSAGE_LEN {
                let mut msg = vec![0xff; 16];
                msg.extend_from_slice(&(len as u16).to_be_bytes());
                msg.push(kind % 6);
                msg.extend_from_slice(body);
                check(&msg, &session);
            }
        }
    }
});
