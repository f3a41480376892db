//! Text widths, estimated without a font file.
//!
//! The SVG names Helvetica, Arial and Liberation Sans (metric-compatible
//! with Arial) first, so their advance widths decide the box sizes. Other
//! sans-serif fonts run up to about a tenth wider, which the margin in
//! [`width`] absorbs.

/// Helvetica/Arial advance widths of ASCII 32..=126, in thousandths of an
/// em (the standard AFM metrics).
const WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // ' '..'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // '0'..'9'
    278, 278, 584, 584, 584, 556, 1015, // ':'..'@'
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, // 'A'..'M'
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // 'N'..'Z'
    278, 278, 278, 469, 556, 333, // '['..'`'
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, // 'a'..'m'
    556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, // 'n'..'z'
    334, 260, 334, 584, // '{'..'~'
];

/// The width of `text` at `size` pixels, with a margin for other fonts.
pub(crate) fn width(text: &str, size: f64, bold: bool) -> f64 {
    let thousandths: u32 = text
        .chars()
        .map(|c| {
            let code = u32::from(c);
            if (32..=126).contains(&code) {
                u32::from(WIDTHS[(code - 32) as usize])
            } else {
                // Most other characters are about as wide as a digit.
                600
            }
        })
        .sum();
    let bold_factor = if bold { 1.08 } else { 1.0 };
    f64::from(thousandths) / 1000.0 * size * bold_factor * 1.08
}

#[cfg(test)]
mod tests {
    use super::width;

    #[test]
    fn wider_text_measures_wider() {
        assert!(width("WWW", 12.0, false) > width("iii", 12.0, false));
        assert!(width("Order", 12.0, true) > width("Order", 12.0, false));
        assert!((width("0", 10.0, false) - 5.56 * 1.08).abs() < 1e-9);
    }
}
