//! Plain-text tables for the terminal.

use sdwan_control::api;

/// Left-aligned columns sized to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

pub fn interfaces(v: &[api::Interface]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.role.clone(),
                if i.link_up {
                    "up".into()
                } else {
                    "down".into()
                },
                i.mac.clone(),
                i.mtu.to_string(),
                i.rx_packets.to_string(),
                i.rx_bytes.to_string(),
                i.tx_packets.to_string(),
                i.tx_bytes.to_string(),
                (i.rx_missed + i.rx_errors + i.rx_no_mbuf).to_string(),
                i.tx_errors.to_string(),
                i.driver.clone(),
                i.addresses.join(" "),
            ]
        })
        .collect();
    table(
        &[
            "Interface",
            "Role",
            "Link",
            "MAC",
            "MTU",
            "RX-pkts",
            "RX-bytes",
            "TX-pkts",
            "TX-bytes",
            "RX-drop",
            "TX-err",
            "Driver",
            "Addresses",
        ],
        &rows,
    )
}

pub fn stats(s: &api::Stats) -> String {
    let mut out = format!(
        "node {}  up {}s  tables generation {}  mbufs free {}\n\n",
        s.node, s.uptime_secs, s.table_generation, s.mbufs_free
    );
    let mut rows = vec![counter_row("total", "-", &s.total)];
    for w in &s.workers {
        rows.push(counter_row(
            &w.index.to_string(),
            &w.core.to_string(),
            &w.counters,
        ));
    }
    out.push_str(&table(
        &[
            "Worker",
            "Core",
            "RX-pkts",
            "TX-pkts",
            "Forwarded",
            "Local",
            "Solicit",
            "Dropped",
            "Busy-polls",
            "Idle-polls",
        ],
        &rows,
    ));
    let drops: Vec<Vec<String>> = s
        .total
        .drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| vec![r.clone(), n.to_string()])
        .collect();
    out.push('\n');
    if drops.is_empty() {
        out.push_str("no drops\n");
    } else {
        out.push_str(&table(&["Drop reason", "Packets"], &drops));
    }
    out
}

fn counter_row(name: &str, core: &str, c: &api::Counters) -> Vec<String> {
    vec![
        name.into(),
        core.into(),
        c.rx_packets.to_string(),
        c.tx_packets.to_string(),
        c.forwarded.to_string(),
        c.local_replies.to_string(),
        c.solicitations.to_string(),
        c.drops.values().sum::<u64>().to_string(),
        c.busy_polls.to_string(),
        c.idle_polls.to_string(),
    ]
}

pub fn routes(v: &[api::Route]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|r| {
            let (via, port) = match &r.peer {
                Some(peer) => (
                    format!("peer {peer}"),
                    r.circuit.clone().unwrap_or_else(|| "any circuit".into()),
                ),
                None => (
                    r.via.clone().unwrap_or_else(|| "connected".into()),
                    r.port.clone(),
                ),
            };
            vec![
                r.table.clone(),
                r.prefix.clone(),
                via,
                port,
                r.source.clone(),
            ]
        })
        .collect();
    table(&["Table", "Prefix", "Via", "Port", "Source"], &rows)
}

/// Bytes with a binary unit, the way `ip -s -h` shows them.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// `show sa`: one line per SA and direction.
pub fn sas(v: &[api::Sa]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|s| {
            vec![
                s.tenant.clone(),
                s.peer.clone(),
                s.direction.clone(),
                format!("0x{:08x}", s.spi),
                s.suite.clone(),
                s.kind.clone(),
                if s.circuits.is_empty() {
                    "-".into()
                } else {
                    s.circuits.join(",")
                },
                s.packets.to_string(),
                human_bytes(s.bytes),
                s.replay_drops.to_string(),
                s.auth_failed.to_string(),
                age(s.age_secs),
                s.worker.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "Tenant", "Peer", "Dir", "SPI", "Suite", "Mode", "Circuits", "Packets", "Bytes",
            "Replay", "AuthFail", "Age", "Worker",
        ],
        &rows,
    )
}

