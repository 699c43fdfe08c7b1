//! Checks across fields, run after deserialising (single values are checked in `de.rs`).
//! Each failure names the field it is about; `locate` turns that into a line and column.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::locate::FieldPath;
use crate::{Bgp, Config, Encapsulation, PeerType, PortRole, RouteTarget, Sa, SteeringMode};

/// A validation failure. `paths` lists where to point, best first: the first one present in
/// the document is reported (a field may be absent because it took its default).
pub(crate) struct Issue {
    pub paths: Vec<FieldPath>,
    pub message: String,
}

fn issue(path: FieldPath, message: String) -> Issue {
    Issue {
        paths: vec![path],
        message,
    }
}

fn root() -> FieldPath {
    FieldPath::root()
}

pub(crate) fn validate(c: &Config) -> Result<(), Issue> {
    workers(c)?;
    ports(c)?;
    routes(c)?;
    tenants(c)?;
    peers(c)?;
    path_monitor(c)?;
    policies(c)?;
    tenant_routes(c)?;
    bgp(c)
}

/// SLA classes have unique names; a policy names a known tenant, SLA class and WAN ports,
/// ports only with tcp or udp, weights only for `spread` (one per circuit).
fn policies(c: &Config) -> Result<(), Issue> {
    let mut names = HashMap::new();
    for (i, k) in c.sla_classes.iter().enumerate() {
        if let Some(j) = names.insert(k.name.as_str(), i) {
            return Err(issue(
                root().key("sla_classes").index(i).key("name"),
                format!(
                    "SLA class {:?} is defined twice (also sla_classes[{j}])",
                    k.name
                ),
            ));
        }
    }
    let mut policy_names = HashMap::new();
    for (i, p) in c.policies.iter().enumerate() {
        let at = || root().key("policies").index(i);
        if let Some(j) = policy_names.insert(p.name.as_str(), i) {
            return Err(issue(
                at().key("name"),
                format!("policy {:?} is defined twice (also policies[{j}])", p.name),
            ));
        }
        if !c.tenants.iter().any(|t| t.name == p.tenant) {
            let known: Vec<&str> = c.tenants.iter().map(|t| t.name.as_str()).collect();
            return Err(issue(
                at().key("tenant"),
                format!(
                    "unknown tenant {:?} (tenants: {})",
                    p.tenant,
                    known.join(", ")
                ),
            ));
        }
        if let Some(sla) = &p.sla {
            if !names.contains_key(sla.as_str()) {
                return Err(issue(
                    at().key("sla"),
                    format!("unknown SLA class {sla:?} (define it in sla_classes)"),
                ));
            }
        }
        for (k, name) in p.circuits.iter().enumerate() {
            match c.ports.iter().find(|x| &x.name == name) {
                Some(x) if x.role == PortRole::Wan => {}
                _ => {
                    return Err(issue(
                        at().key("circuits").index(k),
                        format!(
                            "unknown circuit {name:?} (WAN ports are: {})",
                            port_names(c, PortRole::Wan)
                        ),
                    ))
                }
            }
            if let Some(j) = p.circuits[..k].iter().position(|o| o == name) {
                return Err(issue(
                    at().key("circuits").index(k),
                    format!("circuit {name:?} is already circuits[{j}]"),
                ));
            }
        }
        let m = &p.matches;
        if (!m.src_ports.is_empty() || !m.dst_ports.is_empty())
            && !matches!(m.protocol, Some(6 | 17))
        {
            let field = if m.src_ports.is_empty() {
                "dst_ports"
            } else {
                "src_ports"
            };
            return Err(issue(
                at().key("match").key(field),
                "ports need protocol tcp or udp".into(),
            ));
        }
        if !p.weights.is_empty() {
            if p.mode != SteeringMode::Spread {
                return Err(issue(
                    at().key("weights"),
                    "weights apply to mode spread".into(),
                ));
            }
            let want = if p.circuits.is_empty() {
                c.ports.iter().filter(|x| x.role == PortRole::Wan).count()
            } else {
                p.circuits.len()
            };
            if p.weights.len() != want {
                return Err(issue(
                    at().key("weights"),
                    format!("{} weights for {want} circuits (one each)", p.weights.len()),
                ));
            }
            if let Some(k) = p.weights.iter().position(|&w| !(1..=100).contains(&w)) {
                return Err(issue(
                    at().key("weights").index(k),
                    format!("weight {} is out of range 1..=100", p.weights[k]),
                ));
            }
        }
    }
    Ok(())
}

