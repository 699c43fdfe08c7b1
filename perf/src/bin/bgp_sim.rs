//! `sdwan-bgp-sim`: simulated SD-WAN sites for scale runs of the control plane
//! (`perf/bgp_scale.sh`). It opens one iBGP session to a route reflector and announces, for
//! each of N sites, what an edge announces: the loopback's VPN-IPv4 host route with the
//! Tunnel Encapsulation attribute (one internet circuit, a real X25519 public key of its own)
//! and M client prefixes, all in one tenant (Route Target); then End-of-RIB. It keeps the
//! session up until the time is over and prints a JSON line of what it did.
//!
//!   sdwan-bgp-sim --peer ADDR [--port 179] [--local ADDR] [--asn 65000] [--router-id A.B.C.D]
//!                 [--sites 1000] [--prefixes 10] [--rt 65000:1001] [--vni 1001]
//!                 [--password-file F] [--seconds 60]
//!
//! Site i: loopback 100.64.0.0 + i, circuit address 10.100.0.0 + i (transport 1), prefixes
//! 11.0.0.0/24 + (i * M + j) * 256.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sdwan_control::bgp::fsm::{Action, Fsm, SessionConfig};
use sdwan_control::bgp::speaker::key_generation_community;
use sdwan_control::bgp::transport;
use sdwan_control::bgp::wire::attributes::{AsPath, Origin};
use sdwan_control::bgp::wire::extcomm::{ExtCommunity, RouteTarget};
use sdwan_control::bgp::wire::nlri::VpnRoute;
use sdwan_control::bgp::wire::open::Capability;
use sdwan_control::bgp::wire::rd::RouteDistinguisher;
use sdwan_control::bgp::wire::tunnel_encap::{TunnelEncap, WanCircuitAdvert};
use sdwan_control::bgp::wire::{AttrValue, Family, Message, Nlri, Open, PathAttribute, Update};
use sdwan_control::keys::{KeyPair, SystemRandom};

struct Args {
    peer: IpAddr,
    port: u16,
    local: Option<IpAddr>,
    asn: u32,
    router_id: Ipv4Addr,
    sites: u32,
    prefixes: u32,
    rt: RouteTarget,
    vni: u32,
    password: Option<Vec<u8>>,
    seconds: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 179,
        local: None,
        asn: 65000,
        router_id: Ipv4Addr::new(10, 254, 0, 201),
        sites: 1000,
        prefixes: 10,
        rt: "65000:1001".parse().map_err(|e| format!("{e}"))?,
        vni: 1001,
        password: None,
        seconds: 60,
    };
    let mut it = std::env::args().skip(1);
    let mut peer = false;
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        let bad = |e: &dyn std::fmt::Display| format!("{k}: {e}");
        match k.as_str() {
            "--peer" => {
                a.peer = v()?.parse().map_err(|e| bad(&e))?;
                peer = true;
            }
            "--port" => a.port = v()?.parse().map_err(|e| bad(&e))?,
            "--local" => a.local = Some(v()?.parse().map_err(|e| bad(&e))?),
            "--asn" => a.asn = v()?.parse().map_err(|e| bad(&e))?,
            "--router-id" => a.router_id = v()?.parse().map_err(|e| bad(&e))?,
            "--sites" => a.sites = v()?.parse().map_err(|e| bad(&e))?,
            "--prefixes" => a.prefixes = v()?.parse().map_err(|e| bad(&e))?,
            "--rt" => a.rt = v()?.parse().map_err(|e| bad(&e))?,
            "--vni" => a.vni = v()?.parse().map_err(|e| bad(&e))?,
            "--password-file" => {
                let f = v()?;
                a.password = Some(
                    std::fs::read(&f)
                        .map_err(|e| format!("{f}: {e}"))?
                        .trim_ascii_end()
                        .to_vec(),
                )
            }
            "--seconds" => a.seconds = v()?.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    if !peer {
        return Err("--peer is required".into());
    }
    if a.sites == 0 || a.sites > 1 << 20 || a.prefixes > 1000 {
        return Err("--sites 1..=1048576, --prefixes 0..=1000".into());
    }
    Ok(a)
}