/// `show paths`: one line per path to an overlay peer.
pub fn paths(v: &[api::Path]) -> String {
    let ms = |x: Option<f64>| x.map_or_else(|| "-".into(), |x| format!("{x:.2}"));
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|p| {
            vec![
                p.peer.clone(),
                p.port.clone(),
                format!(
                    "{}{}",
                    p.transport,
                    if p.trusted { " (trusted)" } else { "" }
                ),
                p.remote.clone(),
                format!(
                    "{}{}{}",
                    p.state,
                    p.since_secs
                        .map_or_else(String::new, |s| format!(" {}", age(s as u64))),
                    if p.active { "" } else { " idle" }
                ),
                ms(p.rtt_p50_ms),
                ms(p.rtt_p99_ms),
                p.loss_pct
                    .map_or_else(|| "-".into(), |l| format!("{l:.1}%")),
                format!("{:.2}", p.jitter_ms),
                if p.sla_met.is_empty() {
                    "-".into()
                } else {
                    p.sla_met.join(",")
                },
                p.downs.to_string(),
                p.packets_out.to_string(),
                p.packets_in.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "Peer",
            "Circuit",
            "Transport",
            "Remote",
            "State",
            "RTTp50ms",
            "RTTp99ms",
            "Loss",
            "JitterMs",
            "SLA-met",
            "Downs",
            "PktsOut",
            "PktsIn",
        ],
        &rows,
    )
}

/// `show flows`: one line per steered flow.
pub fn flows(v: &[api::Flow]) -> String {
    let proto = |p: u8| match p {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        1 => "icmp".to_string(),
        58 => "icmpv6".to_string(),
        n => n.to_string(),
    };
    let end = |a: &str, p: u16, with_port: bool| {
        if with_port {
            if a.contains(':') {
                format!("[{a}]:{p}")
            } else {
                format!("{a}:{p}")
            }
        } else {
            a.to_string()
        }
    };
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|f| {
            let ports = matches!(f.protocol, 6 | 17);
            vec![
                f.tenant.clone(),
                proto(f.protocol),
                end(&f.src, f.src_port, ports),
                end(&f.dst, f.dst_port, ports),
                f.policy.clone(),
                f.sla.clone().unwrap_or_else(|| "-".into()),
                f.mode.clone(),
                f.peer.clone(),
                match &f.second {
                    Some(s) => format!("{}+{s}", f.path),
                    None => f.path.clone(),
                },
                f.packets.to_string(),
                format!("{:.1}s", f.idle_secs),
            ]
        })
        .collect();
    table(
        &[
            "Tenant",
            "Proto",
            "Source",
            "Destination",
            "Policy",
            "SLA",
            "Mode",
            "Peer",
            "Paths",
            "Packets",
            "Idle",
        ],
        &rows,
    )
}

/// `show policies`: each policy's paths to each peer.
pub fn policies(v: &[api::PolicyPaths]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|p| {
            vec![
                p.policy.clone(),
                p.tenant.clone(),
                p.mode.clone(),
                p.sla.clone().unwrap_or_else(|| "-".into()),
                p.peer.clone(),
                if p.mode == "spread" {
                    "per packet".into()
                } else {
                    p.path.clone().unwrap_or_else(|| "(route)".into())
                },
                p.second.clone().unwrap_or_else(|| "-".into()),
                p.moves.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "Policy", "Tenant", "Mode", "SLA", "Peer", "Path", "Second", "Moves",
        ],
        &rows,
    )
}

