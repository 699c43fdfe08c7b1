//! The tunnel pipeline on arbitrary input: a site with one tenant and three tunnels (overlay,
//! plain ESP, ESP in UDP 4500) receives frames on its WAN port (the overlay and ESP decoders,
//! the SPI lookup, the replay pre-check, the AEAD) and on its tenant's LAN port (routing into
//! the tunnels). Half the inputs are raw frames; the other half are valid sealed frames with
//! the input XORed over them, so the decoders see frames that are right up to one field. It
//! must never panic, and what it sends must be a whole frame on a real port.
//!
//! Run: `cd dataplane/fuzz && cargo +nightly fuzz run tunnel_receive`
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sdwan_dataplane::esp::{Backend, Suite};
use sdwan_dataplane::forward::{process, ByteBuf, Context, PacketBuf, Verdict};
use sdwan_dataplane::route::TenantHop;
use sdwan_dataplane::tables::{NeighborKey, PortInfo, Tables};
use sdwan_dataplane::tunnel::{CircuitInfo, SaState, TenantSpec, TunnelInfo, TunnelKeys, TunnelKind};
use zeroize::Zeroizing;

const KINDS: [TunnelKind; 3] = [TunnelKind::Overlay, TunnelKind::Esp, TunnelKind::EspUdp];

/// Site `me` (1 or 2): LAN port 0 in tenant 0, WAN port 1; tunnel `i` of KINDS[i] to the other
/// site, SPIs 0x1000 * (i + 1) from site 1 and + 0x100 from site 2.
fn site(me: u8) -> Tables {
    let other = 3 - me;
    let lan = PortInfo::new("lan0", [2, 0, 0, 0, me, 1], 1500, &[format!("10.{me}.0.1/24").parse().unwrap()]);
    let wan = PortInfo::new("inet", [2, 0, 0, 0, me, 2], 1500, &[format!("198.18.1.{me}/24").parse().unwrap()]);
    let tunnels = KINDS
        .iter()
        .enumerate()
        .map(|(i, &kind)| {
            let base = 0x1000 * (i as u32 + 1);
            TunnelInfo {
                peer: "peer".into(),
                tenant: 0,
                kind,
                loopbacks: (kind == TunnelKind::Overlay)
                    .then(|| (format!("10.255.0.{me}").parse().unwrap(), format!("10.255.0.{other}").parse().unwrap())),
                circuits: vec![CircuitInfo {
                    port: 1,
                    local: format!("198.18.1.{me}").parse().unwrap(),
                    remote: format!("198.18.1.{other}").parse().unwrap(),
                    transport: "internet".into(),
                    trusted: false,
                }],
                out_spi: if me == 1 { base } else { base + 0x100 },
                in_spi: if me == 1 { base + 0x100 } else { base },
                senders: if kind == TunnelKind::Overlay { 16 } else { 1 },
                suite: Suite::Aes128Gcm,
                esn: true,
                replay_window: 1024,
                first_slot: 0,
                peer_index: None,
                out_key: 0,
                in_key: 0,
            }
        })
        .collect();
    let routes = (0..3u16)
        .map(|i| (format!("10.{other}.{i}.0/24").parse().unwrap(), TenantHop::Tunnel { tunnel: i, circuit: None }))
        .collect();
    let tenant = TenantSpec { name: "blue".into(), vni: 100, lan_ports: vec![0], routes };
    let mut t = Tables::new(vec![lan, wan], &[]).with_tenants(vec![tenant], tunnels);
    t.neighbors.insert(NeighborKey::new(1, format!("198.18.1.{other}").parse().unwrap()), [2, 0, 0, 0, other, 2]);
    t.neighbors.insert(NeighborKey::new(0, format!("10.{me}.0.2").parse().unwrap()), [2, 0, 0, 0, me, 9]);
    t
}

fn context(t: &Tables, me: u8) -> Context {
    let (a, b) = ([0x11u8; 20], [0x22u8; 20]);
    let (out, inbound) = if me == 1 { (a, b) } else { (b, a) };
    let keys: Vec<TunnelKeys> = t
        .tunnels
        .iter()
        .map(|_| TunnelKeys { out: Zeroizing::new(out.to_vec()), inbound: Zeroizing::new(inbound.to_vec()) })
        .collect();
    Context { sas: SaState::new(0, 1, &t.tunnels, &keys, Backend::default()).unwrap(), ..Context::default() }
}

struct World {
    receiver: Tables,
    /// Valid frames site 2 sent to site 1, one per tunnel.
    sealed: Vec<Vec<u8>>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let sender = site(2);
        let mut cx = context(&sender, 2);
        let sealed = (0..3u8)
            .map(|i| {
                let mut f = vec![0u8; 14 + 20 + 8 + 16];
                f[0..6].copy_from_slice(&[2, 0, 0, 0, 2, 1]);
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                let ip = &mut f[14..34];
                ip[0] = 0x45;
                ip[2..4].copy_from_slice(&44u16.to_be_bytes());
                ip[8] = 64;
                ip[9] = 17;
                ip[12..16].copy_from_slice(&[10, 2, 0, 2]);
                ip[16..20].copy_from_slice(&[10, 1, i, 2]);
                let c = sdwan_dataplane::wire::checksum::checksum(ip);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                let mut b = ByteBuf::new(&f);
                match process(&sender, 0, &mut b, &mut cx) {
                    Verdict::Forward(1) => b.data().to_vec(),
                    v => panic!("the sender did not seal: {v:?}"),
                }
            })
            .collect();
        World { receiver: site(1), sealed }
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else { return };
    let w = world();
    let frame: Vec<u8> = if selector & 2 != 0 {
        let mut f = w.sealed[usize::from(selector >> 2) % 3].clone();
        for (b, x) in f.iter_mut().zip(rest) {
            *b ^= x;
        }
        f
    } else {
        rest.to_vec()
    };
    if frame.len() > ByteBuf::CAPACITY {
        return;
    }
    let mut cx = context(&w.receiver, 1);
    let mut buf = ByteBuf::new(&frame);
    match process(&w.receiver, u16::from(selector & 1), &mut buf, &mut cx) {
        Verdict::Forward(port) | Verdict::Reply(port) => {
            assert!(port < 2);
            assert!(buf.data().len() >= 14, "a sent frame has an Ethernet header");
        }
        Verdict::Handoff { .. } => panic!("one worker owns every SA"),
        Verdict::Consumed | Verdict::Drop(_) => {}
    }
});
