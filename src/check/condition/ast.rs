//! The parsed form of a condition, which parsing builds and evaluation reads: what the left side
//! looks at ([`Subject`], [`Target`]), the operator ([`Op`]) and the checked right side
//! ([`Rhs`]), with numbers kept exact ([`Num`]). One placeholder, one operator and one value: the
//! form is flat rather than a tree, and stays small because tens of thousands of conditions are
//! held at once.

use std::cmp::Ordering;
use std::time::Duration;

use http::HeaderName;
use regex::bytes::Regex;

/// What the left side of a condition looks at.
#[derive(Clone, Debug)]
pub(super) enum Subject {
    Status,
    Latency,
    Value(Target),
    /// `len(...)` of a target: bytes of a string, elements of an array or keys of an object.
    Len(Target),
    /// `cert.expires_in`: the time left until the server's certificate expires.
    CertExpiresIn,
}

/// A part of the response that holds text or JSON.
#[derive(Clone, Debug)]
pub(super) enum Target {
    /// The raw body.
    Body,
    /// The first value of a header; the name is lower-case, so lookups ignore case.
    Header(HeaderName),
    /// A value inside the body parsed as JSON; an empty path is never stored (that is `Body`).
    Json(Box<[Step]>),
}

/// One step of a JSON path, with the byte offset in the source where its text ends.
#[derive(Clone, Debug)]
pub(super) struct Step {
    pub(super) segment: Segment,
    pub(super) end: u32,
}

/// What one step of a JSON path looks up: a key written after a dot, or an index in brackets.
#[derive(Clone, Debug)]
pub(super) enum Segment {
    Key(Box<str>),
    Index(usize),
}

/// The operator between the two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Matches,
}

impl Op {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::Matches => "matches",
        }
    }

    pub(super) fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    /// Returns the operator that means the same with its two sides swapped, for `200 == status`.
    pub(super) fn flipped(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            other => other,
        }
    }

    /// Tells whether a comparison operator holds for an ordering; `None` means the two values
    /// are not comparable, which only `!=` accepts.
    pub(super) fn holds(self, ordering: Option<Ordering>) -> bool {
        match self {
            Op::Eq => ordering == Some(Ordering::Equal),
            Op::Ne => ordering != Some(Ordering::Equal),
            Op::Lt => ordering == Some(Ordering::Less),
            Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
            Op::Gt => ordering == Some(Ordering::Greater),
            Op::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
            Op::Contains | Op::Matches => false,
        }
    }
}

/// A number, kept as an integer whenever it is one so that large integers compare exactly.
#[derive(Clone, Copy, Debug)]
pub(super) enum Num {
    Int(i64),
    Uint(u64),
    Float(f64),
}

impl Num {
    pub(super) fn from_json(number: &serde_json::Number) -> Num {
        if let Some(i) = number.as_i64() {
            Num::Int(i)
        } else if let Some(u) = number.as_u64() {
            Num::Uint(u)
        } else {
            Num::Float(number.as_f64().unwrap_or(f64::NAN))
        }
    }

    pub(super) fn from_len(len: usize) -> Num {
        Num::Uint(u64::try_from(len).unwrap_or(u64::MAX))
    }

    pub(super) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Uint(u) => u as f64,
            Num::Float(f) => f,
        }
    }

    pub(super) fn compare(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (Num::Uint(a), Num::Uint(b)) => Some(a.cmp(&b)),
            (Num::Int(a), Num::Uint(b)) => Some(match u64::try_from(a) {
                Ok(a) => a.cmp(&b),
                Err(_) => Ordering::Less,
            }),
            (Num::Uint(a), Num::Int(b)) => Some(match u64::try_from(b) {
                Ok(b) => a.cmp(&b),
                Err(_) => Ordering::Greater,
            }),
            _ => self.as_f64().partial_cmp(&other.as_f64()),
        }
    }
}

/// The right side of a parsed condition, already checked against its left side.
#[derive(Clone, Debug)]
pub(super) enum Rhs {
    Num(Num),
    Duration(Duration),
    Str(Box<str>),
    Bool(bool),
    Null,
    /// The compiled pattern of `matches`.
    Regex(Regex),
}

/// Parses a number written as `-12` or `3.5`, keeping integers exact.
pub(super) fn parse_number(text: &str) -> Option<Num> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Num::Int(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(Num::Uint(u));
    }
    let valid = !text.is_empty()
        && text
            .trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.');
    if valid {
        text.parse::<f64>().ok().map(Num::Float)
    } else {
        None
    }
}
