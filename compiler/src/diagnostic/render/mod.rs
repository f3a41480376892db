//! Rendering diagnostics for people (rustc-style text) and for tools (one
//! JSON object per line). The library's checks never render; front ends
//! (`choreoc`, `choreo!`) call these.

mod json;
mod text;

pub use json::{json_line, JsonDiagnostic, JsonLabel};
pub use text::{render_text, ColorMode};
