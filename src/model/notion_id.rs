//! [`NotionId`]: the id of a Notion object (a database, a data source, a page), however a person
//! pasted it: a bare id of 32 hex digits, the same with dashes (a UUID), or a link to the object
//! (`https://www.notion.so/team/Status-1a2b…?v=…`), whose last 32-hex run of the path is the id.

use std::fmt;

/// A Notion object id, kept in Notion's dashed form (`8-4-4-4-12`, lowercase).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct NotionId(String);

impl NotionId {
    /// Reads an id from what a person pasted; the error says what was expected.
    pub fn parse(text: &str) -> Result<NotionId, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the id is empty".into());
        }
        // A link: the id is the last 32-hex run of the path (the query holds the view id).
        let candidate = if text.contains("://") || text.contains("notion.") {
            let path = text.split(['?', '#']).next().unwrap_or_default();
            let path = path.split_once("://").map_or(path, |(_, rest)| rest);
            let path = path.split_once('/').map_or("", |(_, rest)| rest);
            last_hex_run(path).ok_or_else(|| {
                format!("the link {text:?} holds no Notion id (32 hexadecimal digits)")
            })?
        } else {
            let bare: String = text.chars().filter(|c| *c != '-').collect();
            if bare.len() == 32 && bare.chars().all(|c| c.is_ascii_hexdigit()) {
                bare
            } else {
                return Err(format!(
                    "{text:?} is not a Notion id: expected 32 hexadecimal digits (dashes allowed) or a link to the database"
                ));
            }
        };
        let hex = candidate.to_ascii_lowercase();
        Ok(NotionId(format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )))
    }

    /// The dashed form, as Notion answers it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id without dashes, as Notion's links write it.
    pub fn compact(&self) -> String {
        self.0.replace('-', "")
    }
}

/// The last run of exactly 32 hex digits in a link's path (dashes inside a UUID allowed).
fn last_hex_run(path: &str) -> Option<String> {
    for segment in path.rsplit('/') {
        let segment = segment.trim();
        // `Title-of-page-1a2b...` or a dashed UUID: try the dashed form first, then the tail.
        let bare: String = segment.chars().filter(|c| *c != '-').collect();
        if bare.len() == 32 && bare.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some(bare);
        }
        if segment.len() >= 32 {
            let tail = &segment[segment.len() - 32..];
            if tail.chars().all(|c| c.is_ascii_hexdigit())
                && segment[..segment.len() - 32]
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_ascii_hexdigit())
            {
                return Some(tail.to_string());
            }
        }
    }
    None
}

impl fmt::Display for NotionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NotionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NotionId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DASHED: &str = "1a2b3c4d-5e6f-4a8b-9c0d-112233445566";

    #[test]
    fn every_form_a_person_pastes_gives_the_same_id() {
        for text in [
            "1a2b3c4d5e6f4a8b9c0d112233445566",
            "1A2B3C4D5E6F4A8B9C0D112233445566",
            DASHED,
            " 1a2b3c4d-5e6f-4a8b-9c0d-112233445566 ",
            "https://www.notion.so/acme/1a2b3c4d5e6f4a8b9c0d112233445566?v=ffffffffffffffffffffffffffffffff",
            "https://www.notion.so/acme/Status-board-1a2b3c4d5e6f4a8b9c0d112233445566",
            "https://notion.so/Status-board-1a2b3c4d5e6f4a8b9c0d112233445566#section",
            "www.notion.so/1a2b3c4d-5e6f-4a8b-9c0d-112233445566",
        ] {
            assert_eq!(NotionId::parse(text).unwrap().as_str(), DASHED, "{text}");
        }
        assert_eq!(
            NotionId::parse(DASHED).unwrap().compact(),
            "1a2b3c4d5e6f4a8b9c0d112233445566"
        );
    }

    #[test]
    fn anything_else_is_refused_with_what_was_expected() {
        for text in [
            "",
            "abc",
            "1a2b3c4d5e6f4a8b9c0d11223344556",
            "zz2b3c4d5e6f4a8b9c0d112233445566",
        ] {
            let err = NotionId::parse(text).unwrap_err();
            assert!(
                err.contains("32 hexadecimal digits") || err.contains("empty"),
                "{text}: {err}"
            );
        }
        let err = NotionId::parse("https://www.notion.so/acme/Status-board").unwrap_err();
        assert!(err.contains("holds no Notion id"), "{err}");
    }
}
