//! Which literal suits which placeholder and operator, checked when a condition is parsed so a
//! mistake such as `latency < 800` is reported at load rather than at every check; and the right
//! side built from the literal (a `matches` pattern is compiled here, its errors pointing into the
//! pattern).

use regex::bytes::Regex;

use super::ConditionError;
use super::ast::{Op, Rhs, Subject, Target};
use super::parser::{Literal, LiteralValue, Operand, Parser};

impl Parser<'_> {
    /// Checks that the literal suits the placeholder and operator, and builds the right side.
    pub(super) fn check(
        &self,
        left: &Operand,
        op: Op,
        op_at: usize,
        literal: Literal,
    ) -> Result<Rhs, ConditionError> {
        let left_text = self.text(left.start, left.end);
        let kind = literal.value.kind();
        let static_type = match &left.subject {
            Subject::Status | Subject::Len(_) => StaticType::Number,
            Subject::Latency | Subject::CertExpiresIn => StaticType::Duration,
            Subject::Value(Target::Body) => StaticType::Text,
            Subject::Value(Target::Header(_)) => StaticType::Header,
            Subject::Value(Target::Json(_)) => StaticType::Json,
        };
        let at_literal = |message: String| Err(self.error(literal.start, message));
        if matches!(op, Op::Contains | Op::Matches) {
            match static_type {
                StaticType::Number | StaticType::Duration => {
                    let what = if static_type == StaticType::Number {
                        "a number"
                    } else {
                        "a duration"
                    };
                    return Err(self.error(
                        op_at,
                        format!(
                            "{} does not apply to {left_text}, which is {what}",
                            op.as_str()
                        ),
                    ));
                }
                StaticType::Json
                    if op == Op::Contains
                        && !matches!(literal.value, LiteralValue::Duration(_)) => {}
                _ => {
                    if !matches!(literal.value, LiteralValue::Str(..)) {
                        let needs = if op == Op::Matches {
                            "a regular expression in double quotes, as in \"^ok\","
                        } else {
                            "a string"
                        };
                        return at_literal(format!(
                            "{} needs {needs} on the right, not {kind}",
                            op.as_str()
                        ));
                    }
                }
            }
        } else {
            match (static_type, &literal.value) {
                (StaticType::Number, LiteralValue::Num(_))
                | (StaticType::Duration, LiteralValue::Duration(_))
                | (StaticType::Text, LiteralValue::Str(..))
                | (StaticType::Header, LiteralValue::Str(..) | LiteralValue::Num(_))
                | (StaticType::Json, _) => {}
                (StaticType::Number, _) => {
                    return at_literal(format!(
                        "{left_text} compares only with numbers, not {kind}"
                    ));
                }
                (StaticType::Duration, LiteralValue::Num(_)) => {
                    let number = self.text(literal.start, literal.end);
                    return at_literal(format!(
                        "{left_text} compares only with durations; did you mean {number}{}?",
                        duration_habit(&left.subject).0
                    ));
                }
                (StaticType::Duration, _) => {
                    return at_literal(format!(
                        "{left_text} compares only with durations such as {}, not {kind}",
                        duration_habit(&left.subject).1
                    ));
                }
                (StaticType::Text, _) => {
                    return at_literal(format!(
                        "{left_text} compares only with strings, not {kind}; \
                         use body.<path> to compare a JSON value"
                    ));
                }
                (StaticType::Header, _) => {
                    return at_literal(format!(
                        "{left_text} compares only with strings and numbers, not {kind}"
                    ));
                }
            }
            if matches!(literal.value, LiteralValue::Duration(_))
                && static_type != StaticType::Duration
            {
                return at_literal(format!(
                    "a duration compares only with latency and cert.expires_in, not with {left_text}"
                ));
            }
            if op.is_ordering()
                && !matches!(
                    literal.value,
                    LiteralValue::Num(_) | LiteralValue::Duration(_)
                )
            {
                return at_literal(format!(
                    "{} needs a number or a duration on the right, not {kind}",
                    op.as_str()
                ));
            }
        }
        Ok(match literal.value {
            LiteralValue::Str(text, map) if op == Op::Matches => {
                Rhs::Regex(Regex::new(&text).map_err(|err| {
                    let (message, offset) = regex_problem(&err);
                    // Point at the offending character of the pattern when the regex error
                    // says which one it is, and at the opening quote otherwise.
                    let index = offset
                        .and_then(|offset| map.get(offset).copied())
                        .unwrap_or(literal.start);
                    self.error(index, format!("invalid regex: {message}"))
                })?)
            }
            LiteralValue::Str(text, _) => Rhs::Str(text.into_boxed_str()),
            LiteralValue::Num(n) => Rhs::Num(n),
            LiteralValue::Duration(d) => Rhs::Duration(d),
            LiteralValue::Bool(b) => Rhs::Bool(b),
            LiteralValue::Null => Rhs::Null,
        })
    }
}

