//! The whole receive pipeline (`forward::process`: Ethernet, ARP, IPv4, IPv6, ICMP, ND) on
//! arbitrary frames arriving on either port of a two-port router. It must never panic, and
//! what it sends must be a whole Ethernet frame that fits the buffer.
//!
//! Run: `cd dataplane/fuzz && cargo +nightly fuzz run frame_process`
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sdwan_dataplane::forward::{process, ByteBuf, Context, PacketBuf, Verdict};
use sdwan_dataplane::route::NextHop;
use sdwan_dataplane::tables::{NeighborKey, PortInfo, Tables};

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let lan = PortInfo::new("lan0", [2, 0, 0, 0, 1, 1], 1500, &["10.1.0.1/24".parse().unwrap(), "fd00:1::1/64".parse().unwrap()]);
        let wan = PortInfo::new("inet", [2, 0, 0, 0, 2, 1], 1500, &["198.18.1.1/24".parse().unwrap(), "fd00:ff:1::1/64".parse().unwrap()]);
        let mut t = Tables::new(
            vec![lan, wan],
            &[
                ("10.2.0.0/16".parse().unwrap(), NextHop { port: 1, via: Some("198.18.1.2".parse().unwrap()) }),
                ("fd00:2::/32".parse().unwrap(), NextHop { port: 1, via: Some("fd00:ff:1::2".parse().unwrap()) }),
            ],
        );
        t.neighbors.insert(NeighborKey::new(1, "198.18.1.2".parse().unwrap()), [2, 0, 0, 0, 2, 2]);
        t.neighbors.insert(NeighborKey::new(0, "10.1.0.2".parse().unwrap()), [2, 0, 0, 0, 1, 2]);
        t
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, frame)) = input.split_first() else { return };
    if frame.len() > ByteBuf::CAPACITY {
        return;
    }
    let mut buf = ByteBuf::new(frame);
    let mut cx = Context::default();
    match process(tables(), u16::from(selector & 1), &mut buf, &mut cx) {
        Verdict::Forward(port) | Verdict::Reply(port) => {
            assert!(port < 2);
            assert!(buf.data().len() >= 14, "a sent frame has an Ethernet header");
        }
        Verdict::Consumed | Verdict::Drop(_) => {}
    }
});
