//! Field parsers used through `#[serde(deserialize_with)]`. Every check that concerns a single
//! value lives here, so its error is raised while the deserialiser stands on that value and
//! carries the value's own line and column. Sequences whose elements are checked are read
//! through an element wrapper for the same reason (the location is the element's).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::de::{self, Deserialize, Deserializer, Error as _, Visitor};
use serde::Serializer;

// ---------------------------------------------------------------------------------------------
// Integers

/// Reads any YAML integer (a plain scalar, not a quoted string) as `i128`.
struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(v.into())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(v.into())
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<i128, E> {
        Ok(v)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<i128, E> {
        i128::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
    }
}

/// An integer in `min..=max`, converted to `T` (the range must fit `T`).
fn int_in<'de, D, T>(d: D, min: i128, max: i128) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    let v = d.deserialize_any(IntVisitor)?;
    if v < min || v > max {
        return Err(D::Error::custom(format!(
            "{v} is out of range {min}..={max}"
        )));
    }
    T::try_from(v).map_err(|_| D::Error::custom(format!("{v} is out of range {min}..={max}")))
}

pub(crate) fn mbufs<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 1023, 4_194_303)
}

pub(crate) fn mbuf_cache<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 0, 512)
}

pub(crate) fn core<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    int_in(d, 0, crate::Workers::MAX_CORES as i128 - 1)
}

pub(crate) fn rx_burst<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    int_in(d, 1, 256)
}

pub(crate) fn idle_sleep_max_us<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 0, 100_000)
}

pub(crate) fn probe_interval_ms<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 10, 10_000)
}

pub(crate) fn idle_interval_ms<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 10, 60_000)
}

pub(crate) fn down_after<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 1, 100)
}

pub(crate) fn holddown_ms<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 0, 600_000)
}

pub(crate) fn min_timeout_ms<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 1, 10_000)
}

pub(crate) fn udp_port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    int_in(d, 1, 65_535)
}

/// A transport domain's name: `[A-Za-z0-9_-]{1,32}`, like a node name.
pub(crate) fn transport<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    node_name(d).map(Some)
}

pub(crate) fn opt_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    int_in(d, 1, 10_000).map(Some)
}

pub(crate) fn opt_pct<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = f64::deserialize(d)?;
    if !(0.0..=100.0).contains(&v) {
        return Err(D::Error::custom(format!("{v} is out of range 0..=100")));
    }
    Ok(Some(v))
}

pub(crate) fn fec_k<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    int_in(d, 2, 16)
}

/// A YAML scalar that is a number or a string.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum P {
    N(i64),
    S(String),
}

/// A protocol name or number.
pub(crate) fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    match P::deserialize(d)? {
        P::N(n) => u8::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("protocol {n} is out of range 0..=255"))),
        P::S(s) => match s.as_str() {
            "tcp" => Ok(Some(6)),
            "udp" => Ok(Some(17)),
            "icmp" => Ok(Some(1)),
            "icmpv6" => Ok(Some(58)),
            _ => Err(D::Error::custom(format!(
                "unknown protocol {s:?} (tcp, udp, icmp, icmpv6 or a number 0..=255)"
            ))),
        },
    }
}

/// Ports or port ranges: `5060` or `"16384-32767"`.
pub(crate) fn port_ranges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(u16, u16)>, D::Error> {
    let port = |n: i64| {
        u16::try_from(n)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("port {n} is out of range 1..=65535"))
    };
    let mut out = Vec::new();
    for p in Vec::<P>::deserialize(d)? {
        let r = match p {
            P::N(n) => port(n).map(|p| (p, p)),
            P::S(s) => match s.split_once('-') {
                Some((a, b)) => match (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
                    (Ok(a), Ok(b)) => port(a).and_then(|a| {
                        port(b).and_then(|b| {
                            if a <= b {
                                Ok((a, b))
                            } else {
                                Err(format!("port range {s:?} runs backwards"))
                            }
                        })
                    }),
                    _ => Err(format!(
                        "invalid port range {s:?} (write e.g. \"16384-32767\")"
                    )),
                },
                None => s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("invalid port {s:?}"))
                    .and_then(port)
                    .map(|p| (p, p)),
            },
        };
        out.push(r.map_err(D::Error::custom)?);
    }
    Ok(out)
}

