//! What `choreo!` costs at build time: a cold `cargo build` of a crate that
//! expands `choreo_runtime::choreo!(file = "ecommerce.choreo")`, against the
//! same crate holding the module as generated source (`codegen::source`,
//! what `choreoc generate` writes). Both crates use the same handful of
//! items; their dependencies are built once in a shared target directory,
//! then each timed build starts with `cargo clean -p <crate>`, so that only
//! the crate itself is compiled (and, for the macro, expanded).
//!
//! ```sh
//! cargo bench -p choreo-macros --bench build_time -- [RUNS] [DIR]
//! ```
//!
//! RUNS (default 7) timed builds of each crate, interleaved; DIR (default
//! `$TMPDIR/choreo-macro-bench`) holds the two crates and their target
//! directory, kept between invocations so that dependencies build once.
//! Prints the median wall time and CPU time (user + system of cargo and
//! rustc) of each, and the ratios, for `cargo build` and for `cargo check`
//! (where code generation does not hide the expansion). Results are in
//! `docs/benchmarks.md`.

// A measuring tool: it stops at the first thing that goes wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use choreo_compiler::{check, codegen, SourceFile};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The code both crates share: one participant implemented, its wiring
/// instantiated, a command built, the topology read.
const USE: &str = r#"
use choreo_runtime::service::HandlerError;
use choreo_runtime::types::Decimal;
use choreo_runtime::Message;
use ecommerce::*;

struct Pricing;

impl Orders for Pricing {
    async fn on_place_order(&self, _ctx: Context, order: PlaceOrder) -> Result<OrderPlaced, HandlerError> {
        Ok(OrderPlaced {
            user_id: order.user_id,
            product_id: order.product_id,
            quantity: order.quantity,
            amount: Decimal::new(1250 * i64::from(order.quantity), 2),
            ship_to: order.ship_to,
        })
    }
    async fn on_shipment_scheduled(&self, _ctx: Context, _e: ShipmentScheduled) -> Result<OrderCompleted, HandlerError> {
        Ok(OrderCompleted {})
    }
    async fn on_out_of_stock_or_stock_released(
        &self,
        _ctx: Context,
        _e: orders::OnOutOfStockOrStockReleasedTrigger,
    ) -> Result<OrderFailed, HandlerError> {
        Ok(OrderFailed { reason: "no".into() })
    }
}

fn main() {
    let definition = orders::definition(Pricing);
    let order = PlaceOrder {
        user_id: 1,
        product_id: 7,
        quantity: 2,
        ship_to: Address { street: "1 Rue".into(), city: "Lyon".into(), zip: "69001".into() },
    };
    println!("{} {:?} {:?}", PlaceOrder::TYPE, order, topology());
    drop(definition);
}
"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Rewriting an unchanged file would make cargo rebuild for nothing.
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).unwrap();
    }
}

/// Writes the workspace of the two crates.
fn setup(dir: &Path) {
    let repo = repo();
    let runtime = repo.join("runtime");
    let spec_path = repo.join("examples/ecommerce/ecommerce.choreo");
    let spec_text = std::fs::read_to_string(&spec_path).unwrap();
    let (spec, _) = check(&SourceFile::new("ecommerce.choreo", spec_text.clone()))
        .into_checked()
        .expect("the ecommerce example checks");
    write(
        &dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"with-macro\", \"with-generated\"]\n",
    );
    let manifest = |name: &str, features: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\nchoreo-runtime = {{ path = {runtime:?}{features} }}\n",
            runtime = runtime.display().to_string(),
        )
    };
    write(
        &dir.join("with-macro/Cargo.toml"),
        &manifest("with-macro", ", features = [\"macros\"]"),
    );
    write(&dir.join("with-macro/ecommerce.choreo"), &spec_text);
    write(
        &dir.join("with-macro/src/main.rs"),
        &format!("choreo_runtime::choreo!(file = \"ecommerce.choreo\");\n{USE}"),
    );
    write(
        &dir.join("with-generated/Cargo.toml"),
        &manifest("with-generated", ""),
    );
    write(
        &dir.join("with-generated/src/main.rs"),
        &format!("{}\n{USE}", codegen::source(&spec)),
    );
    // Resolve the versions the workspace has, without the network.
    let lock = std::fs::read_to_string(repo.join("Cargo.lock")).unwrap();
    if !dir.join("Cargo.lock").exists() {
        write(&dir.join("Cargo.lock"), &lock);
    }
}

fn cargo(dir: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_TERM_COLOR", "never")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cargo {args:?} failed in {}",
        dir.display()
    );
}

/// User plus system time of the children this process has waited for, from
/// `/proc/self/stat` (`cutime`, `cstime`: cargo, and the rustc it waited
/// for), in seconds; zero where there is no procfs.
fn children_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, cutime 16, cstime 17.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[13].parse::<f64>().unwrap() + fields[14].parse::<f64>().unwrap();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

/// One cold `cargo build` (or `check`) of `package`: its wall time and CPU
/// time.
fn timed(dir: &Path, command: &str, package: &str) -> (f64, f64) {
    cargo(dir, &["clean", "-q", "-p", package]);
    let cpu = children_cpu();
    let start = Instant::now();
    cargo(dir, &[command, "-q", "-p", package]);
    (start.elapsed().as_secs_f64(), children_cpu() - cpu)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs: usize = args
        .first()
        .map_or(7, |r| r.parse().expect("RUNS is a number"));
    let dir = args.get(1).map_or_else(
        || std::env::temp_dir().join("choreo-macro-bench"),
        PathBuf::from,
    );
    setup(&dir);
    let packages = ["with-generated", "with-macro"];
    let commands = ["build", "check"];
    eprintln!(
        "building the dependencies once in {}",
        dir.join("target").display()
    );
    // Package by package: the runtime is built with and without `macros`
    // (a workspace build would unify the features).
    for command in commands {
        for package in packages {
            cargo(&dir, &[command, "-q", "-p", package]);
        }
    }

    // times[command][package] = (wall, cpu) of each run
    let mut times = vec![vec![(Vec::new(), Vec::new()); 2]; 2];
    for run in 0..runs {
        for (c, command) in commands.iter().enumerate() {
            // Alternate which goes first, so that drift in the machine's
            // load falls on both.
            for k in 0..2 {
                let p = (k + run) % 2;
                let (wall, cpu) = timed(&dir, command, packages[p]);
                eprintln!(
                    "run {run}: cargo {command} {:<15} {wall:>6.2} s wall {cpu:>6.2} s cpu",
                    packages[p]
                );
                times[c][p].0.push(wall);
                times[c][p].1.push(cpu);
            }
        }
    }
    println!("cold `cargo build` / `cargo check` of the crate alone, median of {runs} runs:");
    for (c, command) in commands.iter().enumerate() {
        let [generated, with_macro] =
            [0, 1].map(|p| (median(times[c][p].0.clone()), median(times[c][p].1.clone())));
        println!(
            "  cargo {command}: generated source {:.2} s wall {:.2} s cpu; choreo!(file) {:.2} s wall {:.2} s cpu; macro / generated {:.3} wall {:.3} cpu",
            generated.0,
            generated.1,
            with_macro.0,
            with_macro.1,
            with_macro.0 / generated.0,
            with_macro.1 / generated.1,
        );
    }
}
