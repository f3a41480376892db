//! `--stats FILE`: the counts of the services a process runs
//! ([`ServiceStats`]), written to a file every [`STATS_EVERY`] and once
//! more when they stop, for a supervisor to read while the process runs
//! and after it was killed.
//!
//! The file holds one JSON object ([`StatsSnapshot`]):
//!
//! ```json
//! {"pid": 4242, "at_ms": 1767225600000, "services": {"Payment": {"received": 10, "deliveries": 9, …}}}
//! ```
//!
//! Each write goes to `FILE.tmp`, then is renamed to `FILE`: a reader
//! sees a whole snapshot, the last one written, even of a process killed
//! while writing.

use choreo_runtime::service::{ServiceStats, StatsReader};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often the counts are written.
pub const STATS_EVERY: Duration = Duration::from_millis(200);

/// What a stats file holds: the process, when, and the counts of each
/// service it runs, by participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// The process that wrote it.
    pub pid: u32,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Each service's counts, by participant (`Payment`).
    pub services: BTreeMap<String, ServiceStats>,
}

impl StatsSnapshot {
    /// The counts of `services` now, of this process.
    pub fn of(services: &[StatsReader]) -> Self {
        StatsSnapshot {
            pid: std::process::id(),
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            services: services
                .iter()
                .map(|s| (s.participant().to_string(), s.stats()))
                .collect(),
        }
    }

    /// Writes it to `path` atomically: to `path` with `.tmp` added to
    /// its name, then renamed to `path`.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let json = serde_json::to_vec(self).map_err(io::Error::other)?;
        let tmp = tmp_path(path);
        let named = |e: io::Error| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        };
        std::fs::write(&tmp, json).map_err(named)?;
        std::fs::rename(&tmp, path).map_err(named)
    }

    /// Reads the snapshot in `path`.
    pub fn read(path: &Path) -> io::Result<Self> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// `path` with `.tmp` added to its file name (`stats.json.tmp`).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name: OsString = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes the counts of some services to a file every [`STATS_EVERY`]
/// until [`StatsWriter::stop`], which writes them once more.
pub struct StatsWriter {
    path: PathBuf,
    services: Vec<StatsReader>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl StatsWriter {
    /// Writes the counts of `services` to `path` now (an error if it
    /// cannot), then every [`STATS_EVERY`] in a task of its own (a write
    /// that fails then is reported once on standard error, and tried
    /// again at the next tick). Needs a Tokio runtime.
    pub fn start(path: impl Into<PathBuf>, services: Vec<StatsReader>) -> io::Result<Self> {
        let path = path.into();
        StatsSnapshot::of(&services).write(&path)?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let (path, services) = (path.clone(), services.clone());
            async move {
                let mut tick = tokio::time::interval(STATS_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                let mut warned = false;
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        _ = tick.tick() => {}
                    }
                    match StatsSnapshot::of(&services).write(&path) {
                        Ok(()) => warned = false,
                        Err(e) if !warned => {
                            eprintln!("warning: --stats: {e}");
                            warned = true;
                        }
                        Err(_) => {}
                    }
                }
            }
        });
        Ok(StatsWriter {
            path,
            services,
            stop: Some(stop),
            task,
        })
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the periodic writes and writes the counts once more: called
    /// once the services stopped, it writes their final counts.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        StatsSnapshot::of(&self.services).write(&self.path)
    }
}

impl Drop for StatsWriter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use choreo_runtime::service::{
        Client, Emit, Reaction, ServiceDefinition, ServiceOptions, Stores, Topics, Trigger,
    };
    use choreo_runtime::{Envelope, MemoryBroker, Message, SharedBroker};
    use std::sync::Arc;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Ping {}
    impl Message for Ping {
        const TYPE: &'static str = "Test.Ping";
    }

    #[test]
    fn the_tmp_file_is_beside_the_file() {
        assert_eq!(
            tmp_path(Path::new("/run/x/stats.json")),
            Path::new("/run/x/stats.json.tmp")
        );
        assert_eq!(tmp_path(Path::new("s")), Path::new("s.tmp"));
    }

    #[tokio::test]
    async fn the_counts_are_written_while_running_and_once_more_at_the_end() {
        let dir = std::env::temp_dir().join(format!(
            "choreo-stats-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stats.json");
        let broker: SharedBroker = Arc::new(MemoryBroker::new());
        let service = ServiceDefinition::new("Test", "Pong")
            .reaction(Reaction::new(
                "pong",
                Trigger::any([Ping::TYPE]),
                |_, _| async { Ok(Emit::none()) },
            ))
            .start(broker.clone(), Stores::memory(), ServiceOptions::default())
            .await
            .unwrap();
        let writer = StatsWriter::start(&path, vec![service.stats_reader()]).unwrap();
        let first = StatsSnapshot::read(&path).unwrap();
        assert_eq!(first.pid, std::process::id());
        assert_eq!(first.services["Pong"].handled, 0);
        let client = Client::new(broker.clone(), Topics::default(), "test");
        for n in 0..3 {
            client
                .send_envelope(Envelope::of(format!("k{n}"), Ping {}).build())
                .await
                .unwrap();
        }
        // Written again within a tick or two.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let s = StatsSnapshot::read(&path).unwrap();
            if s.services["Pong"].handled == 3 {
                assert!(s.at_ms >= first.at_ms);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{s:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let last = service.shutdown().await.unwrap();
        writer.stop().await.unwrap();
        let s = StatsSnapshot::read(&path).unwrap();
        assert_eq!(s.services["Pong"], last);
        assert_eq!((last.received, last.deliveries), (3, 3));
        assert!(!tmp_path(&path).exists());
        // The JSON names each count.
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw["services"]["Pong"]["received"], 3);
        assert!(raw["at_ms"].as_u64().unwrap() > 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_written_is_an_error_at_start() {
        let e = StatsWriter::start("/nonexistent-dir-of-choreo/stats.json", Vec::new())
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("/nonexistent-dir-of-choreo/stats.json"),
            "{e}"
        );
    }
}