pub(crate) fn dscps<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let v = Vec::<i64>::deserialize(d)?;
    v.into_iter()
        .map(|n| {
            u8::try_from(n)
                .ok()
                .filter(|&x| x <= 63)
                .ok_or_else(|| D::Error::custom(format!("DSCP {n} is out of range 0..=63")))
        })
        .collect()
}

/// Prefixes of a policy match (host bits must be clear, as in routes).
pub(crate) fn prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| {
            let net = parse_net("prefix", s).map_err(D::Error::custom)?;
            if net.addr() != net.network() {
                return Err(D::Error::custom(format!(
                    "prefix {s:?} has host bits set (did you mean {}?)",
                    net.trunc()
                )));
            }
            Ok(net)
        })
        .collect()
}

/// One element of `tenants[].advertise`: a network address (host bits clear).
struct Advertised(IpNet);

impl<'de> Deserialize<'de> for Advertised {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let net = parse_net("prefix", &s).map_err(D::Error::custom)?;
        if net.addr() != net.network() {
            return Err(D::Error::custom(format!(
                "prefix {s:?} has host bits set (did you mean {}?)",
                net.trunc()
            )));
        }
        Ok(Advertised(net))
    }
}

/// `tenants[].advertise`: errors at the element; an empty value is an empty list.
pub(crate) fn advertise<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Ok(Option::<Vec<Advertised>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.0)
        .collect())
}

pub(crate) fn mtu<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    int_in(d, 576, 9000)
}

/// One element of `workers.cores`.
struct Core(usize);

impl<'de> Deserialize<'de> for Core {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        core(d).map(Core)
    }
}

pub(crate) fn cores<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
    Ok(Vec::<Core>::deserialize(d)?
        .into_iter()
        .map(|c| c.0)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Strings

/// A C string for DPDK: no NUL byte.
fn check_c_string(what: &str, s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err(format!("{what} {s:?} contains a NUL character"));
    }
    Ok(())
}

fn check_ident(what: &str, s: &str, max: usize) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} {s:?}: use 1 to {max} characters from A-Z a-z 0-9 _ -"
        ))
    }
}

pub(crate) fn node_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_ident("node name", &s, 32).map_err(D::Error::custom)?;
    Ok(s)
}

pub(crate) fn port_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_ident("port name", &s, 15).map_err(D::Error::custom)?;
    Ok(s)
}

/// DPDK's `RTE_DEV_NAME_MAX_LEN` (64) including the terminating NUL.
const DEVICE_NAME_MAX: usize = 63;

pub(crate) fn device<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let name = s.split(',').next().unwrap_or("");
    let err = |why: &str| D::Error::custom(format!("invalid device {s:?}: {why}"));
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err("contains white space or a control character"));
    }
    if name.is_empty() {
        return Err(err(
            "the device name before the first ',' is empty (expected e.g. \
             \"net_af_packet0,iface=lan0\" or \"0000:01:00.0\")",
        ));
    }
    if name.len() > DEVICE_NAME_MAX {
        return Err(err(&format!(
            "the device name before the first ',' is longer than {DEVICE_NAME_MAX} bytes"
        )));
    }
    Ok(s)
}

/// One element of `dpdk.eal_args`.
struct EalArg(String);

impl<'de> Deserialize<'de> for EalArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_c_string("EAL argument", &s).map_err(D::Error::custom)?;
        Ok(EalArg(s))
    }
}

pub(crate) fn eal_args<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<EalArg>::deserialize(d)?
        .into_iter()
        .map(|a| a.0)
        .collect())
}

/// `sizeof(sockaddr_un.sun_path) - 1` on Linux.
const SUN_PATH_MAX: usize = 107;

pub(crate) fn socket<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    if s.is_empty() {
        return Err(D::Error::custom("the socket path is empty"));
    }
    check_c_string("socket path", &s).map_err(D::Error::custom)?;
    if s.len() > SUN_PATH_MAX {
        return Err(D::Error::custom(format!(
            "socket path {s:?} is {} bytes long, at most {SUN_PATH_MAX} fit a Unix socket address",
            s.len()
        )));
    }
    Ok(Some(PathBuf::from(s)))
}