/// The UPDATEs of all the sites.
fn updates(a: &Args, session: &sdwan_control::bgp::wire::Session) -> Result<Vec<Update>, String> {
    let mut rng = SystemRandom;
    let rt = ExtCommunity::RouteTarget(a.rt);
    let base = |extra: Option<ExtCommunity>| {
        let mut ec = vec![rt];
        ec.extend(extra);
        vec![
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(Vec::new()))),
            PathAttribute::new(AttrValue::LocalPref(100)),
            PathAttribute::new(AttrValue::ExtCommunities(ec)),
        ]
    };
    let mut out = Vec::new();
    for i in 0..a.sites {
        let loopback = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + i);
        let circuit = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 100, 0, 0)) + i);
        let rd = RouteDistinguisher::Ipv4 {
            addr: loopback,
            number: 1,
        };
        let key = KeyPair::generate(&mut rng).map_err(|e| e.to_string())?;
        let mut advert = WanCircuitAdvert::new(IpAddr::V4(circuit), 1, *key.public(), 3600, 1);
        advert.egress_endpoint = Some(IpAddr::V4(loopback));
        let mut attrs = base(Some(key_generation_community(1)));
        attrs.push(PathAttribute::new(AttrValue::TunnelEncap(
            TunnelEncap::sdwan_edge(&[advert]),
        )));
        let host = Nlri::Vpn(VpnRoute::new(
            a.vni & 0xf_ffff,
            rd,
            ipnet::IpNet::from(IpAddr::V4(loopback)),
        ));
        out.extend(
            Update::pack_announcements(
                Family::IPV4_VPN,
                IpAddr::V4(loopback),
                attrs,
                vec![host],
                session,
            )
            .map_err(|e| e.to_string())?,
        );
        let prefixes: Vec<Nlri> = (0..a.prefixes)
            .map(|j| {
                let net = u32::from(Ipv4Addr::new(11, 0, 0, 0)) + (i * a.prefixes + j) * 256;
                Nlri::Vpn(VpnRoute::new(
                    a.vni & 0xf_ffff,
                    rd,
                    format!("{}/24", Ipv4Addr::from(net))
                        .parse()
                        .expect("a /24"),
                ))
            })
            .collect();
        if !prefixes.is_empty() {
            out.extend(
                Update::pack_announcements(
                    Family::IPV4_VPN,
                    IpAddr::V4(loopback),
                    base(None),
                    prefixes,
                    session,
                )
                .map_err(|e| e.to_string())?,
            );
        }
    }
    out.push(Update::end_of_rib(Family::IPV4_VPN));
    Ok(out)
}

fn run(a: &Args) -> Result<String, String> {
    let start = Instant::now();
    let open = Open::new(
        a.asn,
        90,
        a.router_id,
        vec![
            Capability::Multiprotocol(Family::IPV4_VPN),
            Capability::RouteRefresh,
        ],
    );
    let mut fsm = Fsm::new(
        SessionConfig {
            remote_as: a.asn,
            router_id: a.router_id,
            passive: false,
            hold_time: 90,
            connect_retry: Duration::from_secs(1),
        },
        open,
        1,
    );
    let mut stream = None;
    let mut pending = fsm.start(start);
    let mut established_ms = None;
    let mut sent_ms = None;
    let mut sent_updates = 0usize;
    let mut buf = vec![0u8; 65536];
    let end = start + Duration::from_secs(a.seconds);
    while Instant::now() < end {
        let now = Instant::now();
        for act in std::mem::take(&mut pending) {
            match act {
                Action::Connect => {
                    match transport::connect(
                        SocketAddr::new(a.peer, a.port),
                        a.local,
                        a.password.as_deref(),
                        Duration::from_secs(3),
                    ) {
                        Ok(s) => {
                            s.set_read_timeout(Some(Duration::from_millis(50)))
                                .map_err(|e| e.to_string())?;
                            stream = Some(s);
                            pending.extend(fsm.connected(now));
                        }
                        Err(e) => pending.extend(fsm.connect_failed(now, &e.to_string())),
                    }
                }
                Action::Send(b) => {
                    if let Some(s) = stream.as_mut() {
                        s.write_all(&b).map_err(|e| format!("write: {e}"))?;
                    }
                }
                Action::Close => stream = None,
                Action::Up { session, .. } => {
                    established_ms = Some(start.elapsed().as_millis());
                    let all = updates(a, &session)?;
                    sent_updates = all.len();
                    let mut bytes = Vec::new();
                    for u in &all {
                        Message::Update(u.clone())
                            .encode_into(&session, &mut bytes)
                            .map_err(|e| e.to_string())?;
                    }
                    if let Some(s) = stream.as_mut() {
                        s.write_all(&bytes).map_err(|e| format!("write: {e}"))?;
                    }
                    sent_ms = Some(start.elapsed().as_millis());
                }
                Action::Down { reason } => return Err(format!("session down: {reason}")),
                Action::Update(_) | Action::RouteRefresh(_) => {}
            }
        }
        if let Some(s) = stream.as_mut() {
            match s.read(&mut buf) {
                Ok(0) => pending.extend(fsm.closed(now, "closed by the peer")),
                Ok(n) => pending.extend(fsm.received(now, &buf[..n])),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => pending.extend(fsm.closed(now, &e.to_string())),
            }
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
        pending.extend(fsm.poll(Instant::now()));
    }
    Ok(format!(
        "{{\"sites\": {}, \"prefixes_per_site\": {}, \"updates\": {sent_updates}, \"established_ms\": {}, \"sent_ms\": {}}}",
        a.sites,
        a.prefixes,
        established_ms.map_or("null".into(), |v| v.to_string()),
        sent_ms.map_or("null".into(), |v| v.to_string()),
    ))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sdwan-bgp-sim: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sdwan-bgp-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