/// `show sa SPI`: everything about one SA, one field per line (like `swanctl --list-sas`).
pub fn sa_detail(s: &api::Sa) -> String {
    let mut out = format!(
        "SA 0x{:08x} ({}), {} {}, tenant {}, peer {}\n",
        s.spi, s.spi, s.direction, s.kind, s.tenant, s.peer
    );
    let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<14}{v}\n"));
    line(&mut out, "suite", s.suite.clone());
    line(
        &mut out,
        "esn",
        if s.esn { "yes".into() } else { "no".into() },
    );
    if let Some(w) = s.replay_window {
        line(&mut out, "replay window", w.to_string());
    }
    if let Some((ours, theirs)) = &s.loopbacks {
        line(&mut out, "loopbacks", format!("{ours} -> {theirs}"));
    }
    for p in &s.paths {
        line(
            &mut out,
            "circuit",
            format!(
                "{}: {} -> {}, tunnel MTU {}",
                p.port, p.local, p.remote, p.tunnel_mtu
            ),
        );
    }
    line(
        &mut out,
        "used circuits",
        if s.circuits.is_empty() {
            "-".into()
        } else {
            s.circuits.join(", ")
        },
    );
    line(&mut out, "packets", s.packets.to_string());
    line(
        &mut out,
        "bytes",
        format!("{} ({})", s.bytes, human_bytes(s.bytes)),
    );
    line(&mut out, "sequence", s.seq.to_string());
    line(&mut out, "replay drops", s.replay_drops.to_string());
    line(&mut out, "auth failures", s.auth_failed.to_string());
    line(&mut out, "other drops", s.other_drops.to_string());
    line(&mut out, "age", age(s.age_secs));
    line(&mut out, "worker", s.worker.to_string());
    out
}

pub fn neighbors(v: &[api::Neighbor]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|n| vec![n.ip.clone(), n.mac.clone(), n.port.clone()])
        .collect();
    table(&["Address", "MAC", "Port"], &rows)
}

/// `show bgp summary`: FRR's columns.
pub fn bgp_summary(s: &api::BgpSummary) -> String {
    let mut out = format!(
        "BGP router identifier {}, local AS number {} ({})\nBGP table version {}, {} route(s)\n\n",
        s.router_id, s.asn, s.role, s.table_version, s.routes
    );
    let rows: Vec<Vec<String>> = s
        .neighbors
        .iter()
        .map(|n| {
            vec![
                n.neighbor.clone(),
                n.version.to_string(),
                n.remote_as.to_string(),
                n.msg_rcvd.to_string(),
                n.msg_sent.to_string(),
                n.tbl_ver.to_string(),
                n.in_q.to_string(),
                n.out_q.to_string(),
                n.up_down_secs.map_or_else(|| "never".into(), age),
                if n.state == "Established" {
                    n.pfx_rcd.to_string()
                } else {
                    n.state.clone()
                },
                n.pfx_snt.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "Neighbor",
            "V",
            "AS",
            "MsgRcvd",
            "MsgSent",
            "TblVer",
            "InQ",
            "OutQ",
            "Up/Down",
            "State/PfxRcd",
            "PfxSnt",
        ],
        &rows,
    ));
    let errors: Vec<String> = s
        .neighbors
        .iter()
        .filter_map(|n| {
            n.last_error
                .as_ref()
                .map(|e| format!("  {}: {e}", n.neighbor))
        })
        .collect();
    if !errors.is_empty() {
        out.push_str("\nLast errors:\n");
        out.push_str(&errors.join("\n"));
        out.push('\n');
    }
    if s.treated_as_withdraw + s.attributes_discarded + s.unauthorized_routes + s.reflection_loops
        > 0
    {
        out.push_str(&format!(
            "\nRFC 7606: {} update(s) treated as withdraw, {} attribute(s) discarded; {} route(s) refused (route target not authorized), {} reflection loop(s)\n",
            s.treated_as_withdraw, s.attributes_discarded, s.unauthorized_routes, s.reflection_loops
        ));
    }
    out
}