// ---------------------------------------------------------------------------------------------
// Addresses

fn parse_net(what: &str, s: &str) -> Result<IpNet, String> {
    match s.parse::<IpNet>() {
        Ok(net) => Ok(net),
        Err(e) => {
            if s.parse::<IpAddr>().is_ok() {
                Err(format!(
                    "invalid {what} {s:?}: the prefix length is missing (write e.g. {s}/24 or {s}/64)"
                ))
            } else {
                Err(format!(
                    "invalid {what} {s:?}: {e} (expected ADDRESS/PREFIX-LENGTH)"
                ))
            }
        }
    }
}

fn check_if_addr(s: &str) -> Result<IpNet, String> {
    let net = parse_net("interface address", s)?;
    let addr = net.addr();
    let bad = |why: String| Err(format!("invalid interface address {s:?}: {why}"));
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return bad("an unspecified, loopback or multicast address cannot be assigned".into());
    }
    if let IpNet::V4(v4) = net {
        if v4.prefix_len() <= 30 {
            if v4.addr() == v4.network() {
                return bad(format!(
                    "{} is the network address of {}; the host part must not be all zeros",
                    v4.addr(),
                    v4.trunc()
                ));
            }
            if v4.addr() == v4.broadcast() {
                return bad(format!(
                    "{} is the broadcast address of {}",
                    v4.addr(),
                    v4.trunc()
                ));
            }
        }
    }
    Ok(net)
}

/// One element of `ports[].addresses`.
struct IfAddr(IpNet);

impl<'de> Deserialize<'de> for IfAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_if_addr(&s).map(IfAddr).map_err(D::Error::custom)
    }
}

pub(crate) fn if_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Ok(Vec::<IfAddr>::deserialize(d)?
        .into_iter()
        .map(|a| a.0)
        .collect())
}

pub(crate) fn route_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    let s = String::deserialize(d)?;
    let net = parse_net("route prefix", &s).map_err(D::Error::custom)?;
    if net.addr() != net.network() {
        return Err(D::Error::custom(format!(
            "route prefix {s:?} has host bits set (did you mean {}?)",
            net.trunc()
        )));
    }
    Ok(net)
}

pub(crate) fn next_hop<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let addr: IpAddr = s.parse().map_err(|e| {
        D::Error::custom(format!(
            "invalid next hop {s:?}: {e} (expected an IPv4 or IPv6 address without prefix length)"
        ))
    })?;
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return Err(D::Error::custom(format!(
            "invalid next hop {s:?}: an unspecified, loopback or multicast address"
        )));
    }
    Ok(Some(addr))
}

/// A loopback (`node.loopback`, `peers[].loopback`): a unicast address, written without a
/// prefix length.
pub(crate) fn loopback<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    unicast("loopback", &s).map(Some).map_err(D::Error::custom)
}

/// A peer's address on a circuit.
pub(crate) fn peer_address<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let s = String::deserialize(d)?;
    unicast("peer address", &s).map_err(D::Error::custom)
}

fn unicast(what: &str, s: &str) -> Result<IpAddr, String> {
    let addr: IpAddr = s.parse().map_err(|e| {
        format!(
            "invalid {what} {s:?}: {e} (expected an IPv4 or IPv6 address without prefix length)"
        )
    })?;
    let broadcast = matches!(addr, IpAddr::V4(a) if a.is_broadcast());
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() || broadcast {
        return Err(format!(
            "invalid {what} {s:?}: an unspecified, loopback, broadcast or multicast address"
        ));
    }
    Ok(addr)
}

// ---------------------------------------------------------------------------------------------
// Tunnels

pub(crate) fn vlan_id<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    int_in(d, 1, 4094)
}

pub(crate) fn vni<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 1, 0xff_ffff)
}

/// 0 (anti-replay off, as `ip xfrm state ... replay-window 0`) or 64..=65536.
pub(crate) fn replay_window<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let w: u32 = int_in(d, 0, 65536)?;
    if w != 0 && w < 64 {
        return Err(D::Error::custom(format!(
            "replay window {w} is too small: 0 (anti-replay off) or 64..=65536"
        )));
    }
    Ok(w)
}

