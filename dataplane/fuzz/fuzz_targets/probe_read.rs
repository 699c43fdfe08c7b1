//! The path probe decoder (`probe::Probe::read`) on arbitrary bytes, and on valid probes with
//! the input XORed over them: it must never panic, and only an unaltered probe verifies.
//!
//! Run: `cd dataplane/fuzz && cargo +nightly fuzz run probe_read`
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sdwan_dataplane::esp::{AeadKey, Backend, Suite};
use sdwan_dataplane::probe::{Kind, Probe, LEN};

fn key() -> &'static (AeadKey, [u8; LEN]) {
    static K: OnceLock<(AeadKey, [u8; LEN])> = OnceLock::new();
    K.get_or_init(|| {
        let k = AeadKey::new(Backend::default(), Suite::Aes128Gcm, &[7; 20]).unwrap();
        let p = Probe {
            kind: Kind::Request,
            busy: false,
            sender_circuit: 1,
            receiver_circuit: 2,
            domain: 3,
            epoch: 9,
            counter: 10,
            seq: 4,
            hold_ns: 0,
            sent_ns: 5,
            echoed_ns: 0,
        };
        let mut b = [0u8; LEN];
        p.write(&k, &mut b).unwrap();
        (k, b)
    })
}

fuzz_target!(|input: &[u8]| {
    let (k, valid) = key();
    let _ = Probe::read(k, input);
    let mut b = *valid;
    let mut changed = false;
    for (x, y) in b.iter_mut().zip(input) {
        *x ^= y;
        changed |= *y != 0;
    }
    assert_eq!(Probe::read(k, &b).is_ok(), !changed, "only an unaltered probe verifies");
});
