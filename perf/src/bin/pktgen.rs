//! `sdwan-pktgen`: see `sdwan_perf::pktgen` and docs/pktgen.md.

use sdwan_perf::pktgen::cli::{self, ParseOutcome, USAGE};
use sdwan_perf::pktgen::{run, stats};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let c = match cli::parse(&args) {
        Ok(c) => c,
        Err(ParseOutcome::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(ParseOutcome::Error(e)) => {
            eprintln!("sdwan-pktgen: {e}\n(see sdwan-pktgen --help)");
            std::process::exit(2);
        }
    };
    match run::run(&c) {
        Ok(o) => {
            let r = stats::report(&c, &o.tx, &o.rx);
            if c.json {
                println!("{r}");
            } else {
                eprintln!("destination MAC {}", run::describe_mac(&o.dst_mac));
                print!("{}", stats::text(&c, &r));
            }
        }
        Err(e) => {
            eprintln!("sdwan-pktgen: {e}");
            std::process::exit(1);
        }
    }
}
