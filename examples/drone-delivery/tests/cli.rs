//! The binary as a user runs it.
#![allow(clippy::unwrap_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_drone-delivery");

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_driven_run_ends_with_the_settled_line() {
    let (code, stdout, stderr) = run(&[
        "--deliveries",
        "60",
        "--drones",
        "8",
        "--flight-ms",
        "40",
        "--duplicates",
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let last = stdout.trim_end().lines().last().unwrap();
    assert!(last.starts_with("settled 60/60: "), "{stdout}");
    assert!(stdout.contains("0 double assignments"), "{stdout}");
    // The commands sent again after a 503, on a line of their own before
    // the last.
    let lines: Vec<&str> = stdout.trim_end().lines().collect();
    assert_eq!(lines[lines.len() - 2], "retried after 503: 0", "{stdout}");
}

/// With a token, the ingress lets in only its bearer, and the driver
/// sends it: the run settles (a request without the token would be `401`
/// and fail the run), and the token is nowhere in the output. An empty
/// token is refused.
#[test]
fn with_a_token_a_driven_run_settles_and_never_shows_it() {
    let token = "drone-token-83c1e0";
    let out = Command::new(BIN)
        .args(["--deliveries", "20", "--drones", "4", "--flight-ms", "40"])
        .env("CHOREO_TOKEN", token)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let last = stdout.trim_end().lines().last().unwrap();
    assert!(last.starts_with("settled 20/20: "), "{stdout}");
    assert!(!stdout.contains(token) && !stderr.contains(token));
    let (code, stdout, stderr) = run(&["--deliveries", "1", "--token", " "]);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("the token is empty"), "{stderr}");
}

/// The program run in this process ([`drone_delivery::cli::main_with`]),
/// as a supervisor would run it, with `--stats`: the file holds every
/// participant's final counts, `--claim-lease` taken.
#[test]
fn the_program_runs_in_process_and_leaves_its_stats() {
    let dir = std::env::temp_dir().join(format!(
        "drone-stats-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stats.json");
    let code = drone_delivery::cli::main_with([
        "drone-delivery",
        "--deliveries",
        "30",
        "--drones",
        "8",
        "--flight-ms",
        "40",
        "--claim-lease",
        "3",
        "--ack-wait",
        "10",
        "--stats",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let stats = example_support::StatsSnapshot::read(&file).unwrap();
    assert_eq!(stats.pid, std::process::id());
    let mut names: Vec<&str> = stats.services.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut all = drone_delivery::system::PARTICIPANTS.to_vec();
    all.sort_unstable();
    assert_eq!(names, all);
    for (name, s) in &stats.services {
        assert!(s.deliveries > 0, "{name}: {s:?}");
        assert_eq!(s.received, s.deliveries, "{name}: {s:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_options_and_an_absent_broker_are_one_line_errors() {
    for (args, code, says) in [
        (&["--drones", "0"][..], 2, "--drones"),
        (&["--cancel-share", "1.5"][..], 2, "between 0 and 1"),
        (
            &["--service", "drone-pilot"][..],
            2,
            "there is no service `drone-pilot`",
        ),
        (&["--service", "flight"][..], 2, "shared broker"),
        (
            &["--broker", "nats://127.0.0.1:1", "--service", "flight"][..],
            2,
            "cannot connect",
        ),
        (
            &[
                "--service",
                "flight",
                "--deliveries",
                "3",
                "--broker",
                "nats://127.0.0.1:1",
            ][..],
            2,
            "--deliveries drives the HTTP ingress",
        ),
        (&["--ack-wait", "0"][..], 2, "must be more than 0"),
        (&["--claim-lease", "0"][..], 2, "must be more than 0"),
        (&["--claim-lease", "soon"][..], 2, "not a number of seconds"),
    ] {
        let (got, stdout, stderr) = run(args);
        assert_eq!(got, Some(code), "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
}