/// What the left side holds, as far as can be known before a response arrives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StaticType {
    Number,
    Duration,
    /// The raw body, which compares with strings only.
    Text,
    /// A header value, which compares with strings, and with numbers when it holds one.
    Header,
    /// A JSON value, whose type is only known at evaluation.
    Json,
}

/// How durations are usually written next to a duration placeholder, as a unit and an example:
/// latency in milliseconds, a certificate's lifetime in days.
fn duration_habit(subject: &Subject) -> (&'static str, &'static str) {
    match subject {
        Subject::CertExpiresIn => ("d", "14d"),
        _ => ("ms", "800ms"),
    }
}

/// Turns a regex error into a one-line summary and, when it names one, the character offset of
/// the problem in the pattern.
fn regex_problem(err: &regex::Error) -> (String, Option<usize>) {
    match err {
        regex::Error::Syntax(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let summary = lines
                .iter()
                .rev()
                .find_map(|line| line.strip_prefix("error: "))
                .unwrap_or(text)
                .trim()
                .to_string();
            // A one-line pattern is shown indented by four spaces, with carets under the
            // problem on the next line.
            let offset = match lines.as_slice() {
                ["regex parse error:", _, carets, _]
                    if carets.trim_start().starts_with('^')
                        && carets.trim().chars().all(|c| c == '^' || c == ' ') =>
                {
                    (carets.len() - carets.trim_start().len()).checked_sub(4)
                }
                _ => None,
            };
            (summary, offset)
        }
        regex::Error::CompiledTooBig(_) => ("the regex is too large".to_string(), None),
        other => (other.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check_errors;

    #[test]
    fn type_mismatches_known_before_evaluation_are_rejected() {
        check_errors(&[
            (
                "status == \"200\"",
                11,
                "status compares only with numbers, not a string",
            ),
            (
                "status == 200ms",
                11,
                "status compares only with numbers, not a duration",
            ),
            (
                "status contains \"2\"",
                8,
                "contains does not apply to status, which is a number",
            ),
            (
                "latency < 800",
                11,
                "latency compares only with durations; did you mean 800ms?",
            ),
            (
                "latency < \"fast\"",
                11,
                "latency compares only with durations such as 800ms, not a string",
            ),
            (
                "latency matches \"1\"",
                9,
                "matches does not apply to latency, which is a duration",
            ),
            (
                "len(body) == \"3\"",
                14,
                "len(body) compares only with numbers, not a string",
            ),
            (
                "len(body.items) contains 1",
                17,
                "contains does not apply to len(body.items), which is a number",
            ),
            (
                "body.status < \"ok\"",
                15,
                "< needs a number or a duration on the right, not a string",
            ),
            (
                "body.ok >= true",
                12,
                ">= needs a number or a duration on the right, not a boolean",
            ),
            (
                "body.error > null",
                14,
                "> needs a number or a duration on the right, not null",
            ),
            (
                "header.x <= \"a\"",
                13,
                "<= needs a number or a duration on the right, not a string",
            ),
            (
                "body.count == 5s",
                15,
                "a duration compares only with latency and cert.expires_in, not with body.count",
            ),
            (
                "body.ids contains 5s",
                19,
                "contains needs a string on the right, not a duration",
            ),
            (
                "header.x contains 5",
                19,
                "contains needs a string on the right, not a number",
            ),
            (
                "body contains null",
                15,
                "contains needs a string on the right, not null",
            ),
            (
                "body == 5",
                9,
                "body compares only with strings, not a number; use body.<path> to compare a JSON value",
            ),
            (
                "header.x == true",
                13,
                "header.x compares only with strings and numbers, not a boolean",
            ),
            (
                "800 > latency",
                1,
                "latency compares only with durations; did you mean 800ms?",
            ),
        ]);
    }

    #[test]
    fn regex_errors_point_into_the_pattern() {
        check_errors(&[
            (
                "body matches \"^v[0-9\"",
                17,
                "invalid regex: unclosed character class",
            ),
            // The column skips the escape: the pattern's "(" is after the two-character \\.
            (
                "body matches \"\\\\.(\"",
                18,
                "invalid regex: unclosed group",
            ),
            (
                "body matches 5",
                14,
                "matches needs a regular expression in double quotes, as in \"^ok\", on the right, not a number",
            ),
            (
                "body.v matches true",
                16,
                "matches needs a regular expression in double quotes, as in \"^ok\", on the right, not a boolean",
            ),
        ]);
    }
}
