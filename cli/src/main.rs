//! `sdwan-cli`: asks a running `sdwand` over its management socket and prints the answer as a
//! table, or as JSON with `--json`. Exit status: 0 on success, 1 when sdwand is not reachable
//! or answers with an error, 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use sdwan_control::api::{self, Request};
use sdwan_control::mgmt;

mod format;

const USAGE: &str =
    "usage: sdwan-cli [--socket PATH] show {interfaces|stats|routes|neighbors|sa [SPI]|paths|flows|policies|
                                       bgp summary|bgp routes [TENANT]|sites|version} [--json]
       sdwan-cli [--socket PATH] request keys rotate [TENANT] [--json]

  --socket PATH  sdwand's management socket (default: $SDWAN_SOCKET, else the only
                 socket in /run/sdwand/)
  --json         print the daemon's JSON answer instead of a table

request keys rotate: a new key pair for every tenant (or TENANT) now, make-before-break
as a scheduled rotation (no packet is lost; the old key goes after its grace).";

fn main() -> ExitCode {
    let mut socket: Option<PathBuf> = std::env::var_os("SDWAN_SOCKET").map(PathBuf::from);
    let mut json = false;
    let mut words = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--socket" | "-s" => match args.next() {
                Some(p) => socket = Some(PathBuf::from(p)),
                None => return usage("--socket needs a path"),
            },
            "--json" | "-j" => json = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => words.push(a),
        }
    }
    let request = match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["show", "interfaces" | "interface" | "int"] => Request::ShowInterfaces,
        ["show", "stats" | "statistics"] => Request::ShowStats,
        ["show", "routes" | "route"] => Request::ShowRoutes,
        ["show", "neighbors" | "neighbours" | "neigh" | "arp"] => Request::ShowNeighbors,
        ["show", "version"] => Request::ShowVersion,
        ["show", "sa" | "sas"] => Request::ShowSa { spi: None },
        ["show", "sa" | "sas", spi] => match parse_spi(spi) {
            Some(spi) => Request::ShowSa { spi: Some(spi) },
            None => return usage(&format!("invalid SPI {spi:?} (decimal, or hex with 0x)")),
        },
        ["show", "paths" | "path"] => Request::ShowPaths,
        ["show", "flows" | "flow"] => Request::ShowFlows,
        ["show", "policies" | "policy"] => Request::ShowPolicies,
        ["show", "bgp", "summary"] | ["show", "bgp"] => Request::ShowBgpSummary,
        ["show", "bgp", "routes" | "route"] => Request::ShowBgpRoutes { tenant: None },
        ["show", "bgp", "routes" | "route", tenant] => Request::ShowBgpRoutes {
            tenant: Some((*tenant).to_owned()),
        },
        ["show", "sites" | "site"] => Request::ShowSites,
        ["request", "keys", "rotate"] => Request::RotateKeys { tenant: None },
        ["request", "keys", "rotate", tenant] => Request::RotateKeys {
            tenant: Some((*tenant).to_owned()),
        },
        [] => return usage("no command given"),
        other => return usage(&format!("unknown command {:?}", other.join(" "))),
    };
    let socket = match socket.or_else(default_socket) {
        Some(s) => s,
        None => {
            eprintln!("sdwan-cli: no sdwand socket found in /run/sdwand/ (sdwand is not running, or several are: give one with --socket PATH)");
            return ExitCode::from(1);
        }
    };
    let response = match mgmt::call(&socket, &request, Duration::from_secs(5)) {
        Ok(r) => r,
        Err(mgmt::MgmtError::Connect { path, source })
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            eprintln!(
                "sdwan-cli: sdwand is not running: nothing listens on {} ({source}); \
                 start sdwand, or give its socket with --socket PATH",
                path.display()
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("sdwan-cli: {e}");
            return ExitCode::from(1);
        }
    };
    if !response.ok {
        eprintln!(
            "sdwan-cli: sdwand answered: {}",
            response.error.unwrap_or_default()
        );
        return ExitCode::from(1);
    }
    if json {
        match serde_json::to_string_pretty(&response.data) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("sdwan-cli: {e}");
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }
    let text = match request {
        Request::ShowInterfaces => {
            decode::<Vec<api::Interface>>(response.data).map(|v| format::interfaces(&v))
        }
        Request::ShowStats => decode::<api::Stats>(response.data).map(|s| format::stats(&s)),
        Request::ShowRoutes => decode::<Vec<api::Route>>(response.data).map(|v| format::routes(&v)),
        Request::ShowNeighbors => {
            decode::<Vec<api::Neighbor>>(response.data).map(|v| format::neighbors(&v))
        }
        Request::ShowVersion => decode::<api::Version>(response.data)
            .map(|v| format!("sdwand {} on {} ({})\n", v.version, v.node, v.dpdk)),
        Request::ShowSa { spi: None } => {
            decode::<Vec<api::Sa>>(response.data).map(|v| format::sas(&v))
        }
        Request::ShowSa { spi: Some(_) } => {
            decode::<api::Sa>(response.data).map(|s| format::sa_detail(&s))
        }
        Request::ShowPaths => decode::<Vec<api::Path>>(response.data).map(|v| format::paths(&v)),
        Request::ShowFlows => decode::<Vec<api::Flow>>(response.data).map(|v| format::flows(&v)),
        Request::ShowBgpSummary => {
            decode::<api::BgpSummary>(response.data).map(|s| format::bgp_summary(&s))
        }
        Request::ShowBgpRoutes { .. } => {
            decode::<Vec<api::BgpRoute>>(response.data).map(|v| format::bgp_routes(&v))
        }
        Request::ShowSites => decode::<Vec<api::Site>>(response.data).map(|v| format::sites(&v)),
        Request::ShowPolicies => {
            decode::<Vec<api::PolicyPaths>>(response.data).map(|v| format::policies(&v))
        }
        Request::RotateKeys { .. } => {
            decode::<Vec<api::KeyRotation>>(response.data).map(|v| format::key_rotations(&v))
        }
    };
    match text {
        Ok(t) => {
            print!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sdwan-cli: unexpected answer from sdwand: {e}");
            ExitCode::from(1)
        }
    }
}

fn parse_spi(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(v)
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("sdwan-cli: {msg}\n{USAGE}");
    ExitCode::from(2)
}

/// The one socket in /run/sdwand/, if there is exactly one.
fn default_socket() -> Option<PathBuf> {
    let entries: Vec<PathBuf> = std::fs::read_dir("/run/sdwand")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    match entries.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}
