//! The participant processes of a campaign: one per participant and
//! replica, each a child process of this binary running the example's own
//! command line (`choreo-chaos example <name> …`), killed, paused and
//! started again as the faults say.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::example::Example;
use crate::example::Stopped;

/// Every member's counters at one moment (see [`Fleet::snapshot`]).
pub struct Snapshot {
    /// By member: its participant, its counters over all its processes,
    /// and its current process's alone.
    members: Vec<(&'static str, Counters, Counters)>,
}

impl Snapshot {
    /// The counters of every member, summed.
    pub fn total(&self) -> Counters {
        self.sum(|_| true)
    }

    /// The counters of `participant`'s members, summed.
    pub fn total_of(&self, participant: &str) -> Counters {
        self.sum(|p| p == participant)
    }

    /// The counters of member `i`'s current process.
    pub fn current(&self, i: usize) -> Counters {
        self.members.get(i).map(|m| m.2).unwrap_or_default()
    }

    fn sum(&self, of: impl Fn(&str) -> bool) -> Counters {
        let mut t = Counters::default();
        for (_, all, _) in self.members.iter().filter(|m| of(m.0)) {
            t.add(all);
        }
        t
    }
}

/// A member's counters, as its process last wrote them (`--stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Handler runs that succeeded.
    pub handled: u64,
    /// Deliveries of events handled already (dropped by the inbox).
    pub duplicates: u64,
    /// Deliveries that came again after another holder lost them, and
    /// were handled here.
    pub redelivered: u64,
    /// Deliveries that came again after another holder lost them, and
    /// found the work done already (handled, not acknowledged).
    pub redelivered_done: u64,
    /// Deliveries taken from the broker.
    pub received: u64,
    /// Deliveries settled.
    pub deliveries: u64,
    /// Deliveries dead-lettered.
    pub dead_lettered: u64,
}

impl Counters {
    fn read(path: &Path) -> Option<(u32, Counters)> {
        let text = std::fs::read_to_string(path).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let pid = u32::try_from(v.get("pid")?.as_u64()?).ok()?;
        let mut c = Counters::default();
        for s in v.get("services")?.as_object()?.values() {
            let g = |k: &str| s.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            c.handled += g("handled");
            c.duplicates += g("duplicates");
            c.redelivered += g("redelivered");
            c.redelivered_done += g("redelivered_done");
            c.received += g("received");
            c.deliveries += g("deliveries");
            c.dead_lettered += g("dead_lettered");
        }
        Some((pid, c))
    }

    /// Redeliveries of work another holder lost: handled here, or found
    /// done already. Either shows that a kill or a pause bit.
    pub fn taken_over(&self) -> u64 {
        self.redelivered + self.redelivered_done
    }

    /// Deliveries taken and not yet settled.
    pub fn in_flight(&self) -> u64 {
        self.received.saturating_sub(self.deliveries)
    }

    fn add(&mut self, o: &Counters) {
        self.handled += o.handled;
        self.duplicates += o.duplicates;
        self.redelivered += o.redelivered;
        self.redelivered_done += o.redelivered_done;
        self.received += o.received;
        self.deliveries += o.deliveries;
        self.dead_lettered += o.dead_lettered;
    }
}

/// One process of a participant.
struct Member {
    participant: &'static str,
    replica: usize,
    /// Counters of its earlier, killed, processes.
    before: Counters,
    incarnation: usize,
    child: Option<Child>,
    paused: bool,
}

/// The participants' processes.
pub struct Fleet {
    example: Example,
    exe: PathBuf,
    dir: PathBuf,
    common: Vec<String>,
    members: Vec<Member>,
}