/// An SPI: an integer, or a string of hex digits with `0x` (`0x0000a001`).
pub(crate) fn spi<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    struct SpiVisitor;
    impl Visitor<'_> for SpiVisitor {
        type Value = i128;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an SPI: an integer or a 0x-prefixed hex string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
            Ok(v.into())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
            Ok(v.into())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
            let hex = v
                .strip_prefix("0x")
                .or_else(|| v.strip_prefix("0X"))
                .filter(|h| !h.is_empty() && h.len() <= 8)
                .ok_or_else(|| {
                    E::custom(format!(
                        "invalid SPI {v:?}: expected 0x and 1 to 8 hex digits"
                    ))
                })?;
            u32::from_str_radix(hex, 16).map(i128::from).map_err(|_| {
                E::custom(format!(
                    "invalid SPI {v:?}: expected 0x and 1 to 8 hex digits"
                ))
            })
        }
    }
    let v = d.deserialize_any(SpiVisitor)?;
    if !(256..=i128::from(u32::MAX)).contains(&v) {
        return Err(D::Error::custom(format!(
            "SPI {v:#x} is out of range 0x100..=0xffffffff (0 to 255 are reserved, RFC 4303 2.1)"
        )));
    }
    Ok(v as u32)
}

/// Hex keying material, `0x` optional, white space ignored. The error never repeats the text.
pub(crate) fn parse_key_hex(s: &str) -> Result<crate::Secret, String> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: zeroize::Zeroizing<Vec<u8>> =
        zeroize::Zeroizing::new(t.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    if digits.is_empty()
        || !digits.len().is_multiple_of(2)
        || !digits.iter().all(u8::is_ascii_hexdigit)
    {
        return Err(format!(
            "a key must be an even number of hex digits ({} characters given; the key is not shown)",
            digits.len()
        ));
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    };
    Ok(crate::Secret::new(
        digits
            .chunks_exact(2)
            .map(|p| nibble(p[0]) << 4 | nibble(p[1]))
            .collect(),
    ))
}

pub(crate) fn key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<crate::Secret>, D::Error> {
    let text = zeroize::Zeroizing::new(Option::<String>::deserialize(d)?);
    match text.as_deref() {
        None => Ok(None),
        Some(s) => parse_key_hex(s).map(Some).map_err(D::Error::custom),
    }
}

// ---------------------------------------------------------------------------------------------
// BGP

/// An AS number: 1..=4294967295, not `AS_TRANS`.
pub(crate) fn asn<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v: u32 = int_in(d, 1, i128::from(u32::MAX))?;
    if v == crate::Bgp::AS_TRANS {
        return Err(D::Error::custom(
            "AS 23456 is AS_TRANS (RFC 6793), which stands for a 4-byte AS and is never an AS \
             of its own",
        ));
    }
    Ok(v)
}

pub(crate) fn opt_asn<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    asn(d).map(Some)
}

/// A BGP identifier (`router_id`, `cluster_id`): IPv4, not 0.0.0.0.
pub(crate) fn router_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ipv4Addr>, D::Error> {
    let s = String::deserialize(d)?;
    let a: IpAddr = s.parse().map_err(|e| {
        D::Error::custom(format!(
            "invalid BGP identifier {s:?}: {e} (expected an IPv4 address, e.g. 10.255.0.1)"
        ))
    })?;
    match a {
        IpAddr::V4(a) if a.is_unspecified() => Err(D::Error::custom(
            "the BGP identifier 0.0.0.0 is not valid (RFC 6286)",
        )),
        IpAddr::V4(a) => Ok(Some(a)),
        IpAddr::V6(_) => Err(D::Error::custom(format!(
            "invalid BGP identifier {s:?}: a BGP identifier is an IPv4 address"
        ))),
    }
}

/// 0 (no keepalives) or 3..=65535 (RFC 4271 4.2).
pub(crate) fn hold_time<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let v: u16 = int_in(d, 0, 65_535)?;
    if v == 1 || v == 2 {
        return Err(D::Error::custom(format!(
            "hold time {v} is not allowed: 0 (no keepalives) or 3..=65535 (RFC 4271 4.2)"
        )));
    }
    Ok(v)
}

