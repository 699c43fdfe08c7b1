//! Checks across fields, run after deserialising (single values are checked in `de.rs`).
//! Each failure names the field it is about; `locate` turns that into a line and column.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::locate::FieldPath;
use crate::Config;

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
    routes(c)
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
    if c.ports.is_empty() {
        return Err(issue(
            root().key("ports"),
            "at least one port is required".into(),
        ));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut devices: HashMap<&str, usize> = HashMap::new();
    let mut addrs: HashMap<IpAddr, (usize, usize)> = HashMap::new();
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
        if p.addresses.is_empty() {
            return Err(issue(
                port(i).key("addresses"),
                "at least one interface address is required".into(),
            ));
        }
        for (k, a) in p.addresses.iter().enumerate() {
            if let Some(&(j, l)) = addrs.get(&a.addr()) {
                return Err(issue(
                    port(i).key("addresses").index(k),
                    format!(
                        "address {} is already assigned (ports[{j}].addresses[{l}])",
                        a.addr()
                    ),
                ));
            }
            addrs.insert(a.addr(), (i, k));
        }
    }
    Ok(())
}

fn routes(c: &Config) -> Result<(), Issue> {
    let route = |i: usize| root().key("routes").index(i);
    let mut prefixes = HashMap::new();
    for (i, r) in c.routes.iter().enumerate() {
        let Some(port) = c.ports.iter().find(|p| p.name == r.port) else {
            let known: Vec<&str> = c.ports.iter().map(|p| p.name.as_str()).collect();
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
