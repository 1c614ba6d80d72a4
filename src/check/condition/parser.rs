//! The grammar of a condition: a placeholder (`status`, `latency`, `body`, `body.<path>`,
//! `header.<name>`, `cert.expires_in` or `len(...)` of one), an operator and a literal, or a
//! literal first for comparisons (`200 == status`, whose sides are swapped). Each error points
//! at the 1-based column of the token it is about.

use std::time::Duration;

use http::HeaderName;

use super::ast::{Num, Op, Segment, Step, Subject, Target};
use super::hints::{OPERATORS, PLACEHOLDERS, VALUES, suggest_operator, suggest_placeholder};
use super::lexer::{
    is_header_char, is_key_char, is_operator_char, is_placeholder_char, is_word_char,
};
use super::{Condition, ConditionError};
use crate::suggest;

/// Parses a condition such as `status == 200`: the grammar here, then `Parser::check` (in
/// `typing.rs`) for whether the literal suits the placeholder.
pub(super) fn parse(source: &str) -> Result<Condition, ConditionError> {
    if u32::try_from(source.len()).is_err() {
        return Err(ConditionError {
            position: 1,
            message: "the condition is too long".to_string(),
        });
    }
    let mut parser = Parser::new(source);
    parser.skip_whitespace();
    if parser.at_end() {
        return Err(parser.error(0, "empty condition"));
    }
    let (left, op, op_at, literal) = if parser.starts_literal() {
        // A literal on the left is accepted for comparisons, and the sides are swapped so
        // that evaluation only ever deals with a placeholder on the left.
        let literal = parser.literal(None)?;
        parser.skip_whitespace();
        let (op, op_at) = parser.operator(parser.text(literal.start, literal.end))?;
        if matches!(op, Op::Contains | Op::Matches) {
            return Err(parser.error(
                op_at,
                format!(
                    "{} needs the placeholder on its left, as in body {} \"ok\"",
                    op.as_str(),
                    op.as_str()
                ),
            ));
        }
        parser.skip_whitespace();
        let left = parser.operand(Some(op))?;
        (left, op.flipped(), op_at, literal)
    } else {
        let left = parser.operand(None)?;
        parser.skip_whitespace();
        let (op, op_at) = parser.operator(parser.text(left.start, left.end))?;
        parser.skip_whitespace();
        let literal = parser.literal(Some(op))?;
        (left, op, op_at, literal)
    };
    parser.skip_whitespace();
    if !parser.at_end() {
        return Err(parser.trailing_input());
    }
    let rhs = parser.check(&left, op, op_at, literal)?;
    Ok(Condition {
        source: source.into(),
        span: (
            parser.offset(left.target_start),
            parser.offset(left.target_end),
        ),
        subject: left.subject,
        op,
        rhs,
    })
}

/// A cursor over the characters of a condition; positions are character indices from 0. Its
/// moves and literal scanners are in `lexer.rs`, the grammar is below.
pub(super) struct Parser<'s> {
    pub(super) source: &'s str,
    /// Each character with its byte offset.
    pub(super) chars: Vec<(usize, char)>,
    pub(super) pos: usize,
}

impl<'s> Parser<'s> {
    pub(super) fn new(source: &'s str) -> Self {
        Parser {
            source,
            chars: source.char_indices().collect(),
            pos: 0,
        }
    }

