//! The driver: the example's ingress process placing the instances, one
//! round at a time (a soak drives round after round), started again as a
//! supervisor would when it could not start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::Options;
use crate::example::{settled_of, Example};

/// Starts of a round the driver may need before it is given up on (a
/// driver whose consumers could not be made while a server was down
/// placed nothing, and is started again).
const STARTS: usize = 5;

/// The driver process and the rounds it has run.
pub(super) struct Driver {
    launch: Launch,
    child: Child,
    round: usize,
    rounds: Vec<Round>,
    restarts: usize,
}

/// How a round of the driver is started.
struct Launch {
    /// The process's command line, but for the example's own driving
    /// arguments.
    args: Vec<String>,
    example: Example,
    concurrency: usize,
    work: PathBuf,
    /// Instances a round places.
    n: usize,
}

impl Launch {
    /// Starts round `round`: its report, output and errors in
    /// `driver-<round>.{json,out,err}` under the work directory.
    fn spawn(&self, round: usize) -> std::io::Result<Child> {
        let file = |ext: &str| self.work.join(format!("driver-{round}.{ext}"));
        Command::new(std::env::current_exe()?)
            .args(&self.args)
            .args(
                self.example
                    .driver_args(self.n, self.concurrency, &file("json")),
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(file("out"))?)
            .stderr(std::fs::File::create(file("err"))?)
            .spawn()
    }
}

/// What [`Driver::poll`] found.
pub(super) enum Polled {
    /// Still placing, or started again.
    Driving,
    /// The last round is over.
    Done,
}

impl Driver {
    /// Starts the first round of `n` instances, with the deployment's
    /// arguments `common`.
    pub(super) fn start(
        o: &Options,
        work: &Path,
        common: &[String],
        n: usize,
    ) -> std::io::Result<Self> {
        let mut args = vec!["example".to_owned(), o.example.name().to_owned()];
        args.extend(common.iter().cloned());
        args.extend(
            ["--service", "ingress", "--timeout", &o.timeout.to_string()].map(String::from),
        );
        let launch = Launch {
            args,
            example: o.example,
            concurrency: o.concurrency,
            work: work.to_owned(),
            n,
        };
        Ok(Driver {
            child: launch.spawn(0)?,
            launch,
            round: 0,
            rounds: Vec::new(),
            restarts: 0,
        })
    }

    /// Instances a round places.
    pub(super) fn per_round(&self) -> usize {
        self.launch.n
    }

    /// Instances settled in the rounds over.
    pub(super) fn settled(&self) -> usize {
        self.rounds.iter().map(|r| r.settled).sum()
    }

    /// Looks at the driver: a round that is over is kept, and another
    /// started while `more` (a soak with time left); a driver that exited
    /// without placing anything is started again, noted in `supervised`.
    pub(super) fn poll(
        &mut self,
        more: bool,
        supervised: &mut Vec<String>,
    ) -> std::io::Result<Polled> {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            return Ok(Polled::Driving);
        }
        let done = Round::read(&self.launch.work, self.round);
        if settled_of(&done.summary).is_none() && self.restarts < STARTS {
            self.restarts += 1;
            supervised.push(format!(
                "the driver exited ({}); started again",
                done.error.lines().last().unwrap_or_default()
            ));
            std::thread::sleep(Duration::from_secs(1));
            self.child = self.launch.spawn(self.round)?;
            return Ok(Polled::Driving);
        }
        self.rounds.push(done);
        if !more {
            return Ok(Polled::Done);
        }
        self.round += 1;
        self.child = self.launch.spawn(self.round)?;
        Ok(Polled::Driving)
    }

    /// Waits for the driver to end and gives every round.
    pub(super) fn finish(mut self) -> std::io::Result<Vec<Round>> {
        let _ = self.child.wait()?;
        if self.rounds.len() <= self.round {
            self.rounds.push(Round::read(&self.launch.work, self.round));
        }
        Ok(self.rounds)
    }
}

/// One run of the driver: what it printed and placed.
pub(super) struct Round {
    /// Its summary (standard output).
    pub(super) summary: String,
    /// Its standard error.
    pub(super) error: String,
    report: PathBuf,
    /// Instances placed.
    pub(super) placed: usize,
    /// Instances settled.
    pub(super) settled: usize,
}

impl Round {
    fn read(work: &Path, round: usize) -> Round {
        let summary =
            std::fs::read_to_string(work.join(format!("driver-{round}.out"))).unwrap_or_default();
        let error =
            std::fs::read_to_string(work.join(format!("driver-{round}.err"))).unwrap_or_default();
        let (settled, placed) = settled_of(&summary).unwrap_or((0, 0));
        Round {
            summary,
            error: error.trim_end().to_owned(),
            report: work.join(format!("driver-{round}.json")),
            placed,
            settled,
        }
    }

    /// The rounds' reports as one (`into`), and their summaries as one,
    /// ending with the line `settled X/N` over them all.
    pub(super) fn merge(rounds: &[Round], into: &Path) -> String {
        let mut records: Vec<serde_json::Value> = Vec::new();
        for r in rounds {
            if let Ok(bytes) = std::fs::read(&r.report) {
                if let Ok(serde_json::Value::Array(a)) = serde_json::from_slice(&bytes) {
                    records.extend(a);
                }
            }
        }
        if !records.is_empty() {
            let _ = std::fs::write(into, serde_json::to_vec(&records).unwrap_or_default());
        }
        if let [one] = rounds {
            return one.summary.clone();
        }
        let mut text: String = rounds.iter().map(|r| r.summary.as_str()).collect();
        let (settled, placed) = rounds
            .iter()
            .fold((0, 0), |(s, p), r| (s + r.settled, p + r.placed));
        text.push_str(&format!(
            "settled {settled}/{placed} in {} rounds\n",
            rounds.len()
        ));
        text
    }
}
