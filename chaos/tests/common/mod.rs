//! What the tests that start servers share: whether a server program is
//! installed (a loud skip where it is not), a data directory of the
//! test's own, and a producer that retries.
#![allow(clippy::unwrap_used)]

use choreo_runtime::{Envelope, Payload, SharedBroker};
use std::io::Write;
use std::time::{Duration, Instant};

pub fn installed(program: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        let required = std::env::var("CHOREO_REQUIRE_BROKERS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "`{program}` is not installed, and CHOREO_REQUIRE_BROKERS=1 requires it"
        );
        // Straight to standard error: the test runner shows it even when
        // the test passes.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: `{program}` is not installed (set CHOREO_REQUIRE_BROKERS=1 to fail instead)"
        );
    }
    found
}

pub fn dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("choreo-chaos-test-{}-{name}", std::process::id()))
}

pub fn event(i: usize) -> Envelope {
    Envelope::builder("Tick", format!("k{i}"))
        .payload(Payload::json(format!("{{\"n\":{i}}}")))
        .build()
}

/// Publishes `range` to `topic`, each until the broker takes it (within
/// 30 s), as a producer that retries does.
pub async fn publish_all(broker: &SharedBroker, topic: &str, range: std::ops::Range<usize>) {
    for i in range {
        let deadline = Instant::now() + Duration::from_secs(30);
        while broker.publish(topic, event(i)).await.is_err() {
            assert!(Instant::now() < deadline, "message {i} never taken");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
