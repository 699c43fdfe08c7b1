//! `parse` never panics: mutated and truncated versions of the example configurations either
//! parse or give an error whose location lies inside the text.

use std::path::Path;

use sdwan_conf::{parse, ConfigError};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INSERTS: &[&str] = &[
    ":",
    "-",
    " ",
    "  ",
    "\t",
    "\n",
    "[",
    "]",
    "{",
    "}",
    ",",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "\"",
    "'",
    "? ",
    "|",
    ">",
    "%",
    "@",
    "---\n",
    "...\n",
    "<<: ",
    "0",
    "-1",
    "99999999999999999999",
    "\u{0}",
    "é",
    "\u{feff}",
    "\r",
    "\r\n",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<&str> = text.lines().collect();
    match rng.below(7) {
        // Delete a run of characters.
        0 | 1 => {
            let at = rng.below(chars.len());
            let len = 1 + rng.below(8);
            let mut c = chars.clone();
            c.drain(at..(at + len).min(chars.len()));
            c.into_iter().collect()
        }
        // Truncate.
        2 => chars[..rng.below(chars.len())].iter().collect(),
        // Swap two lines.
        3 => {
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(a, b);
            lines.join("\n")
        }
        // Duplicate or delete a line.
        4 => {
            let a = rng.below(lines.len());
            if rng.below(2) == 0 {
                let l = lines[a];
                lines.insert(a, l);
            } else {
                lines.remove(a);
            }
            lines.join("\n")
        }
        // Insert something YAML cares about.
        _ => {
            let at = rng.below(chars.len());
            let mut s: String = chars[..at].iter().collect();
            s.push_str(INSERTS[rng.below(INSERTS.len())]);
            s.extend(&chars[at..]);
            s
        }
    }
}

fn check_one(text: &str) {
    match parse(text, Path::new("m.yaml")) {
        Ok(_) => {}
        Err(ConfigError::Invalid {
            line,
            column,
            field,
            message,
            ..
        }) => {
            // YAML line breaks: LF, CRLF and a lone CR.
            let lines = 1 + text.replace("\r\n", "\n").matches(['\n', '\r']).count();
            assert!(
                line >= 1 && line <= lines && column >= 1,
                "location {line}:{column} outside the text ({lines} lines): {field}: {message}\n{text}"
            );
            assert!(!field.is_empty() && !message.is_empty());
            assert!(!message.contains('\n') && !field.contains('\n'));
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[test]
fn mutated_examples_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rng = Rng(0x5d3a_11f0_c0ff_ee01);
    let mut rejected = 0;
    let mut total = 0;
    for file in ["examples/branch.yaml", "lab/site-a.yaml", "lab/site-b.yaml"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for _ in 0..300 {
            // One to three mutations on top of each other.
            let mut m = text.clone();
            for _ in 0..1 + rng.below(3) {
                m = mutate(&mut rng, &m);
            }
            check_one(&m);
            total += 1;
            rejected += parse(&m, Path::new("m.yaml")).is_err() as usize;
        }
    }
    // The mutations must actually exercise the error paths.
    assert!(rejected > total / 4, "only {rejected} of {total} rejected");
}

#[test]
fn mutated_bgp_examples_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rng = Rng(0x0b69_5eed_1234_abcd);
    let (mut rejected, mut total) = (0, 0);
    for file in ["examples/branch-bgp.yaml", "examples/reflector.yaml"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for _ in 0..300 {
            let mut m = text.clone();
            for _ in 0..1 + rng.below(3) {
                m = mutate(&mut rng, &m);
            }
            check_one(&m);
            total += 1;
            // Beside the example, so that its password files are found.
            rejected += parse(&m, &dir.join(file)).is_err() as usize;
        }
    }
    assert!(rejected > total / 4, "only {rejected} of {total} rejected");
    for text in [
        "node: {name: a}\nbgp:",
        "node: {name: a}\nbgp: {asn: 1, route_reflector: ~, transports: ~, neighbors: [~]}",
        "node: {name: a}\nbgp: {asn: 1, transports: {[a]: 1}}",
        "node: {name: a}\nbgp: {asn: 1, groups: [{name: g, password: !!binary aGVsbG8=}]}",
        "node: {name: a}\ntenants: [{name: t, vni: 1, route_target: \"4294967295L:65535\"}]",
    ] {
        check_one(text);
    }
}

#[test]
fn odd_inputs_never_panic() {
    for text in [
        "",
        "\n",
        "~",
        "[]",
        "{}",
        "---",
        "...",
        "\u{feff}",
        "node",
        "node:",
        "node: ~\nports: ~",
        "node: {name: a}\nports: [~]",
        "node: {name: a}\nports: [{}]",
        "node: {name: a}\nports: [[]]",
        "node: {name: a}\nroutes: [{}]\nports: []",
        "&a [*a]",
        "a: &a [*a, *a]\nb: *a",
        "? - a\n  - b\n: c",
        "node: {name: a}\n<<: {x: 1}",
        "node: {name: a}\nworkers: {cores: [18446744073709551616]}",
        "node: {name: a}\nworkers: {cores: [-9223372036854775809]}",
        "node: {name: a}\nworkers: {rx_burst: .nan}",
        "node: {name: a}\ndpdk: {eal_args: [!!binary aGVsbG8=]}",
        "%YAML 1.2\n---\nnode: {name: a}",
        "%TAG ! tag:x:\n---\nnode: !a {name: a}",
    ] {
        check_one(text);
    }
    // Deep nesting and long inputs are refused cheaply.
    check_one(&"[".repeat(10_000));
    check_one(&format!("node: {}", "{a: ".repeat(5_000)));
    check_one(&format!("node:\n  name: {}\n", "x".repeat(2 << 20)));
    // An alias bomb: each anchor refers to the previous one ten times.
    let mut aliases = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for c in b'b'..=b'z' {
        let (c, p) = (c as char, (c - 1) as char);
        let refs = vec![format!("*{p}"); 10].join(", ");
        aliases.push_str(&format!("{c}: &{c} [{refs}]\n"));
    }
    check_one(&aliases);
}
