//! "Did you mean": the one way patchbay finds the name a user probably meant when they wrote one
//! it does not know: config keys, integration names, tags, permissions, severities and time
//! zones, and the condition language's placeholders, operators and certificate fields.
//!
//! Closeness is strsim's optimal string alignment distance: the Levenshtein distance (characters
//! inserted, removed or replaced) in which swapping two neighbouring characters, the commonest
//! typo, is one edit rather than two. Case is ignored. A candidate is a likely typo within one
//! edit per three characters of the longer of the two words, and at least one: a short word has
//! few letters to get wrong, so `foo` suggests nothing, while `tmout` finds `timeout` and
//! `stauts` finds `status`.
//!
//! This module sits on the ground floor: it imports nothing of the crate.

/// The candidate closest to `input`, if one is close enough to be a likely typo; on a tie, the
/// one listed first.
pub fn closest<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let input = input.to_lowercase();
    let typed = input.chars().count();
    candidates
        .iter()
        .filter_map(|candidate| {
            let known = candidate.to_lowercase();
            let limit = typed.max(known.chars().count()).max(3) / 3;
            let distance = strsim::osa_distance(&input, &known);
            (distance <= limit).then_some((distance, *candidate))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["interval", "timeout", "failure_threshold"];
        assert_eq!(closest("intervall", &keys), Some("interval"));
        assert_eq!(
            closest("failure_treshold", &keys),
            Some("failure_threshold")
        );
        assert_eq!(closest("colour", &keys), None);
    }

    #[test]
    fn short_words_allow_one_edit() {
        let placeholders = ["status", "latency", "body", "header", "len", "cert"];
        assert_eq!(closest("bdy", &placeholders), Some("body"));
        assert_eq!(closest("foo", &placeholders), None);
        assert_eq!(closest("apu", &["api"]), Some("api"));
        assert_eq!(closest("ab", &["id"]), None);
        // The allowance follows the longer word: two edits in `timeout`'s seven characters.
        assert_eq!(closest("tmout", &["interval", "timeout"]), Some("timeout"));
    }

    #[test]
    fn a_swap_of_neighbours_is_one_edit() {
        let placeholders = ["status", "latency", "body", "header", "len", "cert"];
        assert_eq!(closest("bdoy", &placeholders), Some("body"));
        assert_eq!(closest("stauts", &placeholders), Some("status"));
    }

    #[test]
    fn case_is_ignored_and_the_first_of_a_tie_wins() {
        assert_eq!(
            closest("Europe/berln", &["Europe/Berlin"]),
            Some("Europe/Berlin")
        );
        assert_eq!(
            closest("CRITICAL", &["critical", "warning"]),
            Some("critical")
        );
        assert_eq!(closest("ab", &["aa", "bb"]), Some("aa"));
        assert_eq!(closest("x", &[]), None);
    }
}
