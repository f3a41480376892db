//! "Did you mean" suggestions for misspelt names.

/// Names longer than this get no edit-distance suggestion.
const MAX_SUGGESTED_LEN: usize = 128;

/// The candidate closest to `name`, if one is close enough to be a likely
/// typo: same letters in another case, or a small edit distance relative to
/// the length.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    let max = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .filter_map(|c| {
            if c.eq_ignore_ascii_case(&lower) {
                return Some((0, c));
            }
            // Edit distance is quadratic in the lengths: names too far apart
            // in length cannot be close, and absurdly long names are typos
            // of nothing a person would want suggested.
            if c.len().abs_diff(name.len()) > max || name.len() > MAX_SUGGESTED_LEN {
                return None;
            }
            let d = strsim::damerau_levenshtein(name, c);
            (d <= max).then_some((d, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_typos_and_case_slips() {
        let names = ["OrderPlaced", "OrderFailed", "StockReserved"];
        assert_eq!(closest("OrderPlacd", names), Some("OrderPlaced"));
        assert_eq!(closest("orderplaced", names), Some("OrderPlaced"));
        assert_eq!(closest("Shipping", names), None);
        assert_eq!(closest("evnt", ["event", "enum"]), Some("event"));
    }
}
