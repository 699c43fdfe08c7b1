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
            vec![
                r.prefix.clone(),
                r.via.clone().unwrap_or_else(|| "connected".into()),
                r.port.clone(),
                r.source.clone(),
            ]
        })
        .collect();
    table(&["Prefix", "Via", "Port", "Source"], &rows)
}

pub fn neighbors(v: &[api::Neighbor]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|n| vec![n.ip.clone(), n.mac.clone(), n.port.clone()])
        .collect();
    table(&["Address", "MAC", "Port"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let r = routes(&[api::Route {
            prefix: "10.2.0.0/24".into(),
            port: "inet".into(),
            via: Some("198.18.1.2".into()),
            source: "static".into(),
        }]);
        assert_eq!(
            r,
            "Prefix       Via         Port  Source\n10.2.0.0/24  198.18.1.2  inet  static\n"
        );
    }
}