pub(crate) fn opt_hold_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    hold_time(d).map(Some)
}

pub(crate) fn connect_retry_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 1, 3600)
}

/// The restart time of RFC 4724 is a 12-bit field.
pub(crate) fn graceful_restart_s<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    int_in(d, 0, 4095)
}

pub(crate) fn rotate_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 10, 2_592_000)
}

pub(crate) fn grace_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 1, 3600)
}

pub(crate) fn switch_after_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    int_in(d, 1, 600)
}

pub(crate) fn tcp_port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    int_in(d, 1, 65_535)
}

pub(crate) fn opt_tcp_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    tcp_port(d).map(Some)
}

/// One id of `bgp.transports`.
struct TransportId(u8);

impl<'de> Deserialize<'de> for TransportId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int_in(d, 1, 255).map(TransportId)
    }
}

/// One name of `bgp.transports`.
struct TransportName(String);

impl<'de> Deserialize<'de> for TransportName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_ident("transport name", &s, 32).map_err(D::Error::custom)?;
        Ok(TransportName(s))
    }
}

/// `bgp.transports`: a mapping of transport names to ids, kept in document order (an empty
/// value is an empty mapping).
pub(crate) fn transport_ids<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<crate::BgpTransport>, D::Error> {
    struct Transports(Vec<crate::BgpTransport>);
    impl<'de> Deserialize<'de> for Transports {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Transports;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a mapping of transport names to ids (internet: 1)")
                }
                fn visit_map<A: de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Transports, A::Error> {
                    let mut v = Vec::new();
                    while let Some(TransportName(name)) = m.next_key()? {
                        let TransportId(id) = m.next_value()?;
                        v.push(crate::BgpTransport { name, id });
                    }
                    Ok(Transports(v))
                }
            }
            d.deserialize_map(V)
        }
    }
    Ok(Option::<Transports>::deserialize(d)?
        .map(|t| t.0)
        .unwrap_or_default())
}

/// The listening address: any address but multicast and broadcast (0.0.0.0 or `::` listen
/// on all).
pub(crate) fn listen_address<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let s = String::deserialize(d)?;
    let a: IpAddr = s.parse().map_err(|e| {
        D::Error::custom(format!(
            "invalid listen address {s:?}: {e} (expected an IPv4 or IPv6 address without prefix \
             length)"
        ))
    })?;
    if a.is_multicast() || matches!(a, IpAddr::V4(v4) if v4.is_broadcast()) {
        return Err(D::Error::custom(format!(
            "invalid listen address {s:?}: a multicast or broadcast address"
        )));
    }
    Ok(a)
}

pub(crate) fn neighbor_address<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let s = String::deserialize(d)?;
    unicast("neighbor address", &s).map_err(D::Error::custom)
}

pub(crate) fn local_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    let s = String::deserialize(d)?;
    unicast("local address", &s)
        .map(Some)
        .map_err(D::Error::custom)
}

/// TCP-MD5 keys are at most 80 bytes (`TCP_MD5SIG_MAXKEYLEN`).
pub(crate) const MAX_PASSWORD_BYTES: usize = 80;

/// The length rule of a TCP-MD5 password; the message never shows it.
pub(crate) fn check_password_len(len: usize) -> Result<(), String> {
    if len == 0 || len > MAX_PASSWORD_BYTES {
        return Err(format!(
            "a TCP-MD5 password is 1 to {MAX_PASSWORD_BYTES} bytes; {len} given (the password \
             is not shown)"
        ));
    }
    Ok(())
}

