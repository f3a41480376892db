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
    ] {
        let (got, stdout, stderr) = run(args);
        assert_eq!(got, Some(code), "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
}