/// `transport` and `trusted` describe WAN circuits; the idle probe interval is not shorter
/// than the active one.
fn path_monitor(c: &Config) -> Result<(), Issue> {
    for (i, p) in c.ports.iter().enumerate() {
        if p.role == PortRole::Lan {
            for (field, set) in [("transport", p.transport.is_some()), ("trusted", p.trusted)] {
                if set {
                    return Err(issue(
                        root().key("ports").index(i).key(field),
                        format!(
                            "{field} applies to WAN ports; port {:?} has role lan",
                            p.name
                        ),
                    ));
                }
            }
        }
    }
    let m = &c.path_monitor;
    if [4789, 4500, 500].contains(&m.port) {
        return Err(issue(
            root().key("path_monitor").key("port"),
            format!(
                "port {} is taken by the tunnels (VXLAN 4789, IKE 500, NAT-T 4500)",
                m.port
            ),
        ));
    }
    if m.idle_interval_ms < m.interval_ms {
        return Err(issue(
            root().key("path_monitor").key("idle_interval_ms"),
            format!(
                "{} ms is shorter than interval_ms ({} ms); an idle path is probed less often",
                m.idle_interval_ms, m.interval_ms
            ),
        ));
    }
    Ok(())
}

fn workers(c: &Config) -> Result<(), Issue> {
    let w = &c.workers;
    let cores = || root().key("workers").key("cores");
    if w.cores.is_empty() {
        return Err(issue(
            cores(),
            "at least one worker core is required".into(),
        ));
    }
    for (i, &core) in w.cores.iter().enumerate() {
        if let Some(j) = w.cores[..i].iter().position(|&c| c == core) {
            return Err(issue(
                cores().index(i),
                format!("core {core} is listed twice (also workers.cores[{j}])"),
            ));
        }
        if core == w.control_core {
            return Err(Issue {
                paths: vec![cores().index(i), root().key("workers").key("control_core")],
                message: format!(
                    "core {core} is the control core (workers.control_core); \
                     a worker needs a core of its own"
                ),
            });
        }
    }
    Ok(())
}