/// An inline TCP-MD5 password: a string of 1..=80 bytes. No error repeats the value, whatever
/// its type.
pub(crate) fn password<'de, D: Deserializer<'de>>(d: D) -> Result<Option<crate::Secret>, D::Error> {
    struct V;
    fn not_text<E: de::Error>() -> E {
        E::custom("a password is a string (quote it; the value is not shown)")
    }
    impl<'de> Visitor<'de> for V {
        type Value = crate::Secret;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a password string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<crate::Secret, E> {
            check_password_len(v.len()).map_err(E::custom)?;
            Ok(crate::Secret::new(v.as_bytes().to_vec()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<crate::Secret, E> {
            let v = zeroize::Zeroizing::new(v);
            self.visit_str(&v)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<crate::Secret, E> {
            Err(not_text())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<crate::Secret, E> {
            Err(not_text())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<crate::Secret, E> {
            Err(not_text())
        }
        fn visit_i128<E: de::Error>(self, _: i128) -> Result<crate::Secret, E> {
            Err(not_text())
        }
        fn visit_u128<E: de::Error>(self, _: u128) -> Result<crate::Secret, E> {
            Err(not_text())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<crate::Secret, E> {
            Err(not_text())
        }
        fn visit_char<E: de::Error>(self, v: char) -> Result<crate::Secret, E> {
            self.visit_str(v.encode_utf8(&mut [0; 4]))
        }
        fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<crate::Secret, E> {
            Err(not_text())
        }
        fn visit_unit<E: de::Error>(self) -> Result<crate::Secret, E> {
            Err(not_text())
        }
    }
    d.deserialize_str(V).map(Some)
}

/// An optional section whose presence turns something on: absent is `None`, present (even
/// empty: `route_reflector:`) is `Some`, with defaults for what it leaves out.
pub(crate) fn present_section<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

/// The `bgp` section: present but empty is an error (its `asn` is missing).
pub(crate) fn bgp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<crate::bgp::RawBgp>, D::Error> {
    match Option::<crate::bgp::RawBgp>::deserialize(d)? {
        Some(b) => Ok(Some(b)),
        None => Err(D::Error::missing_field("asn")),
    }
}

// ---------------------------------------------------------------------------------------------
// MAC addresses

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = |why: &str| format!("invalid MAC address {s:?}: {why}");
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in mac.iter_mut() {
        let part = parts
            .next()
            .ok_or_else(|| bad("expected six hex bytes separated by ':'"))?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("expected six hex bytes separated by ':'"));
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad("not hexadecimal"))?;
    }
    if parts.next().is_some() {
        return Err(bad("expected six hex bytes separated by ':'"));
    }
    if mac[0] & 1 != 0 {
        return Err(bad("a multicast address cannot be a port's address"));
    }
    if mac == [0; 6] {
        return Err(bad("the all-zero address cannot be a port's address"));
    }
    Ok(mac)
}

pub(crate) fn mac<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 6]>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_mac(&s).map(Some).map_err(D::Error::custom),
    }
}

/// Formats a MAC address as `02:00:00:00:00:01`.
pub(crate) fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

pub(crate) fn serialize_mac<S: Serializer>(mac: &Option<[u8; 6]>, s: S) -> Result<S::Ok, S::Error> {
    match mac {
        Some(mac) => s.serialize_some(&format_mac(mac)),
        None => s.serialize_none(),
    }
}

// ---------------------------------------------------------------------------------------------
// Optional sections

/// An optional section or list: absent or empty (`routes:`) gives the default.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let mac = parse_mac("02:00:5E:10:00:01").unwrap();
        assert_eq!(mac, [2, 0, 0x5e, 0x10, 0, 1]);
        assert_eq!(format_mac(&mac), "02:00:5e:10:00:01");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02-00-00-00-00-01",
            "2:00:00:00:00:01",
            "0g:00:00:00:00:01",
            "+2:00:00:00:00:01",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn interface_addresses() {
        assert!(check_if_addr("10.0.0.1/24").is_ok());
        assert!(check_if_addr("10.0.0.0/31").is_ok());
        assert!(check_if_addr("10.0.0.1/32").is_ok());
        assert!(check_if_addr("fd00::/64").is_ok());
        assert!(check_if_addr("10.0.0.0/24")
            .unwrap_err()
            .contains("network address"));
        assert!(check_if_addr("10.0.0.255/24")
            .unwrap_err()
            .contains("broadcast"));
        assert!(check_if_addr("10.0.0.1")
            .unwrap_err()
            .contains("prefix length is missing"));
        assert!(check_if_addr("127.0.0.1/8").is_err());
        assert!(check_if_addr("224.0.0.1/24").is_err());
        assert!(check_if_addr("::/0").is_err());
    }
}
