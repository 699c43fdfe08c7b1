//! Control protocol (JSON lines over a Unix stream socket), the `set` word parser, and the
//! circuit model the server keeps. Sans-IO.
//!
//! Requests, one JSON object per line:
//! ```text
//! {"cmd":"set","circuit":"inet","dir":"both","settings":{"delay_ms":40,"loss_pct":1}}
//! {"cmd":"clear","circuit":"inet"}
//! {"cmd":"show"}
//! ```
//! Responses: `{"ok":true}`, `{"ok":true,"circuits":[...]}` or `{"ok":false,"error":"..."}`.

use serde::{Deserialize, Serialize};

use crate::impair::{Counters, Direction, Settings};

/// Which direction(s) a `set` applies to. `a2b` is from the circuit's first interface to its
/// second (in the lab: site A → site B).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirSel {
    #[default]
    Both,
    A2b,
    B2a,
}

impl DirSel {
    pub fn as_str(self) -> &'static str {
        match self {
            DirSel::Both => "both",
            DirSel::A2b => "a2b",
            DirSel::B2a => "b2a",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    Set {
        circuit: String,
        #[serde(default)]
        dir: DirSel,
        #[serde(default)]
        settings: Settings,
    },
    Clear {
        circuit: String,
    },
    Show,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuits: Option<Vec<CircuitReport>>,
}

impl Response {
    pub fn ok() -> Self {
        Response {
            ok: true,
            ..Default::default()
        }
    }
    pub fn err(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirReport {
    pub settings: Settings,
    pub counters: Counters,
    pub queued_packets: usize,
    pub queued_bytes: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CircuitReport {
    pub name: String,
    pub iface_a: String,
    pub iface_b: String,
    pub a2b: DirReport,
    pub b2a: DirReport,
}

/// One emulated circuit: two interfaces, a scheduler per direction (0 = a→b, 1 = b→a).
#[derive(Debug)]
pub struct Circuit {
    pub name: String,
    pub iface_a: String,
    pub iface_b: String,
    pub dirs: [Direction; 2],
}

impl Circuit {
    pub fn new(name: &str, iface_a: &str, iface_b: &str, seed: u64) -> Self {
        Circuit {
            name: name.into(),
            iface_a: iface_a.into(),
            iface_b: iface_b.into(),
            dirs: [
                Direction::new(seed),
                Direction::new(seed ^ 0x5bd1_e995_1234_5678),
            ],
        }
    }

    /// Parse `NAME:IFACE_A:IFACE_B`.
    pub fn parse_spec(spec: &str) -> Result<(String, String, String), String> {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "bad circuit {spec:?}: expected NAME:IFACE_A:IFACE_B"
            ));
        }
        Ok((parts[0].into(), parts[1].into(), parts[2].into()))
    }

    pub fn apply(&mut self, dir: DirSel, settings: &Settings, now: u64) {
        if matches!(dir, DirSel::Both | DirSel::A2b) {
            self.dirs[0].set_settings(settings.clone(), now);
        }
        if matches!(dir, DirSel::Both | DirSel::B2a) {
            self.dirs[1].set_settings(settings.clone(), now);
        }
    }

