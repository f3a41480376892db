//! The checks, in one table: [`CHECKS`]. Each row names a check, the
//! codes it can report, what it needs and the function that runs it; the
//! scheduler ([`run`], in `schedule.rs`) and `choreoc explain`'s list are
//! derived from the table. Adding a check means a module here and a row
//! in the table; the analyses the checks share live in
//! `compiler/src/analysis/`.
//!
//! The syntax (E0001) and the names (E0100–E0107 but E0104) are reported
//! while the model is built; their rows say so and the scheduler skips them.

mod compensation;
mod cycles;
mod dead_ends;
mod handling;
mod joins;
mod naming;
mod reach;
mod recursion;
mod schedule;
mod usage;

pub use schedule::run;

use crate::analysis::compensations::Compensations;
use crate::analysis::joins::Verdict;
use crate::analysis::references::References;
use crate::analysis::runs::{CommandRun, Runs};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{MessageId, Spec};

/// Every check, in the order its diagnostics are reported.
pub const CHECKS: &[Check] = &[
    Check::new("syntax", &[Code::E0001], Run::Building),
    Check::new(
        "names",
        &[
            Code::E0100,
            Code::E0101,
            Code::E0102,
            Code::E0103,
            Code::E0105,
            Code::E0106,
            Code::E0107,
        ],
        Run::Building,
    ),
    Check::new("naming", &[Code::W0300], Run::Model(naming::check)),
    Check::new(
        "usage",
        &[Code::W0301, Code::W0302],
        Run::Model(usage::check),
    ),
    Check::new("recursion", &[Code::E0104], Run::Model(recursion::check)),
    Check::new("cycles", &[Code::E0200], Run::Flow(cycles::check)),
    Check::new(
        "handling",
        &[Code::E0201, Code::E0202],
        Run::Flow(handling::check),
    ),
    Check::new("joins", &[Code::E0205], Run::Joins(joins::check)),
    Check::new("reach", &[Code::E0203], Run::Joins(reach::check)),
    Check::new(
        "dead-ends",
        &[Code::E0204],
        Run::EachCommand(dead_ends::judge, report_as_judged),
    ),
    Check::new(
        "compensation-order",
        &[Code::E0206],
        Run::Joins(compensation::check_order),
    ),
    Check::new(
        "compensation-missing",
        &[Code::W0207],
        Run::EachCommand(compensation::judge, compensation::report_missing),
    ),
];

/// A check: its name, the codes it can report and how it runs.
pub struct Check {
    /// What `choreoc explain` calls it.
    pub name: &'static str,
    /// The codes it can report.
    pub codes: &'static [Code],
    run: Run,
}

/// What a check needs besides the spec's text, which decides when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Needs {
    /// Nothing more: the parser or the model's builder reports it.
    Building,
    /// The model, even when its declarations have errors.
    Model,
    /// A flow graph whose every name resolves: runs only when the
    /// declarations have no error.
    Flow,
    /// The join analysis: its verdicts and its run facts.
    Joins,
    /// Every command's run, built once and judged by each such check.
    EachRun,
}

/// How the scheduler calls a check: one signature per kind of need, so a
/// check gets exactly what its row says it needs.
enum Run {
    Building,
    Model(fn(&Facts<'_>, &mut Vec<Diagnostic>)),
    Flow(fn(&Facts<'_>, &mut Vec<Diagnostic>)),
    Joins(fn(&Joined<'_>, &mut Vec<Diagnostic>)),
    /// Judges one command's run, then reports what it found in all of them.
    EachCommand(Judge, Report),
}

type Judge = fn(&Joined<'_>, &CommandRun, &mut Findings);
type Report = fn(&Joined<'_>, Findings, &mut Vec<Diagnostic>);

impl Check {
    const fn new(name: &'static str, codes: &'static [Code], run: Run) -> Self {
        Check { name, codes, run }
    }

    /// What it needs, which decides when it runs.
    pub fn needs(&self) -> Needs {
        match self.run {
            Run::Building => Needs::Building,
            Run::Model(_) => Needs::Model,
            Run::Flow(_) => Needs::Flow,
            Run::Joins(_) => Needs::Joins,
            Run::EachCommand(..) => Needs::EachRun,
        }
    }
}

/// The check that reports `code`.
pub fn reporting(code: Code) -> Option<&'static Check> {
    CHECKS.iter().find(|check| check.codes.contains(&code))
}

/// What the checks that need the model see.
pub(crate) struct Facts<'a> {
    pub spec: &'a Spec,
    /// Whether building the model found no error.
    pub declarations_ok: bool,
    pub references: &'a References<'a>,
}

/// What the checks that need the join analysis see. The run facts come
/// from the last round of the join analysis, which judged with exactly the
/// joins that can fire.
pub(crate) struct Joined<'a> {
    pub verdicts: &'a [Option<Verdict>],
    pub runs: &'a Runs<'a>,
    pub references: &'a References<'a>,
    pub compensations: &'a Compensations,
}

/// What a check that judges each command's run found, in command order.
#[derive(Default)]
pub(crate) struct Findings {
    /// Diagnostics to report as they are.
    pub diags: Vec<Diagnostic>,
    /// `(message, command)` pairs, for the check's report to gather across
    /// commands.
    pub marks: Vec<(MessageId, MessageId)>,
}

impl Findings {
    fn extend(&mut self, other: Findings) {
        self.diags.extend(other.diags);
        self.marks.extend(other.marks);
    }
}

/// The report of a check whose judgements are its diagnostics.
fn report_as_judged(_: &Joined<'_>, found: Findings, diags: &mut Vec<Diagnostic>) {
    diags.extend(found.diags);
}
