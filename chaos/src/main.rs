//! `choreo-chaos`: runs a fault campaign against an example and ends with
//! its verdict.
//!
//! ```text
//! cargo run --release -p choreo-chaos -- --example ecommerce --broker nats --orders 600 \
//!     --faults kill,pause,broker-restart,net,duplicates --seed 7 --replicas 2
//! ```
//!
//! The participants run as child processes of this same binary
//! (`choreo-chaos example <name> …` runs the example's own command line),
//! so that one `cargo run` builds and runs everything.

use clap::Parser;
use std::process::ExitCode;

/// Fault campaigns against the example choreographies: participant
/// processes killed and paused, broker servers restarted, a bad network
/// and late duplicates, all from a seed; every instance must settle, and
/// the participants' books must add up.
#[derive(Debug, Parser)]
#[command(name = "choreo-chaos", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    options: choreo_chaos::Options,
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    // A participant, or the driver, of a campaign: the example's own
    // program, run by this binary.
    if std::env::args_os().nth(1).is_some_and(|a| a == "example") {
        let _ = args.next();
        let _ = args.next();
        let Some(name) = args.next() else {
            eprintln!("choreo-chaos example: name an example (ecommerce, drone-delivery, retries)");
            return ExitCode::from(2);
        };
        let Some(example) = name
            .to_str()
            .and_then(choreo_chaos::example::Example::named)
        else {
            eprintln!(
                "choreo-chaos example: there is no example `{}` (ecommerce, drone-delivery, retries)",
                name.to_string_lossy()
            );
            return ExitCode::from(2);
        };
        let mut argv = vec![name];
        argv.extend(args);
        return example.main_with(argv);
    }
    let cli = Cli::parse();
    match choreo_chaos::run(&cli.options) {
        Ok(report) => {
            let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
            if let Err(e) = std::fs::write(&cli.options.report, json) {
                eprintln!(
                    "choreo-chaos: cannot write {}: {e}",
                    cli.options.report.display()
                );
            }
            for p in report.problems.iter().chain(&report.double_effects) {
                println!("PROBLEM: {p}");
            }
            for d in &report.dead_letters {
                println!(
                    "dead letter: {} of {} given up by {}: {}",
                    d.event, d.key, d.group, d.reason
                );
            }
            let k = &report.recovery_after_kill_ms;
            println!(
                "recovery after a kill: p50 {} ms, p99 {} ms ({} kills, {} holding work); takeovers {}, duplicates injected {} and delivered {}, retried after 503: {}",
                k.p50.map_or("-".into(), |v| v.to_string()),
                k.p99.map_or("-".into(), |v| v.to_string()),
                report.proof.kills,
                report.proof.kills_in_flight,
                report.proof.takeovers,
                report.proof.duplicates_injected,
                report.proof.duplicates_delivered,
                report.proof.retried_after_503,
            );
            println!("report: {}", cli.options.report.display());
            println!("{}", report.line());
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("choreo-chaos: {e}");
            ExitCode::from(2)
        }
    }
}
