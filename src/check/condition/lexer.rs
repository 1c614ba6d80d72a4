//! The character level of the parser: moving over a condition's characters (positions are
//! character indices, so an error's column counts characters, not bytes), the character classes
//! of each kind of token, and scanning string and number literals. A duration literal's value is
//! the duration grammar's own reading ([`crate::duration::from_parts`]); its messages are the
//! language's, because they point at a column and suggest the literal to write instead.

use super::ConditionError;
use super::ast::parse_number;
use super::parser::{LiteralValue, Parser};
use crate::duration;

/// The cursor's moves and the literal scanners; the parser's state and its grammar are in
/// `parser.rs`.
impl<'s> Parser<'s> {
    pub(super) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    pub(super) fn peek_at(&self, index: usize) -> Option<char> {
        self.chars.get(index).map(|&(_, c)| c)
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    /// Returns the byte offset of a character index, which may be one past the end.
    pub(super) fn byte(&self, index: usize) -> usize {
        self.chars
            .get(index)
            .map_or(self.source.len(), |&(byte, _)| byte)
    }

    /// Returns the byte offset of a character index as stored in a condition.
    pub(super) fn offset(&self, index: usize) -> u32 {
        // The whole source fits in u32, which `Condition::parse` checked first.
        u32::try_from(self.byte(index)).unwrap_or(u32::MAX)
    }

    pub(super) fn text(&self, start: usize, end: usize) -> &'s str {
        &self.source[self.byte(start)..self.byte(end)]
    }

    pub(super) fn skip_whitespace(&mut self) {
        self.take_while(char::is_whitespace);
    }

    /// Advances over characters that satisfy `accept`, returning where the run started.
    pub(super) fn take_while(&mut self, accept: impl Fn(char) -> bool) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        start
    }

    pub(super) fn error(&self, index: usize, message: impl Into<String>) -> ConditionError {
        ConditionError {
            position: index + 1,
            message: message.into(),
        }
    }

    /// Tells whether the text at the cursor is a literal rather than a placeholder.
    pub(super) fn starts_literal(&self) -> bool {
        match self.peek() {
            Some('"' | '-') => true,
            Some(c) if c.is_ascii_digit() => true,
            Some('.') => self
                .peek_at(self.pos + 1)
                .is_some_and(|c| c.is_ascii_digit()),
            Some(_) => {
                let end = (self.pos..self.chars.len())
                    .find(|&i| !is_word_char(self.chars[i].1))
                    .unwrap_or(self.chars.len());
                matches!(self.text(self.pos, end), "true" | "false" | "null")
            }
            None => false,
        }
    }

    /// Describes the token at the cursor for an error message, as `==` or `end of input`.
    pub(super) fn found_here(&self) -> String {
        if self.at_end() {
            return "the end".to_string();
        }
        let end = (self.pos..self.chars.len())
            .find(|&i| self.chars[i].1.is_whitespace())
            .unwrap_or(self.chars.len());
        self.text(self.pos, end).to_string()
    }

    /// Parses a double-quoted string with `\"`, `\\`, `\n`, `\t` and `\r` escapes.
    pub(super) fn string(&mut self) -> Result<LiteralValue, ConditionError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        let mut map = Vec::new();
        loop {
            let at = self.pos;
            match self.peek() {
                None => {
                    return Err(self.error(start, "unterminated string; it needs a closing \""));
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(LiteralValue::Str(text, map));
                }
                Some('\\') => {
                    let decoded = match self.peek_at(at + 1) {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        None => {
                            return Err(
                                self.error(start, "unterminated string; it needs a closing \"")
                            );
                        }
                        Some(other) => {
                            return Err(self.error(
                                at,
                                format!(
                                    "unknown escape \"\\{other}\" in a string; write \\\\ for a \
                                     backslash, as in \"\\\\{other}\""
                                ),
                            ));
                        }
                    };
                    text.push(decoded);
                    map.push(at);
                    self.pos += 2;
                }
                Some(c) => {
                    text.push(c);
                    map.push(at);
                    self.pos += 1;
                }
            }
        }
    }

    /// Parses a number such as `-1` or `0.5`, or a duration such as `800ms` or `1.5s`.
    pub(super) fn number(&mut self) -> Result<LiteralValue, ConditionError> {
        let start = self.pos;
        let negative = self.peek() == Some('-');
        if negative {
            self.pos += 1;
        }
        let digits_start = self.take_while(|c| c.is_ascii_digit() || c == '.');
        let unit_start = self.pos;
        self.take_while(|c| is_word_char(c) || c == '.');
        let token = self.text(start, self.pos);
        let digits = self.text(digits_start, unit_start);
        let unit = self.text(unit_start, self.pos);
        // Every number of the language, durations included, has digits on both sides of a point
        // (`0.5`, not `.5` or `5.`): a stricter shape than the duration grammar's own, on purpose,
        // so that a literal reads the same whether or not a unit follows it.
        let well_formed = match digits.split_once('.') {
            Some((whole, fraction)) => {
                !whole.is_empty() && !fraction.is_empty() && !fraction.contains('.')
            }
            None => !digits.is_empty(),
        };
        if !well_formed || !unit.chars().all(char::is_alphabetic) {
            return Err(self.error(start, format!("bad number \"{token}\"")));
        }
        if unit.is_empty() {
            let number = parse_number(self.text(start, unit_start));
            return number
                .map(LiteralValue::Num)
                .ok_or_else(|| self.error(start, format!("bad number \"{token}\"")));
        }
        // The value is the duration grammar's own reading, its limit included; the messages are
        // the language's, because they point at a column and suggest the literal to write.
        let value = duration::from_parts(digits, unit);
        if value == Err(duration::Problem::UnknownUnit) {
            let mut message =
                format!("unknown duration unit \"{unit}\"; expected ms, s, m, h or d");
            if let Some(suggestion) = duration::suggest_unit(unit) {
                message.push_str(&format!("; did you mean {digits}{suggestion}?"));
            }
            return Err(self.error(unit_start, message));
        }
        if negative {
            return Err(self.error(start, "a duration cannot be negative"));
        }
        match value {
            Ok(value) => Ok(LiteralValue::Duration(value)),
            Err(duration::Problem::TooLong) => {
                Err(self.error(start, format!("the duration \"{token}\" is too large")))
            }
            Err(_) => Err(self.error(start, format!("bad number \"{token}\""))),
        }
    }
}