impl Fleet {
    /// Starts `replicas` processes of every participant of `example`, each
    /// with the arguments `common`, and waits until every one is ready.
    pub fn start(
        example: Example,
        dir: &Path,
        common: Vec<String>,
        replicas: usize,
    ) -> std::io::Result<Fleet> {
        let exe = std::env::current_exe()?;
        let mut fleet = Fleet {
            example,
            exe,
            dir: dir.to_owned(),
            common,
            members: Vec::new(),
        };
        for participant in example.participants() {
            for replica in 0..replicas {
                fleet.members.push(Member {
                    participant,
                    replica,
                    before: Counters::default(),
                    incarnation: 0,
                    child: None,
                    paused: false,
                });
            }
        }
        for i in 0..fleet.members.len() {
            fleet.spawn(i)?;
        }
        for i in 0..fleet.members.len() {
            fleet.wait_ready(i, Duration::from_secs(90))?;
        }
        Ok(fleet)
    }

    /// How many processes.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never: every example has participants.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The participant of member `i`.
    pub fn participant(&self, i: usize) -> &'static str {
        self.members[i].participant
    }

    /// `Participant#replica`, for the report.
    pub fn label(&self, i: usize) -> String {
        let m = &self.members[i];
        format!("{}#{}", m.participant, m.replica)
    }

    /// The members running `participant`.
    pub fn of(&self, participant: &str) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| self.members[*i].participant == participant)
            .collect()
    }

    fn file(&self, i: usize, ext: &str) -> PathBuf {
        let m = &self.members[i];
        self.dir.join(format!(
            "{}-{}-{}.{ext}",
            m.participant, m.replica, m.incarnation
        ))
    }

    fn spawn(&mut self, i: usize) -> std::io::Result<()> {
        self.members[i].incarnation += 1;
        let stats = self.file(i, "stats.json");
        let out = self.file(i, "out");
        let err = self.file(i, "err");
        let m = &self.members[i];
        let child = Command::new(&self.exe)
            .arg("example")
            .arg(self.example.name())
            .args(&self.common)
            .args(["--service", m.participant])
            .arg("--stats")
            .arg(&stats)
            .stdin(Stdio::null())
            .stdout(File::create(out)?)
            .stderr(File::create(err)?)
            .spawn()?;
        self.members[i].child = Some(child);
        self.members[i].paused = false;
        Ok(())
    }

    /// Waits until member `i` says it is ready (its consumer groups are
    /// there), or fails naming it and its output.
    pub fn wait_ready(&mut self, i: usize, within: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + within;
        let out = self.file(i, "out");
        loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if text.contains(self.example.ready_marker()) {
                return Ok(());
            }
            let exited = self.members[i]
                .child
                .as_mut()
                .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
            if exited || Instant::now() >= deadline {
                let err = std::fs::read_to_string(self.file(i, "err")).unwrap_or_default();
                return Err(std::io::Error::other(format!(
                    "{} {} ready: {}{}",
                    self.label(i),
                    if exited {
                        "exited before it was"
                    } else {
                        "was not"
                    },
                    text.trim_end(),
                    err.lines()
                        .last()
                        .map(|l| format!(" / {l}"))
                        .unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The counters of member `i`, over all its processes so far.
    pub fn counters(&self, i: usize) -> Counters {
        let mut c = self.members[i].before;
        if let Some((_, now)) = Counters::read(&self.file(i, "stats.json")) {
            c.add(&now);
        }
        c
    }

    /// The counters of member `i`'s current process alone.
    pub fn current(&self, i: usize) -> Counters {
        Counters::read(&self.file(i, "stats.json"))
            .map(|(_, c)| c)
            .unwrap_or_default()
    }

    /// Waits until no process holds a delivery and none handled anything
    /// for two seconds, or `within`.
    pub fn quiesce(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut last = self.total();
        let mut still_since = Instant::now();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            let now = self.total();
            if now.handled != last.handled || now.in_flight() > 0 {
                still_since = Instant::now();
            }
            last = now;
            if still_since.elapsed() >= Duration::from_secs(2) {
                return;
            }
        }
    }

    /// Every member's counters now, each process's stats file read once.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            members: (0..self.members.len())
                .map(|i| {
                    let current = self.current(i);
                    let mut all = self.members[i].before;
                    all.add(&current);
                    (self.members[i].participant, all, current)
                })
                .collect(),
        }
    }

    /// The counters of every member, summed.
    pub fn total(&self) -> Counters {
        let mut t = Counters::default();
        for i in 0..self.members.len() {
            t.add(&self.counters(i));
        }
        t
    }

    /// The counters of `participant`'s members, summed.
    pub fn total_of(&self, participant: &str) -> Counters {
        let mut t = Counters::default();
        for i in self.of(participant) {
            t.add(&self.counters(i));
        }
        t
    }

    fn signal(&self, i: usize, signal: Signal) -> bool {
        let Some(c) = &self.members[i].child else {
            return false;
        };
        let Ok(pid) = i32::try_from(c.id()) else {
            return false;
        };
        kill(Pid::from_raw(pid), signal).is_ok()
    }

    /// The process id of member `i`'s current process.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// Kills member `i` with SIGKILL; what it held in flight at its last
    /// report (every 200 ms) is returned.
    pub fn kill(&mut self, i: usize) -> u64 {
        let in_flight = self.current(i).in_flight();
        let now = self.counters(i);
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.members[i].before = now;
        self.members[i].paused = false;
        in_flight
    }

    /// Starts member `i` again after a kill (or an exit), without waiting
    /// for it to be ready: one that cannot start exits, and
    /// [`Fleet::exited`] reports it.
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        if self.members[i].child.is_some() {
            self.kill(i);
        }
        self.spawn(i)
    }

    /// Whether member `i` runs (not killed; it may be paused).
    pub fn alive(&self, i: usize) -> bool {
        self.members[i].child.is_some()
    }

    /// Whether member `i` is paused.
    pub fn paused(&self, i: usize) -> bool {
        self.members[i].paused
    }

    /// Stops member `i` with SIGSTOP: it holds its deliveries and claims
    /// without a word, as a process in a long pause of the collector, of
    /// the machine or of the hypervisor does.
    pub fn pause(&mut self, i: usize) -> bool {
        let done = self.signal(i, Signal::SIGSTOP);
        self.members[i].paused = done;
        done
    }

    /// Lets member `i` go on after [`Fleet::pause`].
    pub fn resume(&mut self, i: usize) {
        self.signal(i, Signal::SIGCONT);
        self.members[i].paused = false;
    }

    /// The members whose process exited by itself since the last call
    /// (a crash, or a start refused because the broker was away), with the
    /// last line of their standard error; their counters are kept, and
    /// they are down until [`Fleet::restart`]ed.
    pub fn exited(&mut self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for i in 0..self.members.len() {
            let gone = self.members[i]
                .child
                .as_mut()
                .is_some_and(|c| !matches!(c.try_wait(), Ok(None)));
            if gone {
                let err = std::fs::read_to_string(self.file(i, "err")).unwrap_or_default();
                self.kill(i);
                out.push((
                    i,
                    err.trim_end().lines().last().unwrap_or_default().to_owned(),
                ));
            }
        }
        out
    }

    /// Stops every member with SIGTERM, as a supervisor does, and returns
    /// what each printed last (its final state, as JSON).
    pub fn stop_all(mut self, within: Duration) -> Vec<Stopped> {
        for i in 0..self.members.len() {
            if self.members[i].paused {
                self.resume(i);
            }
            self.signal(i, Signal::SIGTERM);
        }
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        for i in 0..self.members.len() {
            let Some(mut c) = self.members[i].child.take() else {
                continue;
            };
            let mut status = None;
            while Instant::now() < deadline {
                if let Ok(Some(s)) = c.try_wait() {
                    status = Some(s);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if status.is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let text = std::fs::read_to_string(self.file(i, "out")).unwrap_or_default();
            out.push(Stopped {
                participant: self.members[i].participant,
                success: status.is_some_and(|s| s.success()),
                last_line: text
                    .trim_end()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        out
    }

    /// The resident memory of every running member, in KiB, by label.
    pub fn rss(&self) -> Vec<(String, u64)> {
        (0..self.members.len())
            .filter_map(|i| {
                let kib = rss_kib(self.pid(i)?)?;
                Some((self.label(i), kib))
            })
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// `VmRSS` of process `pid`, in KiB (Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
