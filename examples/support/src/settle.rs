//! Following a run's instances until they settle: a progress bar while it
//! runs on a terminal, and the summary printed at the end.

use choreo_runtime::progress::{InstanceProgress, InstanceTracker, TerminalKind};
use choreo_runtime::sync::Recover;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How one instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The terminal event's name (`OrderCompleted`).
    pub event: String,
    /// Whether it is a success.
    pub success: bool,
    /// Reactions that dead-lettered one of its events.
    pub dead_letters: usize,
}

#[derive(Default)]
struct Seen {
    endings: HashMap<String, Ending>,
}

/// Collects settled instances from a tracker from the moment it is
/// started, so that none that settles while commands are still being sent
/// is missed.
pub struct Settler {
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    bar: ProgressBar,
    started: Instant,
    task: tokio::task::JoinHandle<()>,
}

fn short(ty: &str) -> String {
    ty.rsplit('.').next().unwrap_or(ty).to_string()
}

impl Settler {
    /// Starts collecting; `expected` sizes the progress bar (shown only
    /// when standard error is a terminal), `label` names what settles.
    pub fn start(tracker: &InstanceTracker, expected: u64, label: &str) -> Self {
        let bar = if std::io::stderr().is_terminal() && expected > 0 {
            let bar = ProgressBar::new(expected);
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
            ) {
                bar.set_style(style);
            }
            bar.set_prefix(label.to_string());
            bar
        } else {
            ProgressBar::hidden()
        };
        let mut settled = tracker.settled();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let changed = Arc::new(Notify::new());
        let (s, c, b) = (seen.clone(), changed.clone(), bar.clone());
        let task = tokio::spawn(async move {
            while let Some(p) = settled.recv().await {
                record(&s, &p);
                b.inc(1);
                c.notify_waiters();
            }
        });
        Settler {
            seen,
            changed,
            bar,
            started: Instant::now(),
            task,
        }
    }

    /// How `key` ended, if it has settled.
    pub fn ending(&self, key: &str) -> Option<Ending> {
        self.seen.locked().endings.get(key).cloned()
    }

    /// Waits until every one of `keys` has settled or `timeout` passes,
    /// then summarises them.
    pub async fn wait(&self, keys: &[String], timeout: Duration) -> Summary {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let all = {
                let seen = self.seen.locked();
                keys.iter().all(|k| seen.endings.contains_key(k))
            };
            if all || tokio::time::Instant::now() >= deadline {
                break;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
        self.bar.finish_and_clear();
        let seen = self.seen.locked();
        let mut summary = Summary {
            total: keys.len(),
            settled: 0,
            outcomes: BTreeMap::new(),
            unsettled: Vec::new(),
            dead_letters: 0,
            elapsed: self.started.elapsed(),
            retried: 0,
        };
        for k in keys {
            match seen.endings.get(k) {
                Some(e) => {
                    summary.settled += 1;
                    summary.dead_letters += e.dead_letters;
                    *summary.outcomes.entry(e.event.clone()).or_default() += 1;
                }
                None => summary.unsettled.push(k.clone()),
            }
        }
        summary
    }
}

impl Drop for Settler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn record(seen: &Mutex<Seen>, p: &InstanceProgress) {
    let Some(outcome) = &p.outcome else { return };
    seen.locked().endings.insert(
        p.key.to_string(),
        Ending {
            event: short(&outcome.event_type),
            success: outcome.kind == TerminalKind::Success,
            dead_letters: p.dead_letters.len(),
        },
    );
}

/// How far an instance that did not settle got, in one line: the events
/// seen, the reactions still pending (and on which event), the dead
/// letters — what to look for in the participants' logs.
pub fn describe_progress(p: &InstanceProgress) -> String {
    let seen: Vec<String> = p.events.iter().map(|e| short(&e.ty)).collect();
    let pending: Vec<String> = p
        .pending
        .iter()
        .map(|r| {
            format!(
                "{}.{} on {} {}",
                r.participant,
                r.reaction,
                short(&r.event_type),
                r.event_id
            )
        })
        .collect();
    let mut line = format!(
        "{}: seen {}; pending {}",
        p.key,
        seen.join(", "),
        if pending.is_empty() {
            "none".to_string()
        } else {
            pending.join(", ")
        }
    );
    if let Some(o) = &p.outcome {
        line.push_str(&format!("; ended {}", short(&o.event_type)));
    }
    for d in &p.dead_letters {
        line.push_str(&format!(
            "; dead letter {}.{} on {}: {}",
            d.participant, d.reaction, d.event_id, d.reason
        ));
    }
    line
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Instances started.
    pub total: usize,
    /// Instances that settled.
    pub settled: usize,
    /// Settled instances by terminal event.
    pub outcomes: BTreeMap<String, usize>,
    /// Keys that did not settle in time.
    pub unsettled: Vec<String>,
    /// Dead letters over all settled instances.
    pub dead_letters: usize,
    /// From the start of the settler to the end of the wait.
    pub elapsed: Duration,
    /// Commands the driver sent again after a `503` (its ingress could
    /// not send them: a broker away), as [`HttpClient::retried`](crate::HttpClient::retried)
    /// counts them; set by the driver.
    pub retried: u64,
}

impl Summary {
    /// Whether every instance settled.
    pub fn complete(&self) -> bool {
        self.settled == self.total
    }

    /// How many instances ended with `event`.
    pub fn count(&self, event: &str) -> usize {
        self.outcomes.get(event).copied().unwrap_or(0)
    }

    /// Instances settled per second.
    pub fn per_second(&self) -> f64 {
        self.settled as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Ends with the line `settled N/M: Event count, …`, after the line
/// `retried after 503: N`.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} instances in {:.2} s ({:.0}/s), {} dead letters",
            self.total,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.dead_letters
        )?;
        for k in self.unsettled.iter().take(5) {
            writeln!(f, "not settled: {k}")?;
        }
        if self.unsettled.len() > 5 {
            writeln!(f, "… and {} more not settled", self.unsettled.len() - 5)?;
        }
        writeln!(f, "retried after 503: {}", self.retried)?;
        write!(f, "settled {}/{}", self.settled, self.total)?;
        let counts: Vec<String> = self
            .outcomes
            .iter()
            .map(|(e, n)| format!("{e} {n}"))
            .collect();
        if !counts.is_empty() {
            write!(f, ": {}", counts.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_says_how_many_settled_and_how() {
        let s = Summary {
            total: 3,
            settled: 2,
            outcomes: [
                ("OrderCompleted".to_string(), 1),
                ("OrderFailed".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            unsettled: vec!["k3".into()],
            dead_letters: 0,
            elapsed: Duration::from_secs(2),
            retried: 4,
        };
        let text = s.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[lines.len() - 2..],
            [
                "retried after 503: 4",
                "settled 2/3: OrderCompleted 1, OrderFailed 1"
            ]
        );
        assert!(text.contains("not settled: k3"));
        assert!(!s.complete());
        assert_eq!(s.count("OrderFailed"), 1);
        assert_eq!(short("Ecommerce.v1.OrderFailed"), "OrderFailed");
    }
}