/// Characters of a word: a placeholder's name, a unit, `true`, `false` or `null`.
pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Characters that may appear in a JSON key written after a dot: anything but whitespace and
/// the characters that delimit paths, strings and operators.
pub(super) fn is_key_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '.' | '[' | ']' | '(' | ')' | '"' | '=' | '!' | '<' | '>')
}

/// Characters that an unknown placeholder is made of, for quoting it whole in the error.
pub(super) fn is_placeholder_char(c: char) -> bool {
    is_key_char(c) || matches!(c, '.' | '[' | ']')
}

/// Characters of a header name, as in `header.content-type`.
pub(super) fn is_header_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Characters of a symbolic operator, such as `==` or `>=` (and `=~`, to suggest `matches`).
pub(super) fn is_operator_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '~')
}

#[cfg(test)]
mod tests {
    use super::super::Condition;
    use super::super::tests::check_errors;

    #[test]
    fn string_and_number_errors_point_into_the_literal() {
        check_errors(&[
            (
                "body.status == \"ok",
                16,
                "unterminated string; it needs a closing \"",
            ),
            (
                "body == \"a\\",
                9,
                "unterminated string; it needs a closing \"",
            ),
            (
                "body == \"a\\d\"",
                11,
                "unknown escape \"\\d\" in a string; write \\\\ for a backslash, as in \"\\\\d\"",
            ),
            ("status == 1.2.3", 11, "bad number \"1.2.3\""),
            ("status == 1.", 11, "bad number \"1.\""),
            ("status == .5", 11, "bad number \".5\""),
            ("status == -", 11, "bad number \"-\""),
            ("status == 1e5", 11, "bad number \"1e5\""),
            (
                "latency < 5sec",
                12,
                "unknown duration unit \"sec\"; expected ms, s, m, h or d; did you mean 5s?",
            ),
            (
                "latency < 1.5y",
                14,
                "unknown duration unit \"y\"; expected ms, s, m, h or d",
            ),
            ("latency < -5s", 11, "a duration cannot be negative"),
            (
                "latency < 99999999999999999999d",
                11,
                "the duration \"99999999999999999999d\" is too large",
            ),
            // The duration grammar's limit, a hundred years, in the language's words.
            (
                "cert.expires_in > 36501d",
                19,
                "the duration \"36501d\" is too large",
            ),
        ]);
    }

    #[test]
    fn duration_literals_are_read_by_the_duration_grammar() {
        for source in [
            "latency < 1.5m",
            "latency >= 1.204s",
            "cert.expires_in > 36500d",
            "latency < 0.5ms",
        ] {
            assert!(Condition::parse(source).is_ok(), "{source}");
        }
    }
}