    /// Parses a placeholder, optionally inside `len(...)`; `after` is the operator before it
    /// when a literal came first.
    pub(super) fn operand(&mut self, after: Option<Op>) -> Result<Operand, ConditionError> {
        let start = self.pos;
        if self.at_end() {
            let after = after.map_or("", Op::as_str);
            return Err(self.error(
                start,
                format!("missing placeholder after {after}; {PLACEHOLDERS}"),
            ));
        }
        if after.is_some() && self.starts_literal() {
            let (op, found) = (after.map_or("", Op::as_str), self.found_here());
            return Err(self.error(
                start,
                format!("expected a placeholder after {op}, found {found}; {PLACEHOLDERS}"),
            ));
        }
        let word_start = self.take_while(is_word_char);
        let word = self.text(word_start, self.pos);
        if word == "len" {
            return self.len_operand(start);
        }
        let subject = match word {
            "status" => Subject::Status,
            "latency" => Subject::Latency,
            "body" => Subject::Value(self.body_path()?),
            "header" => Subject::Value(self.header()?),
            "cert" => self.cert_field()?,
            "" if !self.peek().is_some_and(is_placeholder_char) => {
                let found = self.found_here();
                let message = match after {
                    Some(op) => format!(
                        "expected a placeholder after {}, found {found}; {PLACEHOLDERS}",
                        op.as_str()
                    ),
                    None => format!("missing placeholder before {found}; {PLACEHOLDERS}"),
                };
                return Err(self.error(start, message));
            }
            _ => return Err(self.unknown_placeholder(start)),
        };
        if matches!(
            subject,
            Subject::Status | Subject::Latency | Subject::CertExpiresIn
        ) && matches!(self.peek(), Some('.' | '['))
        {
            let what = if word == "status" {
                "a number"
            } else {
                "a duration"
            };
            return Err(self.error(
                self.pos,
                format!(
                    "{} is {what} and has no fields or elements",
                    self.text(start, self.pos)
                ),
            ));
        }
        // Something glued to a placeholder, as in `status2` or `body-x`, makes it unknown.
        if self.peek().is_some_and(is_key_char) {
            return Err(self.unknown_placeholder(start));
        }
        Ok(Operand {
            subject,
            start,
            end: self.pos,
            target_start: start,
            target_end: self.pos,
        })
    }

    /// Parses the rest of `len(...)` after the word `len`.
    pub(super) fn len_operand(&mut self, start: usize) -> Result<Operand, ConditionError> {
        self.skip_whitespace();
        if self.peek() != Some('(') {
            return Err(self.error(self.pos, "expected \"(\" after len, as in len(body.items)"));
        }
        self.pos += 1;
        self.skip_whitespace();
        let inner = self.operand(None)?;
        let target = match inner.subject {
            Subject::Value(target) => target,
            Subject::Status | Subject::Latency | Subject::Len(_) | Subject::CertExpiresIn => {
                return Err(self.error(
                    inner.start,
                    format!(
                        "len() applies to body, body.<path> or header.<name>, not {}",
                        self.text(inner.start, inner.end)
                    ),
                ));
            }
        };
        self.skip_whitespace();
        if self.peek() != Some(')') {
            return Err(self.error(self.pos, "expected \")\" to close len("));
        }
        self.pos += 1;
        Ok(Operand {
            subject: Subject::Len(target),
            start,
            end: self.pos,
            target_start: inner.target_start,
            target_end: inner.target_end,
        })
    }