fn ports(c: &Config) -> Result<(), Issue> {
    let port = |i: usize| root().key("ports").index(i);
    let reflector = c.bgp.as_ref().is_some_and(|b| b.route_reflector.is_some());
    if c.ports.is_empty() && !reflector {
        return Err(issue(
            root().key("ports"),
            "at least one port is required (only a pure route reflector, with \
             bgp.route_reflector, has none)"
                .into(),
        ));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut devices: HashMap<&str, usize> = HashMap::new();
    let mut addrs: HashMap<IpAddr, String> = HashMap::new();
    for (i, p) in c.ports.iter().enumerate() {
        if let Some(&j) = names.get(p.name.as_str()) {
            return Err(issue(
                port(i).key("name"),
                format!("duplicate port name {:?} (also ports[{j}])", p.name),
            ));
        }
        names.insert(&p.name, i);
        if let Some(&j) = devices.get(p.vdev_name()) {
            return Err(issue(
                port(i).key("device"),
                format!(
                    "device {:?} is already used by port {:?} (ports[{j}])",
                    p.vdev_name(),
                    c.ports[j].name
                ),
            ));
        }
        devices.insert(p.vdev_name(), i);
        // net_memif talks to its peer process over DPDK's multi-process channel, which
        // `--no-shconf` switches off: the driver would fail at probe with "Operation not
        // supported". Each process needs its own `--file-prefix` instead.
        if p.vdev_name().starts_with("net_memif")
            && c.dpdk.eal_args.iter().any(|a| a == "--no-shconf")
        {
            return Err(issue(
                port(i).key("device"),
                "a net_memif device needs DPDK's multi-process support: replace \"--no-shconf\" \
                 in dpdk.eal_args with \"--file-prefix\", \"NAME\" (unique per process)"
                    .into(),
            ));
        }
        if p.addresses.is_empty() {
            return Err(issue(
                port(i).key("addresses"),
                "at least one interface address is required".into(),
            ));
        }
        for (k, a) in p.addresses.iter().enumerate() {
            if let Some(other) = addrs.get(&a.addr()) {
                return Err(issue(
                    port(i).key("addresses").index(k),
                    format!("address {} is already assigned ({other})", a.addr()),
                ));
            }
            addrs.insert(a.addr(), format!("ports[{i}].addresses[{k}]"));
        }
        for (v, vl) in p.vlans.iter().enumerate() {
            let at = || port(i).key("vlans").index(v);
            if let Some(w) = p.vlans[..v].iter().position(|o| o.id == vl.id) {
                return Err(issue(
                    at().key("id"),
                    format!("VLAN {} is already vlans[{w}] of this port", vl.id),
                ));
            }
            if vl.addresses.is_empty() {
                return Err(issue(
                    at().key("addresses"),
                    "at least one interface address is required".into(),
                ));
            }
            for (k, a) in vl.addresses.iter().enumerate() {
                if let Some(other) = addrs.get(&a.addr()) {
                    return Err(issue(
                        at().key("addresses").index(k),
                        format!("address {} is already assigned ({other})", a.addr()),
                    ));
                }
                addrs.insert(a.addr(), format!("ports[{i}].vlans[{v}].addresses[{k}]"));
            }
        }
    }
    Ok(())
}

fn routes(c: &Config) -> Result<(), Issue> {
    let route = |i: usize| root().key("routes").index(i);
    let mut prefixes = HashMap::new();
    for (i, r) in c.routes.iter().enumerate() {
        let interfaces = c.interfaces();
        let Some(port) = interfaces.iter().find(|p| p.name == r.port) else {
            let known: Vec<&str> = interfaces.iter().map(|p| p.name.as_str()).collect();
            return Err(issue(
                route(i).key("port"),
                format!(
                    "unknown port {:?} (ports are: {})",
                    r.port,
                    known.join(", ")
                ),
            ));
        };
        if let Some(j) = prefixes.insert(r.prefix, i) {
            return Err(issue(
                route(i).key("prefix"),
                format!("duplicate route for {} (also routes[{j}])", r.prefix),
            ));
        }
        let Some(via) = r.via else { continue };
        let family = |a: IpAddr| if a.is_ipv4() { "IPv4" } else { "IPv6" };
        if via.is_ipv4() != r.prefix.addr().is_ipv4() {
            return Err(issue(
                route(i).key("via"),
                format!(
                    "next hop {via} is {} but prefix {} is {}",
                    family(via),
                    r.prefix,
                    family(r.prefix.addr())
                ),
            ));
        }
        if port.addresses.iter().any(|a| a.addr() == via) {
            return Err(issue(
                route(i).key("via"),
                format!(
                    "next hop {via} is an address of port {:?} itself",
                    port.name
                ),
            ));
        }
        if !port.addresses.iter().any(|a| a.contains(&via)) {
            let subnets: Vec<String> = port
                .addresses
                .iter()
                .filter(|a| a.addr().is_ipv4() == via.is_ipv4())
                .map(|a| a.trunc().to_string())
                .collect();
            let subnets = if subnets.is_empty() {
                format!("it has no {} address", family(via))
            } else {
                format!("connected: {}", subnets.join(", "))
            };
            return Err(issue(
                route(i).key("via"),
                format!(
                    "next hop {via} is not inside a connected subnet of port {:?} ({subnets})",
                    port.name
                ),
            ));
        }
    }
    Ok(())
}

fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn port_names(c: &Config, role: PortRole) -> String {
    let v: Vec<String> = c
        .interfaces()
        .into_iter()
        .filter(|p| p.role == role)
        .map(|p| p.name)
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn tenants(c: &Config) -> Result<(), Issue> {
    let tenant = |i: usize| root().key("tenants").index(i);
    let mut names = HashMap::new();
    let mut vnis = HashMap::new();
    let mut lan_owner: HashMap<&str, usize> = HashMap::new();
    for (i, t) in c.tenants.iter().enumerate() {
        if let Some(k) = c.routes.iter().position(|r| t.lan_ports.contains(&r.port)) {
            return Err(issue(
                root().key("routes").index(k).key("port"),
                format!(
                    "port {:?} belongs to tenant {:?}: put this route in the tenant's routes",
                    c.routes[k].port, t.name
                ),
            ));
        }
        if let Some(j) = names.insert(t.name.as_str(), i) {
            return Err(issue(
                tenant(i).key("name"),
                format!("tenant {:?} is defined twice (also tenants[{j}])", t.name),
            ));
        }
        if let Some(j) = vnis.insert(t.vni, i) {
            return Err(issue(
                tenant(i).key("vni"),
                format!(
                    "VNI {} is already used by tenant {:?}",
                    t.vni, c.tenants[j].name
                ),
            ));
        }
        for (k, name) in t.lan_ports.iter().enumerate() {
            let at = || tenant(i).key("lan_ports").index(k);
            match c.interfaces().into_iter().find(|p| &p.name == name) {
                Some(p) if p.role == PortRole::Lan => {}
                Some(_) => {
                    return Err(issue(
                        at(),
                        format!("port {name:?} has role wan; a tenant's ports have role lan"),
                    ))
                }
                None => {
                    return Err(issue(
                        at(),
                        format!(
                            "unknown port {name:?} (LAN ports are: {})",
                            port_names(c, PortRole::Lan)
                        ),
                    ))
                }
            }
            if let Some(j) = lan_owner.insert(name.as_str(), i) {
                return Err(issue(
                    at(),
                    format!(
                        "port {name:?} already belongs to tenant {:?}",
                        c.tenants[j].name
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn peers(c: &Config) -> Result<(), Issue> {
    let peer = |i: usize| root().key("peers").index(i);
    let mut names = HashMap::new();
    // Inbound SPI blocks: (first, last, where).
    let mut inbound: Vec<(u32, u32, String)> = Vec::new();
    for (i, p) in c.peers.iter().enumerate() {
        if let Some(j) = names.insert(p.name.as_str(), i) {
            return Err(issue(
                peer(i).key("name"),
                format!("peer {:?} is defined twice (also peers[{j}])", p.name),
            ));
        }
        match p.kind {
            PeerType::Overlay => {
                if c.workers.cores.len() > Sa::SENDERS as usize {
                    return Err(issue(
                        root().key("workers").key("cores"),
                        format!(
                            "{} worker cores, but an overlay SA has {} SPIs, one per sending \
                             worker (peer {:?})",
                            c.workers.cores.len(),
                            Sa::SENDERS,
                            p.name
                        ),
                    ));
                }
                let Some(ours) = c.node.loopback else {
                    return Err(Issue {
                        paths: vec![root().key("node").key("loopback"), root().key("node")],
                        message: format!(
                            "node.loopback is required: peer {:?} is an overlay peer",
                            p.name
                        ),
                    });
                };
                let Some(theirs) = p.loopback else {
                    return Err(Issue {
                        paths: vec![peer(i).key("loopback"), peer(i).key("name")],
                        message: "an overlay peer needs its loopback address".into(),
                    });
                };
                if ours.is_ipv4() != theirs.is_ipv4() {
                    return Err(issue(
                        peer(i).key("loopback"),
                        format!(
                            "loopback {theirs} is {} but node.loopback {ours} is {}",
                            family(theirs),
                            family(ours)
                        ),
                    ));
                }
                if ours == theirs {
                    return Err(issue(
                        peer(i).key("loopback"),
                        format!("loopback {theirs} is node.loopback itself"),
                    ));
                }
                if p.encapsulation != Encapsulation::None {
                    return Err(issue(
                        peer(i).key("encapsulation"),
                        "encapsulation applies to peers of type ipsec (the overlay is always VXLAN)"
                            .into(),
                    ));
                }
            }
            PeerType::Ipsec => {
                if p.loopback.is_some() {
                    return Err(issue(
                        peer(i).key("loopback"),
                        "a peer of type ipsec has no loopback (its tunnel ends at the circuit address)"
                            .into(),
                    ));
                }
                if p.circuits.len() != 1 {
                    return Err(issue(
                        peer(i).key("circuits"),
                        format!(
                            "a peer of type ipsec has exactly one circuit ({} given)",
                            p.circuits.len()
                        ),
                    ));
                }
            }
        }
        if p.circuits.is_empty() {
            return Err(issue(
                peer(i).key("circuits"),
                "at least one circuit is required".into(),
            ));
        }
        if p.circuits.len() > 16 {
            return Err(issue(
                peer(i).key("circuits"),
                format!("at most 16 circuits ({} given)", p.circuits.len()),
            ));
        }
        for (k, ct) in p.circuits.iter().enumerate() {
            let at = || peer(i).key("circuits").index(k);
            if let Some(j) = p.circuits[..k].iter().position(|o| o.port == ct.port) {
                return Err(issue(
                    at().key("port"),
                    format!("port {:?} is already circuits[{j}] of this peer", ct.port),
                ));
            }
            let interfaces = c.interfaces();
            let Some(port) = interfaces.iter().find(|q| q.name == ct.port) else {
                return Err(issue(
                    at().key("port"),
                    format!(
                        "unknown port {:?} (WAN ports are: {})",
                        ct.port,
                        port_names(c, PortRole::Wan)
                    ),
                ));
            };
            if port.role != PortRole::Wan {
                return Err(issue(
                    at().key("port"),
                    format!("port {:?} has role lan; circuits are WAN ports", ct.port),
                ));
            }
            if let Some(tr) = ct.transport.as_ref().filter(|tr| **tr != port.transport) {
                return Err(issue(
                    at().key("transport"),
                    format!(
                        "the peer's circuit is in transport {tr:?}, port {:?} in {:?}: a path \
                         pairs circuits of one transport",
                        ct.port, port.transport
                    ),
                ));
            }
            let a = ct.address;
            if !port
                .addresses
                .iter()
                .any(|n| n.addr().is_ipv4() == a.is_ipv4())
            {
                return Err(issue(
                    at().key("address"),
                    format!(
                        "port {:?} has no {} address to reach {a} from",
                        port.name,
                        family(a)
                    ),
                ));
            }
            if port.addresses.iter().any(|n| n.addr() == a) {
                return Err(issue(
                    at().key("address"),
                    format!("{a} is an address of port {:?} itself", port.name),
                ));
            }
            let connected = port.addresses.iter().any(|n| n.contains(&a));
            let routed = c
                .routes
                .iter()
                .any(|r| r.port == port.name && r.prefix.contains(&a));
            if !connected && !routed {
                return Err(issue(
                    at().key("address"),
                    format!(
                        "{a} is neither in a connected subnet of port {:?} nor covered by a \
                         static route on it",
                        port.name
                    ),
                ));
            }
        }
        if p.sas.is_empty() {
            return Err(issue(
                peer(i).key("sas"),
                "at least one SA is required".into(),
            ));
        }
        for (k, sa) in p.sas.iter().enumerate() {
            let at = || peer(i).key("sas").index(k);
            if !c.tenants.iter().any(|t| t.name == sa.tenant) {
                let known: Vec<&str> = c.tenants.iter().map(|t| t.name.as_str()).collect();
                return Err(issue(
                    at().key("tenant"),
                    format!(
                        "unknown tenant {:?} (tenants are: {})",
                        sa.tenant,
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            if let Some(j) = p.sas[..k].iter().position(|o| o.tenant == sa.tenant) {
                return Err(issue(
                    at().key("tenant"),
                    format!(
                        "tenant {:?} already has an SA with this peer (sas[{j}])",
                        sa.tenant
                    ),
                ));
            }
            let block = match p.kind {
                PeerType::Overlay => Sa::SENDERS,
                PeerType::Ipsec => 1,
            };
            for (dir, keys) in [("out", &sa.out), ("in", &sa.inbound)] {
                let at = || at().key(dir);
                match (&keys.key, &keys.key_file) {
                    (Some(_), Some(_)) => {
                        return Err(issue(
                            at().key("key_file"),
                            "give either key or key_file, not both".into(),
                        ))
                    }
                    (None, None) => {
                        return Err(Issue {
                            paths: vec![at().key("spi"), at()],
                            message: "a key is required: key (hex) or key_file".into(),
                        })
                    }
                    _ => {}
                }
                if let Some(k) = &keys.key {
                    check_key_len(sa, k.expose().len()).map_err(|m| issue(at().key("key"), m))?;
                }
                if u64::from(keys.spi) + u64::from(block) - 1 > u64::from(u32::MAX) {
                    return Err(issue(
                        at().key("spi"),
                        format!(
                            "SPI {:#x} leaves no room for the {block} SPIs of an overlay SA",
                            keys.spi
                        ),
                    ));
                }
            }
            let (first, last) = (sa.inbound.spi, sa.inbound.spi + (block - 1));
            if let Some((_, _, other)) = inbound.iter().find(|(f, l, _)| first <= *l && *f <= last)
            {
                return Err(issue(
                    at().key("in").key("spi"),
                    format!(
                        "inbound SPIs {first:#x}..={last:#x} overlap those of {other} \
                         (an overlay SA takes {} SPIs, one per sending worker)",
                        Sa::SENDERS
                    ),
                ));
            }
            inbound.push((first, last, format!("peers[{i}].sas[{k}]")));
        }
    }
    Ok(())
}

/// The keying material's length for the SA's suite.
pub(crate) fn check_key_len(sa: &Sa, got: usize) -> Result<(), String> {
    let want = sa.suite.keymat_len();
    if got != want {
        return Err(format!(
            "a {} key is {want} bytes ({} hex digits: the AES key then the 4-byte salt); \
             {got} bytes given (the key is not shown)",
            match sa.suite {
                crate::Suite::Aes128Gcm16 => "aes128gcm16",
                crate::Suite::Aes256Gcm16 => "aes256gcm16",
            },
            want * 2
        ));
    }
    Ok(())
}

fn tenant_routes(c: &Config) -> Result<(), Issue> {
    for (i, t) in c.tenants.iter().enumerate() {
        let route = |k: usize| root().key("tenants").index(i).key("routes").index(k);
        let mut prefixes = HashMap::new();
        for (k, r) in t.routes.iter().enumerate() {
            if let Some(j) = prefixes.insert(r.prefix, k) {
                return Err(issue(
                    route(k).key("prefix"),
                    format!("duplicate route for {} (also routes[{j}])", r.prefix),
                ));
            }
            match (&r.peer, &r.port) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(Issue {
                        paths: vec![route(k).key("peer"), route(k).key("port"), route(k)],
                        message: "a tenant route names either a peer or a port".into(),
                    })
                }
                (Some(name), None) => {
                    let at = || route(k).key("peer");
                    let Some(p) = c.peers.iter().find(|p| &p.name == name) else {
                        return Err(issue(at(), format!("unknown peer {name:?}")));
                    };
                    if !p.sas.iter().any(|sa| sa.tenant == t.name) {
                        return Err(issue(
                            at(),
                            format!("peer {name:?} has no SA for tenant {:?}", t.name),
                        ));
                    }
                    if r.via.is_some() {
                        return Err(issue(
                            route(k).key("via"),
                            "via applies to routes to a port".into(),
                        ));
                    }
                    if let Some(ct) = &r.circuit {
                        if !p.circuits.iter().any(|x| &x.port == ct) {
                            let known: Vec<&str> =
                                p.circuits.iter().map(|x| x.port.as_str()).collect();
                            return Err(issue(
                                route(k).key("circuit"),
                                format!(
                                    "peer {name:?} has no circuit on port {ct:?} (its circuits: {})",
                                    known.join(", ")
                                ),
                            ));
                        }
                    }
                }
                (None, Some(name)) => {
                    if !t.lan_ports.contains(name) {
                        return Err(issue(
                            route(k).key("port"),
                            format!(
                                "port {name:?} is not a LAN port of tenant {:?} (its ports: {})",
                                t.name,
                                t.lan_ports.join(", ")
                            ),
                        ));
                    }
                    if r.circuit.is_some() {
                        return Err(issue(
                            route(k).key("circuit"),
                            "circuit applies to routes to a peer".into(),
                        ));
                    }
                    if let Some(via) = r.via {
                        let interfaces = c.interfaces();
                        let port = interfaces.iter().find(|p| &p.name == name);
                        let inside = port.is_some_and(|p| {
                            p.addresses
                                .iter()
                                .any(|a| a.contains(&via) && a.addr() != via)
                        });
                        if via.is_ipv4() != r.prefix.addr().is_ipv4() || !inside {
                            return Err(issue(
                                route(k).key("via"),
                                format!(
                                    "next hop {via} must be a neighbor inside a connected subnet \
                                     of port {name:?}, of the prefix's family"
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn names_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The `bgp` section, and what it changes elsewhere: WAN transports need an id, tenants get
/// route targets and may advertise prefixes.
fn bgp(c: &Config) -> Result<(), Issue> {
    let Some(b) = &c.bgp else {
        for (i, t) in c.tenants.iter().enumerate() {
            for (field, set) in [
                ("route_target", t.route_target.is_some()),
                ("advertise", !t.advertise.is_empty()),
            ] {
                if set {
                    return Err(issue(
                        root().key("tenants").index(i).key(field),
                        format!("{field} applies with the bgp section, which is not configured"),
                    ));
                }
            }
        }
        return Ok(());
    };
    let at = || root().key("bgp");
    if b.router_id.is_unspecified() {
        let why = match c.node.loopback {
            None => "its default, node.loopback, is not set".to_string(),
            Some(l) => format!("its default, node.loopback, is {l}, not IPv4"),
        };
        return Err(issue(
            at().key("router_id"),
            format!("a router ID is required: {why}"),
        ));
    }
    for (k, t) in b.transports.iter().enumerate() {
        if let Some(o) = b.transports[..k].iter().find(|o| o.id == t.id) {
            return Err(issue(
                at().key("transports").key(&t.name),
                format!("id {} is already transport {:?}'s", t.id, o.name),
            ));
        }
    }
    for (i, p) in c.ports.iter().enumerate() {
        let tr = p.transport_domain();
        if p.role == PortRole::Wan && b.transport_id(tr).is_none() {
            return Err(Issue {
                paths: vec![
                    root().key("ports").index(i).key("transport"),
                    root().key("ports").index(i).key("name"),
                ],
                message: format!(
                    "transport {tr:?} of WAN port {:?} has no id in bgp.transports (ids are \
                     given for: {})",
                    p.name,
                    names_or_none(b.transports.iter().map(|t| t.name.as_str()))
                ),
            });
        }
    }
    let k = &b.keys;
    for (field, v) in [("grace_s", k.grace_s), ("switch_after_s", k.switch_after_s)] {
        if v >= k.rotate_s {
            return Err(Issue {
                paths: vec![
                    at().key("keys").key(field),
                    at().key("keys").key("rotate_s"),
                ],
                message: format!(
                    "{field} ({v} s) must be shorter than rotate_s ({} s)",
                    k.rotate_s
                ),
            });
        }
    }
    let mut groups = HashMap::new();
    for (i, g) in b.groups.iter().enumerate() {
        let at = at().key("groups").index(i);
        if let Some(j) = groups.insert(g.name.as_str(), i) {
            return Err(issue(
                at.key("name"),
                format!("group {:?} is defined twice (also bgp.groups[{j}])", g.name),
            ));
        }
        session(
            c,
            b,
            &at,
            g.route_reflector_client,
            g.tenants.as_deref(),
            (g.password.is_some(), g.password_file.is_some()),
        )?;
    }
    let interfaces = c.interfaces();
    for (i, n) in b.neighbors.iter().enumerate() {
        let at = || root().key("bgp").key("neighbors").index(i);
        let a = n.address;
        if let Some(j) = b.neighbors[..i].iter().position(|o| o.address == a) {
            return Err(issue(
                at().key("address"),
                format!("neighbor {a} is already bgp.neighbors[{j}]"),
            ));
        }
        if c.node.loopback == Some(a) {
            return Err(issue(
                at().key("address"),
                format!("{a} is node.loopback itself"),
            ));
        }
        if let Some(x) = interfaces
            .iter()
            .find(|x| x.addresses.iter().any(|n| n.addr() == a))
        {
            return Err(issue(
                at().key("address"),
                format!("{a} is an address of port {:?} itself", x.name),
            ));
        }
        if let Some(g) = &n.group {
            if !groups.contains_key(g.as_str()) {
                return Err(issue(
                    at().key("group"),
                    format!(
                        "unknown group {g:?} (groups are: {})",
                        names_or_none(b.groups.iter().map(|g| g.name.as_str()))
                    ),
                ));
            }
        }
        if let Some(l) = n.local_address {
            if l.is_ipv4() != a.is_ipv4() {
                return Err(issue(
                    at().key("local_address"),
                    format!(
                        "local address {l} is {} but the neighbor's address {a} is {}",
                        family(l),
                        family(a)
                    ),
                ));
            }
            if l == a {
                return Err(issue(
                    at().key("local_address"),
                    format!("local address {l} is the neighbor's address itself"),
                ));
            }
        }
        if n.passive {
            if n.port.is_some() {
                return Err(issue(
                    at().key("port"),
                    "port is where we connect to; a passive neighbor is only accepted".into(),
                ));
            }
            if b.listen.is_none() {
                return Err(issue(
                    at().key("passive"),
                    "a passive neighbor needs bgp.listen (where its session is accepted)".into(),
                ));
            }
        }
        session(
            c,
            b,
            &at(),
            n.route_reflector_client == Some(true),
            n.tenants.as_deref(),
            (n.password.is_some(), n.password_file.is_some()),
        )?;
    }
    let mut targets: HashMap<RouteTarget, usize> = HashMap::new();
    for (i, t) in c.tenants.iter().enumerate() {
        let tenant = || root().key("tenants").index(i);
        let Some(rt) = t
            .route_target
            .or_else(|| RouteTarget::default_for(b.asn, t.vni))
        else {
            return Err(Issue {
                paths: vec![tenant().key("vni"), tenant()],
                message: format!(
                    "the default route target {}:{} does not fit: after a 4-byte AS the number \
                     is 0..=65535; give the tenant a route_target",
                    b.asn, t.vni
                ),
            });
        };
        if let Some(j) = targets.insert(rt, i) {
            let default = if t.route_target.is_none() {
                " (the default, <bgp.asn>:<vni>)"
            } else {
                ""
            };
            return Err(Issue {
                paths: vec![tenant().key("route_target"), tenant().key("vni")],
                message: format!(
                    "route target {rt}{default} is already tenant {:?}'s",
                    c.tenants[j].name
                ),
            });
        }
        for (k, p) in t.advertise.iter().enumerate() {
            if let Some(j) = t.advertise[..k].iter().position(|o| o == p) {
                return Err(issue(
                    tenant().key("advertise").index(k),
                    format!("prefix {p} is already advertise[{j}]"),
                ));
            }
        }
    }
    Ok(())
}

/// What groups and neighbors share: reflector clients only on a reflector, known tenants, one
/// password source.
fn session(
    c: &Config,
    b: &Bgp,
    at: &FieldPath,
    route_reflector_client: bool,
    tenants: Option<&[String]>,
    (password, password_file): (bool, bool),
) -> Result<(), Issue> {
    if route_reflector_client && b.route_reflector.is_none() {
        return Err(issue(
            at.clone().key("route_reflector_client"),
            "route_reflector_client needs bgp.route_reflector (this sdwand reflects no routes)"
                .into(),
        ));
    }
    if let Some(ts) = tenants {
        if ts.is_empty() {
            return Err(issue(
                at.clone().key("tenants"),
                "at least one tenant (leave tenants out for all of them)".into(),
            ));
        }
        for (k, name) in ts.iter().enumerate() {
            let here = || at.clone().key("tenants").index(k);
            if !c.tenants.iter().any(|t| &t.name == name) {
                return Err(issue(
                    here(),
                    format!(
                        "unknown tenant {name:?} (tenants are: {})",
                        names_or_none(c.tenants.iter().map(|t| t.name.as_str()))
                    ),
                ));
            }
            if let Some(j) = ts[..k].iter().position(|o| o == name) {
                return Err(issue(
                    here(),
                    format!("tenant {name:?} is already tenants[{j}]"),
                ));
            }
        }
    }
    if password && password_file {
        return Err(issue(
            at.clone().key("password_file"),
            "give either password or password_file, not both".into(),
        ));
    }
    Ok(())
}
