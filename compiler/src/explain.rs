//! Long explanations of the diagnostic codes and of the rules of
//! `choreoc diff`, for `choreoc explain`.

use crate::diagnostic::Code;
use crate::evolution::Rule;

/// The explanation of a code, in Markdown: what it means, why it matters,
/// a spec that triggers it and the same spec fixed. Each code's is
/// `compiler/explanations/<code>.md`, included by [`Code::explanation`].
pub fn explanation(code: Code) -> &'static str {
    code.explanation()
}

/// The explanation of a diagnostic code or of a `choreoc diff` rule id,
/// as written by a user (case and surrounding blanks do not matter); when
/// it is neither, the closest known id, if one is close enough to be a
/// likely typo.
pub fn lookup(id: &str) -> Result<&'static str, Option<&'static str>> {
    if let Ok(code) = id.parse::<Code>() {
        return Ok(code.explanation());
    }
    if let Ok(rule) = id.parse::<Rule>() {
        return Ok(rule.explanation());
    }
    let known = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .chain(Rule::ALL.iter().map(|r| r.as_str()));
    Err(crate::suggest::closest(
        &id.trim().to_ascii_uppercase(),
        known,
    ))
}

#[cfg(test)]
mod tests {
    use super::lookup;

    #[test]
    fn finds_codes_and_rules_in_any_case_and_suggests_near_misses() {
        assert!(lookup("e0204").is_ok_and(|t| t.starts_with("# E0204: ")));
        assert!(lookup(" field_removed ").is_ok_and(|t| t.starts_with("# FIELD_REMOVED: ")));
        assert_eq!(lookup("FIELD_REMOVD"), Err(Some("FIELD_REMOVED")));
        assert_eq!(lookup("field_type_change"), Err(Some("FIELD_TYPE_CHANGED")));
        assert_eq!(lookup("NOTHING_LIKE_IT_AT_ALL"), Err(None));
    }
}