    /// Parses the optional JSON path after the word `body`.
    pub(super) fn body_path(&mut self) -> Result<Target, ConditionError> {
        let mut steps = Vec::new();
        loop {
            let segment = match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    let key_start = self.take_while(is_key_char);
                    if key_start == self.pos {
                        return Err(self.error(
                            self.pos,
                            "expected a field name after \".\", as in body.status",
                        ));
                    }
                    Segment::Key(self.text(key_start, self.pos).into())
                }
                Some('[') => {
                    self.pos += 1;
                    let digits_start = self.take_while(|c| c.is_ascii_digit());
                    if digits_start == self.pos {
                        return Err(self.error(
                            self.pos,
                            "expected an array index (0, 1, 2, ...) after \"[\"",
                        ));
                    }
                    let index = self
                        .text(digits_start, self.pos)
                        .parse()
                        .map_err(|_| self.error(digits_start, "the array index is too large"))?;
                    if self.peek() != Some(']') {
                        return Err(self.error(self.pos, "expected \"]\" after the array index"));
                    }
                    self.pos += 1;
                    Segment::Index(index)
                }
                _ => break,
            };
            steps.push(Step {
                segment,
                end: self.offset(self.pos),
            });
        }
        Ok(if steps.is_empty() {
            Target::Body
        } else {
            Target::Json(steps.into_boxed_slice())
        })
    }

    /// Parses the `.<name>` after the word `header`.
    pub(super) fn header(&mut self) -> Result<Target, ConditionError> {
        if self.peek() != Some('.') {
            return Err(self.error(
                self.pos,
                "expected \".\" and a header name after header, as in header.content-type",
            ));
        }
        self.pos += 1;
        let name_start = self.take_while(is_header_char);
        if name_start == self.pos {
            return Err(self.error(
                self.pos,
                "expected a header name after \"header.\", as in header.content-type",
            ));
        }
        let name = HeaderName::from_bytes(self.text(name_start, self.pos).as_bytes())
            .map_err(|_| self.error(name_start, "invalid header name"))?;
        if matches!(self.peek(), Some('.' | '[')) {
            return Err(self.error(
                self.pos,
                "a header value is a string and has no fields or elements",
            ));
        }
        Ok(Target::Header(name))
    }

    /// Parses the `.<field>` after the word `cert`; `expires_in` is the only field so far.
    pub(super) fn cert_field(&mut self) -> Result<Subject, ConditionError> {
        if self.peek() != Some('.') {
            return Err(self.error(
                self.pos,
                "expected \".expires_in\" after cert, as in cert.expires_in > 14d",
            ));
        }
        self.pos += 1;
        let field_start = self.take_while(is_word_char);
        let field = self.text(field_start, self.pos);
        if field == "expires_in" {
            return Ok(Subject::CertExpiresIn);
        }
        if field.is_empty() {
            return Err(self.error(
                field_start,
                "expected a field name after \"cert.\", as in cert.expires_in",
            ));
        }
        let mut message =
            format!("unknown certificate field \"cert.{field}\"; expected cert.expires_in");
        let alias = matches!(
            field.to_lowercase().as_str(),
            "expiry"
                | "expires"
                | "expiration"
                | "not_after"
                | "notafter"
                | "days_left"
                | "valid_for"
                | "remaining"
        );
        if alias || suggest::closest(field, &["expires_in"]).is_some() {
            message.push_str("; did you mean \"cert.expires_in\"?");
        }
        Err(self.error(field_start, message))
    }

    pub(super) fn unknown_placeholder(&mut self, start: usize) -> ConditionError {
        self.pos = start;
        self.take_while(is_placeholder_char);
        let text = self.text(start, self.pos);
        let mut message = format!("unknown placeholder \"{text}\"; {PLACEHOLDERS}");
        if let Some(suggestion) = suggest_placeholder(text) {
            message.push_str(&format!("; did you mean \"{suggestion}\"?"));
        }
        self.error(start, message)
    }

    /// Parses an operator; `before` is the text of the left side, for messages.
    pub(super) fn operator(&mut self, before: &str) -> Result<(Op, usize), ConditionError> {
        let start = self.pos;
        let Some(first) = self.peek() else {
            return Err(self.error(
                start,
                format!("missing operator after {before}; {OPERATORS}"),
            ));
        };
        if is_operator_char(first) {
            self.take_while(is_operator_char);
        } else if first.is_alphabetic() {
            self.take_while(is_word_char);
        } else if self.starts_literal() {
            return Err(self.error(
                start,
                format!("missing operator before {}; {OPERATORS}", self.found_here()),
            ));
        } else {
            self.take_while(|c| !c.is_whitespace());
        }
        let text = self.text(start, self.pos);
        let op = match text {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "contains" => Op::Contains,
            "matches" => Op::Matches,
            _ => {
                let mut message = format!("unknown operator \"{text}\"; {OPERATORS}");
                if let Some(suggestion) = suggest_operator(text) {
                    message.push_str(&format!("; did you mean {suggestion}?"));
                }
                return Err(self.error(start, message));
            }
        };
        Ok((op, start))
    }

    /// Parses a literal; `after` is the operator before it, for messages.
    pub(super) fn literal(&mut self, after: Option<Op>) -> Result<Literal, ConditionError> {
        let start = self.pos;
        let after = after.map_or("", Op::as_str);
        let value = match self.peek() {
            None => {
                return Err(self.error(start, format!("missing value after {after}; {VALUES}")));
            }
            Some('"') => self.string()?,
            Some(c) if c.is_ascii_digit() || c == '-' || c == '.' => self.number()?,
            Some(c) if is_word_char(c) => {
                self.take_while(is_word_char);
                let word = self.text(start, self.pos);
                match word {
                    "true" => LiteralValue::Bool(true),
                    "false" => LiteralValue::Bool(false),
                    "null" => LiteralValue::Null,
                    _ => return Err(self.bad_value(start, word, after)),
                }
            }
            Some(_) => {
                let found = self.found_here();
                return Err(self.error(
                    start,
                    format!("expected a value after {after}, found {found}; {VALUES}"),
                ));
            }
        };
        Ok(Literal {
            value,
            start,
            end: self.pos,
        })
    }

    /// Explains a bare word where a value was expected.
    pub(super) fn bad_value(&mut self, start: usize, word: &str, after: &str) -> ConditionError {
        let lower = word.to_lowercase();
        let hint = if matches!(lower.as_str(), "true" | "false" | "null") {
            format!("did you mean {lower}?")
        } else if matches!(word, "status" | "latency" | "body" | "header" | "len") {
            "the right side must be a value; comparing two placeholders is not supported"
                .to_string()
        } else {
            self.pos = start;
            self.take_while(is_key_char);
            format!(
                "strings need double quotes, as in \"{}\"",
                self.text(start, self.pos)
            )
        };
        self.pos = start;
        let found = self.found_here();
        self.error(
            start,
            format!("expected a value after {after}, found {found}; {hint}"),
        )
    }

    pub(super) fn trailing_input(&self) -> ConditionError {
        let rest = self.text(self.pos, self.chars.len()).trim_end();
        let first = rest.split_whitespace().next().unwrap_or("");
        let mut message = format!("unexpected input after the condition: {rest}");
        if matches!(first, "&&" | "||" | "and" | "or" | "AND" | "OR") {
            message.push_str("; conditions cannot be combined, so list each one separately");
        }
        self.error(self.pos, message)
    }
}

