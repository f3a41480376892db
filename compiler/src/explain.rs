//! Long explanations of the diagnostic codes, for `choreoc explain`.

use crate::diagnostic::Code;

/// The explanation of a code, in Markdown: what it means, why it matters,
/// a spec that triggers it and the same spec fixed.
pub fn explanation(code: Code) -> &'static str {
    match code {
        Code::E0001 => include_str!("../explanations/E0001.md"),
        Code::E0100 => include_str!("../explanations/E0100.md"),
        Code::E0101 => include_str!("../explanations/E0101.md"),
        Code::E0102 => include_str!("../explanations/E0102.md"),
        Code::E0103 => include_str!("../explanations/E0103.md"),
        Code::E0104 => include_str!("../explanations/E0104.md"),
        Code::E0105 => include_str!("../explanations/E0105.md"),
        Code::E0106 => include_str!("../explanations/E0106.md"),
        Code::E0107 => include_str!("../explanations/E0107.md"),
        Code::E0200 => include_str!("../explanations/E0200.md"),
        Code::E0201 => include_str!("../explanations/E0201.md"),
        Code::E0202 => include_str!("../explanations/E0202.md"),
        Code::E0203 => include_str!("../explanations/E0203.md"),
        Code::E0204 => include_str!("../explanations/E0204.md"),
        Code::E0205 => include_str!("../explanations/E0205.md"),
        Code::E0206 => include_str!("../explanations/E0206.md"),
        Code::W0207 => include_str!("../explanations/W0207.md"),
        Code::W0300 => include_str!("../explanations/W0300.md"),
        Code::W0301 => include_str!("../explanations/W0301.md"),
        Code::W0302 => include_str!("../explanations/W0302.md"),
    }
}