/// `show bgp routes`.
pub fn bgp_routes(v: &[api::BgpRoute]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|r| {
            vec![
                r.family.clone(),
                r.rd.clone().unwrap_or_else(|| "-".into()),
                r.prefix.clone(),
                r.next_hop.clone(),
                r.route_targets.join(","),
                if r.tenants.is_empty() {
                    "-".into()
                } else {
                    r.tenants.join(",")
                },
                r.from.clone(),
                if r.circuits.is_empty() {
                    "-".into()
                } else {
                    r.circuits.join(",")
                },
                if r.stale {
                    "stale".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    table(
        &[
            "Family", "RD", "Prefix", "NextHop", "RT", "Tenant", "From", "Circuits", "",
        ],
        &rows,
    )
}

/// `show sites`.
pub fn sites(v: &[api::Site]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|s| {
            vec![
                s.node.clone(),
                s.tenant.clone(),
                s.circuits
                    .iter()
                    .map(|c| format!("{}:{}", c.transport, c.address))
                    .collect::<Vec<_>>()
                    .join(","),
                s.prefixes.len().to_string(),
                s.key_generation
                    .map_or_else(|| "-".into(), |g| g.to_string()),
                s.key_age_secs.map_or_else(|| "-".into(), age),
                s.sas
                    .iter()
                    .map(|x| format!("{} {:#010x}", x.direction, x.spi))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    table(
        &[
            "Site", "Tenant", "Circuits", "Prefixes", "KeyGen", "KeyAge", "SAs",
        ],
        &rows,
    )
}

/// `request keys rotate`.
pub fn key_rotations(v: &[api::KeyRotation]) -> String {
    v.iter()
        .map(|r| {
            let when = r
                .waits_for
                .as_ref()
                .map_or_else(|| "now".to_owned(), |w| format!("after {w}"));
            format!(
                "{} (VNI {}): key generation {} replaced by {} {when}\n",
                r.tenant,
                r.vni,
                r.generation,
                r.generation.wrapping_add(1)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rotations_say_when() {
        let t = key_rotations(&[
            api::KeyRotation {
                tenant: "blue".into(),
                vni: 1001,
                generation: u32::MAX,
                waits_for: None,
            },
            api::KeyRotation {
                tenant: "red".into(),
                vni: 1002,
                generation: 7,
                waits_for: Some("a synchronized BGP session".into()),
            },
        ]);
        assert_eq!(
            t,
            "blue (VNI 1001): key generation 4294967295 replaced by 0 now\n\
             red (VNI 1002): key generation 7 replaced by 8 after a synchronized BGP session\n"
        );
    }

    #[test]
    fn tables_align_and_show_only_nonzero_drops() {
        let mut s = api::Stats {
            node: "a".into(),
            ..Default::default()
        };
        s.total.drops.insert("no_route".into(), 3);
        s.total.drops.insert("malformed".into(), 0);
        let t = stats(&s);
        assert!(t.contains("no_route     3"), "{t}");
        assert!(!t.contains("malformed"), "{t}");
        let r = routes(&[
            api::Route {
                table: "default".into(),
                prefix: "198.18.9.0/24".into(),
                port: "inet".into(),
                via: Some("198.18.1.2".into()),
                peer: None,
                circuit: None,
                source: "static".into(),
            },
            api::Route {
                table: "blue".into(),
                prefix: "10.2.0.0/24".into(),
                port: String::new(),
                via: None,
                peer: Some("site-b".into()),
                circuit: None,
                source: "static".into(),
            },
        ]);
        assert_eq!(
            r,
            "Table    Prefix         Via          Port         Source\n\
             default  198.18.9.0/24  198.18.1.2   inet         static\n\
             blue     10.2.0.0/24    peer site-b  any circuit  static\n"
        );
        let sa = api::Sa {
            tenant: "blue".into(),
            peer: "site-b".into(),
            kind: "overlay".into(),
            direction: "out".into(),
            spi: 0x1000,
            suite: "aes128gcm16".into(),
            circuits: vec!["inet".into(), "mpls".into()],
            packets: 7,
            bytes: 3 << 20,
            age_secs: 75,
            ..api::Sa::default()
        };
        let t = sas(std::slice::from_ref(&sa));
        assert!(
            t.lines().nth(1).unwrap().starts_with(
                "blue    site-b  out  0x00001000  aes128gcm16  overlay  inet,mpls  7        3.0 MiB"
            ),
            "{t}"
        );
        assert!(t.contains("1m15s"), "{t}");
        let d = sa_detail(&sa);
        assert!(
            d.starts_with("SA 0x00001000 (4096), out overlay, tenant blue, peer site-b"),
            "{d}"
        );
    }
}