/// The left side as parsed, with character indices into the source.
pub(super) struct Operand {
    pub(super) subject: Subject,
    /// Where the whole operand starts and ends, `len(...)` included.
    pub(super) start: usize,
    pub(super) end: usize,
    /// Where the looked-up placeholder starts and ends, without `len(...)`.
    pub(super) target_start: usize,
    pub(super) target_end: usize,
}

/// A literal as parsed, with character indices into the source.
pub(super) struct Literal {
    pub(super) value: LiteralValue,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// A literal's decoded value, before `typing.rs` checks it against the placeholder.
pub(super) enum LiteralValue {
    Num(Num),
    Duration(Duration),
    /// A decoded string, with the source character index of each of its characters so that
    /// regex errors can point into the string.
    Str(String, Vec<usize>),
    Bool(bool),
    Null,
}

impl LiteralValue {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            LiteralValue::Num(_) => "a number",
            LiteralValue::Duration(_) => "a duration",
            LiteralValue::Str(..) => "a string",
            LiteralValue::Bool(_) => "a boolean",
            LiteralValue::Null => "null",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check_errors;

    #[test]
    fn placeholder_errors_point_at_the_placeholder() {
        let expected = "expected status, latency, body, body.<path>, header.<name>, cert.expires_in or len(...)";
        check_errors(&[
            (
                "stauts == 200",
                1,
                &format!("unknown placeholder \"stauts\"; {expected}; did you mean \"status\"?"),
            ),
            (
                "bdy.status == \"ok\"",
                1,
                &format!(
                    "unknown placeholder \"bdy.status\"; {expected}; did you mean \"body.status\"?"
                ),
            ),
            (
                "[STATUS] == 200",
                1,
                &format!("unknown placeholder \"[STATUS]\"; {expected}; did you mean \"status\"?"),
            ),
            (
                ".status == \"ok\"",
                1,
                &format!(
                    "unknown placeholder \".status\"; {expected}; did you mean \"body.status\"?"
                ),
            ),
            (
                "headers.x == \"a\"",
                1,
                &format!(
                    "unknown placeholder \"headers.x\"; {expected}; did you mean \"header.x\"?"
                ),
            ),
            (
                "status2 == 1",
                1,
                &format!("unknown placeholder \"status2\"; {expected}; did you mean \"status\"?"),
            ),
            (
                "  foo == 1",
                3,
                &format!("unknown placeholder \"foo\"; {expected}"),
            ),
            (
                "== 200",
                1,
                &format!("missing placeholder before ==; {expected}"),
            ),
            (
                "200 ==",
                7,
                &format!("missing placeholder after ==; {expected}"),
            ),
            (
                "200 == 300",
                8,
                &format!("expected a placeholder after ==, found 300; {expected}"),
            ),
            (
                "status.code == 1",
                7,
                "status is a number and has no fields or elements",
            ),
            (
                "latency[0] < 1s",
                8,
                "latency is a duration and has no fields or elements",
            ),
            (
                "body. == 1",
                6,
                "expected a field name after \".\", as in body.status",
            ),
            (
                "body[x] == 1",
                6,
                "expected an array index (0, 1, 2, ...) after \"[\"",
            ),
            ("body[0 == 1", 7, "expected \"]\" after the array index"),
            (
                "body[99999999999999999999999] == 1",
                6,
                "the array index is too large",
            ),
            (
                "header == \"x\"",
                7,
                "expected \".\" and a header name after header, as in header.content-type",
            ),
            (
                "header. == \"x\"",
                8,
                "expected a header name after \"header.\", as in header.content-type",
            ),
            (
                "header.x.y == \"a\"",
                9,
                "a header value is a string and has no fields or elements",
            ),
            (
                "len body > 0",
                5,
                "expected \"(\" after len, as in len(body.items)",
            ),
            ("len(body > 0", 10, "expected \")\" to close len("),
            (
                "len(status) > 0",
                5,
                "len() applies to body, body.<path> or header.<name>, not status",
            ),
            (
                "len(len(body)) > 0",
                5,
                "len() applies to body, body.<path> or header.<name>, not len(body)",
            ),
        ]);
    }

