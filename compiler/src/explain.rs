//! Long explanations of the diagnostic codes, for `choreoc explain`.

use crate::diagnostic::Code;

/// The explanation of a code, in Markdown: what it means, why it matters,
/// a spec that triggers it and the same spec fixed. Each code's is
/// `compiler/explanations/<code>.md`, included by [`Code::explanation`].
pub fn explanation(code: Code) -> &'static str {
    code.explanation()
}
