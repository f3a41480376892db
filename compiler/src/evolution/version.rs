//! The version and the choreography's name: both are part of every wire
//! type, so changing them moves every topic, and old and new services then
//! share no event. That is what allows breaking changes.

use super::{Comparison, Finding, Level, Rule};
use crate::model::CheckedSpec;
use crate::source::Span;

/// The version as shown: the declared one, or `0.0.0` (none declared).
fn shown(spec: &CheckedSpec) -> String {
    match &spec.version {
        Some(v) => format!("`{}`", v.value),
        None => "`0.0.0` (none declared)".to_string(),
    }
}

/// Where a finding about the version points: the `version`, or the
/// choreography's name when there is none.
fn span(spec: &CheckedSpec) -> Span {
    spec.version.as_ref().map_or(spec.name.span, |v| v.span)
}

/// Adds the findings about names and versions, and marks breaking findings
/// allowed when every wire type moves forward.
pub(super) fn settle(old: &CheckedSpec, new: &CheckedSpec, c: &mut Comparison) {
    let renamed = old.name.text != new.name.text;
    if renamed {
        c.findings.push(Finding::new(
            Rule::ChoreographyRenamed,
            format!(
                "choreography `{}` is renamed `{}`, which moves every wire type from `{}*` to `{}*`",
                old.name.text, new.name.text, c.old.wire_prefix, c.new.wire_prefix
            ),
            Some(old.name.span),
            Some(new.name.span),
        ));
    }
    let (old_major, new_major) = (c.old.version.major, c.new.version.major);
    let major_moved =
        old.version.as_ref().map(|v| v.value.major) != new.version.as_ref().map(|v| v.value.major);
    // Going back to an older major (or to no version) moves the wire types
    // onto those of an older deployment, whose events may still be there:
    // that allows nothing.
    let declared = !c.old.declared && c.new.declared;
    let forward = renamed || new_major > old_major || declared;
    let moves = c.moves_wire_types();
    if major_moved && forward {
        c.findings.push(Finding::new(
            Rule::VersionMajorBumped,
            format!(
                "the version changes from {} to {}, which moves every wire type from `{}*` to `{}*`",
                shown(old),
                shown(new),
                c.old.wire_prefix,
                c.new.wire_prefix
            ),
            Some(span(old)),
            Some(span(new)),
        ));
    }
    if moves && forward {
        for f in &mut c.findings {
            if f.level() == Level::Breaking {
                f.allowed = true;
            }
        }
        return;
    }
    if !c.findings.iter().any(|f| f.level() == Level::Breaking) {
        return;
    }
    let next = semver::Version::new(old_major.max(new_major) + 1, 0, 0);
    let versions = if moves {
        format!(
            "the version goes back from {} to {}: the new services would share the wire types `{}*` with an older deployment",
            shown(old),
            shown(new),
            c.new.wire_prefix
        )
    } else if c.old.version == c.new.version && c.old.declared == c.new.declared {
        format!(
            "the version stays {}: old and new services would exchange events under the same wire types",
            shown(new)
        )
    } else {
        format!(
            "the version goes from {} to {}: old and new services would exchange events under the same wire types",
            shown(old),
            shown(new)
        )
    };
    let mut finding = Finding::new(
        Rule::VersionNotBumped,
        format!("breaking changes, but {versions}"),
        Some(span(old)),
        Some(span(new)),
    );
    finding.help = Some(format!(
        "declare `version \"{next}\"`, so that new services use wire types of their own (`{}.v{}.*`), or make the change compatible",
        new.name.text, next.major
    ));
    c.findings.push(finding);
}