    #[test]
    fn operator_errors_point_at_the_operator() {
        let expected = "expected one of ==, !=, <, <=, >, >=, contains, matches";
        check_errors(&[
            (
                "status",
                7,
                &format!("missing operator after status; {expected}"),
            ),
            (
                "len(body.items)",
                16,
                &format!("missing operator after len(body.items); {expected}"),
            ),
            (
                "status 200",
                8,
                &format!("missing operator before 200; {expected}"),
            ),
            (
                "status = 200",
                8,
                &format!("unknown operator \"=\"; {expected}; did you mean ==?"),
            ),
            (
                "status => 200",
                8,
                &format!("unknown operator \"=>\"; {expected}; did you mean >=?"),
            ),
            (
                "body.status equals \"ok\"",
                13,
                &format!("unknown operator \"equals\"; {expected}; did you mean ==?"),
            ),
            (
                "body contain \"x\"",
                6,
                &format!("unknown operator \"contain\"; {expected}; did you mean contains?"),
            ),
            (
                "body.v =~ \"x\"",
                8,
                &format!("unknown operator \"=~\"; {expected}; did you mean matches?"),
            ),
            (
                "status & 200",
                8,
                &format!("unknown operator \"&\"; {expected}"),
            ),
            // Columns count characters, not bytes: "ï" is one column although it is two bytes.
            (
                "body.naïve = 1",
                12,
                &format!("unknown operator \"=\"; {expected}; did you mean ==?"),
            ),
            (
                "\"x\" contains body",
                5,
                "contains needs the placeholder on its left, as in body contains \"ok\"",
            ),
        ]);
    }