    pub fn report(&self) -> CircuitReport {
        let d = |x: &Direction| DirReport {
            settings: x.settings().clone(),
            counters: x.counters,
            queued_packets: x.queued_packets(),
            queued_bytes: x.queued_bytes(),
        };
        CircuitReport {
            name: self.name.clone(),
            iface_a: self.iface_a.clone(),
            iface_b: self.iface_b.clone(),
            a2b: d(&self.dirs[0]),
            b2a: d(&self.dirs[1]),
        }
    }
}

/// Apply a request to the circuits; `now` is the monotonic clock in ns.
pub fn handle(circuits: &mut [Circuit], req: Request, now: u64) -> Response {
    let find = |circuits: &mut [Circuit], name: &str| -> Result<usize, Response> {
        circuits.iter().position(|c| c.name == name).ok_or_else(|| {
            let known: Vec<&str> = circuits.iter().map(|c| c.name.as_str()).collect();
            Response::err(format!(
                "unknown circuit {name:?} (known: {})",
                known.join(", ")
            ))
        })
    };
    match req {
        Request::Set {
            circuit,
            dir,
            settings,
        } => {
            if let Err(e) = settings.validate() {
                return Response::err(e);
            }
            match find(circuits, &circuit) {
                Ok(i) => {
                    circuits[i].apply(dir, &settings, now);
                    Response::ok()
                }
                Err(r) => r,
            }
        }
        Request::Clear { circuit } => match find(circuits, &circuit) {
            Ok(i) => {
                circuits[i].apply(DirSel::Both, &Settings::default(), now);
                Response::ok()
            }
            Err(r) => r,
        },
        Request::Show => Response {
            ok: true,
            circuits: Some(circuits.iter().map(Circuit::report).collect()),
            ..Default::default()
        },
    }
}

/// Parse the words after `set CIRCUIT`: `[dir a2b|b2a|both] [delay MS] [jitter MS] [loss PCT]
/// [duplicate PCT] [reorder PCT] [rate MBIT] [blackhole]`. Unspecified = off. Units may be
/// written on the number (`40ms`, `10%`, `20mbit`).
pub fn parse_set_words<S: AsRef<str>>(words: &[S]) -> Result<(DirSel, Settings), String> {
    let mut s = Settings::default();
    let mut dir = DirSel::Both;
    let mut seen: Vec<String> = Vec::new();
    let mut it = words.iter().map(|w| w.as_ref());
    while let Some(word) = it.next() {
        let key = word.to_ascii_lowercase();
        let key = match key.as_str() {
            "delay" | "jitter" | "loss" | "duplicate" | "reorder" | "rate" | "blackhole"
            | "dir" => key,
            "dup" => "duplicate".to_string(),
            _ => {
                return Err(format!(
                    "unknown impairment {word:?} (expected delay, jitter, loss, duplicate, \
                     reorder, rate, blackhole or dir)"
                ))
            }
        };
        if seen.contains(&key) {
            return Err(format!("{key} given twice"));
        }
        seen.push(key.clone());
        if key == "blackhole" {
            s.blackhole = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{key} needs a value"))?;
        if key == "dir" {
            dir = match value.to_ascii_lowercase().as_str() {
                "both" => DirSel::Both,
                "a2b" => DirSel::A2b,
                "b2a" => DirSel::B2a,
                _ => return Err(format!("bad dir {value:?} (expected a2b, b2a or both)")),
            };
            continue;
        }
        let suffixes: &[&str] = match key.as_str() {
            "delay" | "jitter" => &["ms"],
            "rate" => &["mbit/s", "mbit", "mbps"],
            _ => &["%"],
        };
        let mut num = value.to_ascii_lowercase();
        for suf in suffixes {
            if let Some(stripped) = num.strip_suffix(suf) {
                num = stripped.to_string();
                break;
            }
        }
        let v: f64 = num
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("bad value {value:?} for {key}: expected a number"))?;
        match key.as_str() {
            "delay" => s.delay_ms = v,
            "jitter" => s.jitter_ms = v,
            "loss" => s.loss_pct = v,
            "duplicate" => s.duplicate_pct = v,
            "reorder" => s.reorder_pct = v,
            "rate" => {
                if v <= 0.0 {
                    return Err(format!("rate must be above 0 Mbit/s, got {value:?}"));
                }
                s.rate_mbit = v
            }
            _ => unreachable!(),
        }
    }
    s.validate()?;
    Ok((dir, s))
}

/// Human-readable `show`.
pub fn render_show(circuits: &[CircuitReport]) -> String {
    let mut out = String::new();
    for c in circuits {
        out.push_str(&format!(
            "circuit {} ({} <-> {})\n",
            c.name, c.iface_a, c.iface_b
        ));
        for (label, d, from, to) in [
            ("a2b", &c.a2b, &c.iface_a, &c.iface_b),
            ("b2a", &c.b2a, &c.iface_b, &c.iface_a),
        ] {
            let k = &d.counters;
            out.push_str(&format!(
                "  {label} ({from} -> {to}): {}\n",
                d.settings.describe()
            ));
            out.push_str(&format!(
                "      rx {} tx {} dropped_loss {} dropped_blackhole {} dropped_queue {} \
                 duplicated {} reordered {} delayed {}\n",
                k.rx,
                k.tx,
                k.dropped_loss,
                k.dropped_blackhole,
                k.dropped_queue,
                k.duplicated,
                k.reordered,
                k.delayed
            ));
            out.push_str(&format!(
                "      dropped_tx_error {} dropped_oversize {} rx_kernel_drops {} release_late_max_us {} \
                 queued {} pkts / {} bytes\n",
                k.dropped_tx_error,
                k.dropped_oversize,
                k.rx_kernel_drops,
                k.release_late_max_us,
                d.queued_packets,
                d.queued_bytes
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_words() {
        let (dir, s) = parse_set_words(&["delay", "40", "jitter", "5ms", "loss", "10%"]).unwrap();
        assert_eq!(dir, DirSel::Both);
        assert_eq!(s.delay_ms, 40.0);
        assert_eq!(s.jitter_ms, 5.0);
        assert_eq!(s.loss_pct, 10.0);
        let (dir, s) = parse_set_words(&["dir", "a2b", "rate", "20", "blackhole"]).unwrap();
        assert_eq!(dir, DirSel::A2b);
        assert_eq!(s.rate_mbit, 20.0);
        assert!(s.blackhole);
        let (_, s) = parse_set_words::<&str>(&[]).unwrap();
        assert!(s.is_clear());
        for bad in [
            &["delay"][..],
            &["delay", "x"],
            &["loss", "150"],
            &["loss", "-1"],
            &["rate", "0"],
            &["frobnicate", "1"],
            &["delay", "1", "delay", "2"],
            &["dir", "sideways"],
            &["delay", "nan"],
        ] {
            assert!(parse_set_words(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_json_roundtrip_and_handling() {
        let line = r#"{"cmd":"set","circuit":"inet","settings":{"delay_ms":40}}"#;
        let req: Request = serde_json::from_str(line).unwrap();
        assert_eq!(
            req,
            Request::Set {
                circuit: "inet".into(),
                dir: DirSel::Both,
                settings: Settings {
                    delay_ms: 40.0,
                    ..Default::default()
                }
            }
        );
        assert!(serde_json::from_str::<Request>(
            r#"{"cmd":"set","circuit":"x","settings":{"bogus":1}}"#
        )
        .is_err());

        let mut cs = vec![
            Circuit::new("inet", "a-inet", "b-inet", 1),
            Circuit::new("mpls", "a-mpls", "b-mpls", 2),
        ];
        assert!(handle(&mut cs, req, 0).ok);
        assert_eq!(cs[0].dirs[0].settings().delay_ms, 40.0);
        assert_eq!(cs[0].dirs[1].settings().delay_ms, 40.0);
        assert!(cs[1].dirs[0].settings().is_clear());

        let r = handle(
            &mut cs,
            Request::Clear {
                circuit: "lte".into(),
            },
            0,
        );
        assert!(!r.ok);
        assert!(r.error.unwrap().contains("unknown circuit"));
        let r = handle(
            &mut cs,
            Request::Set {
                circuit: "inet".into(),
                dir: DirSel::Both,
                settings: Settings {
                    loss_pct: 200.0,
                    ..Default::default()
                },
            },
            0,
        );
        assert!(!r.ok);

        let r = handle(
            &mut cs,
            Request::Set {
                circuit: "mpls".into(),
                dir: DirSel::B2a,
                settings: Settings {
                    blackhole: true,
                    ..Default::default()
                },
            },
            0,
        );
        assert!(r.ok);
        assert!(!cs[1].dirs[0].settings().blackhole);
        assert!(cs[1].dirs[1].settings().blackhole);
        assert_eq!(
            cs[0].dirs[0].settings().delay_ms,
            40.0,
            "other circuit untouched"
        );

        let r = handle(&mut cs, Request::Show, 0);
        let text = serde_json::to_string(&r).unwrap();
        let back: Response = serde_json::from_str(&text).unwrap();
        assert_eq!(back.circuits.as_ref().unwrap().len(), 2);
        assert!(render_show(back.circuits.as_ref().unwrap()).contains("blackhole"));
        assert!(
            handle(
                &mut cs,
                Request::Clear {
                    circuit: "inet".into()
                },
                0
            )
            .ok
        );
        assert!(cs[0].dirs[0].settings().is_clear());
    }

    #[test]
    fn circuit_spec() {
        assert_eq!(
            Circuit::parse_spec("inet:a-inet:b-inet").unwrap(),
            ("inet".into(), "a-inet".into(), "b-inet".into())
        );
        assert!(Circuit::parse_spec("inet:a-inet").is_err());
        assert!(Circuit::parse_spec("inet::b").is_err());
    }
}
