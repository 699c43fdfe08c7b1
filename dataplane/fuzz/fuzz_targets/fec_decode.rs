//! The FEC receiver and the spread flows' reorder buffer on arbitrary input: the input is cut
//! into records (a VXLAN header's 8 bytes, a length byte, then that many payload bytes), each
//! fed to an FEC decoder as a data or parity packet and its sequence number to a reorder
//! buffer. Nothing may panic; a rebuilt packet is never longer than the protocol allows, and
//! the reorder buffer releases every item exactly once.
//!
//! Run: `cd dataplane/fuzz && cargo +nightly fuzz run fec_decode`
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdwan_dataplane::fec::{self, Decoder, Outcome};
use sdwan_dataplane::reorder::{self, Reorder};

fuzz_target!(|input: &[u8]| {
    let mut d = Decoder::default();
    let mut r: Reorder<usize> = Reorder::default();
    let mut released = Vec::new();
    let mut pushed = 0usize;
    let mut rest = input;
    let mut now = 0u64;
    while rest.len() >= 9 {
        let (vx, tail) = rest.split_at(8);
        let len = usize::from(tail[0]) * 8;
        let body = &tail[1..(1 + len).min(tail.len())];
        rest = &tail[(1 + len).min(tail.len())..];
        if let Some(m) = fec::read_mark(vx) {
            let out = if m.parity {
                let _ = fec::read_parity(body);
                d.on_parity(m, body)
            } else {
                d.on_data(m, body)
            };
            if let Outcome::Rebuilt(b) = out {
                assert!(b.len() <= fec::MAX_ESP);
            }
        }
        if let Some(seq) = reorder::read_seq(vx) {
            r.push(seq, pushed, now, |i| released.push(i));
            pushed += 1;
        }
        now += u64::from(vx[7]);
        r.poll(now, 50, |i| released.push(i));
    }
    r.flush(|i| released.push(i));
    released.sort_unstable();
    assert_eq!(released, (0..pushed).collect::<Vec<_>>(), "each item released once");
});