    #[test]
    fn literal_errors_point_at_the_literal() {
        let values =
            "expected a number, a \"string\", a duration such as 800ms, true, false or null";
        check_errors(&[
            ("", 1, "empty condition"),
            ("   ", 1, "empty condition"),
            (
                "status ==",
                10,
                &format!("missing value after ==; {values}"),
            ),
            (
                "status == ok",
                11,
                "expected a value after ==, found ok; strings need double quotes, as in \"ok\"",
            ),
            (
                "body.ok == True",
                12,
                "expected a value after ==, found True; did you mean true?",
            ),
            (
                "body.a == body.b",
                11,
                "expected a value after ==, found body.b; the right side must be a value; comparing two placeholders is not supported",
            ),
            (
                "status == (1)",
                11,
                &format!("expected a value after ==, found (1); {values}"),
            ),
            (
                "status == 200 ok",
                15,
                "unexpected input after the condition: ok",
            ),
            (
                "status == 200 && latency < 1s",
                15,
                "unexpected input after the condition: && latency < 1s; conditions cannot be combined, so list each one separately",
            ),
        ]);
    }

    #[test]
    fn cert_errors_point_at_the_field_and_suggest_the_fix() {
        let expected = "expected status, latency, body, body.<path>, header.<name>, cert.expires_in or len(...)";
        check_errors(&[
            (
                "cert.expire_in > 14d",
                6,
                "unknown certificate field \"cert.expire_in\"; expected cert.expires_in; did you \
                 mean \"cert.expires_in\"?",
            ),
            (
                "cert.expiry > 14d",
                6,
                "unknown certificate field \"cert.expiry\"; expected cert.expires_in; did you mean \
                 \"cert.expires_in\"?",
            ),
            (
                "cert.issuer == \"x\"",
                6,
                "unknown certificate field \"cert.issuer\"; expected cert.expires_in",
            ),
            (
                "cert > 14d",
                5,
                "expected \".expires_in\" after cert, as in cert.expires_in > 14d",
            ),
            (
                "cert. > 14d",
                6,
                "expected a field name after \"cert.\", as in cert.expires_in",
            ),
            (
                "certificate.expires_in > 14d",
                1,
                &format!(
                    "unknown placeholder \"certificate.expires_in\"; {expected}; did you mean \
                     \"cert.expires_in\"?"
                ),
            ),
            (
                "cert_expiry > 14d",
                1,
                &format!(
                    "unknown placeholder \"cert_expiry\"; {expected}; did you mean \
                     \"cert.expires_in\"?"
                ),
            ),
            (
                "cert.expires_in.days > 1",
                16,
                "cert.expires_in is a duration and has no fields or elements",
            ),
            (
                "cert.expires_in > 14",
                19,
                "cert.expires_in compares only with durations; did you mean 14d?",
            ),
            (
                "cert.expires_in > \"soon\"",
                19,
                "cert.expires_in compares only with durations such as 14d, not a string",
            ),
            (
                "cert.expires_in contains \"x\"",
                17,
                "contains does not apply to cert.expires_in, which is a duration",
            ),
            (
                "len(cert.expires_in) > 1",
                5,
                "len() applies to body, body.<path> or header.<name>, not cert.expires_in",
            ),
            (
                "cert.expires_in > 14days",
                21,
                "unknown duration unit \"days\"; expected ms, s, m, h or d; did you mean 14d?",
            ),
        ]);
    }
}
