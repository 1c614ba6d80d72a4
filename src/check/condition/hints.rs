//! What a parse error offers beyond naming the problem: the lists of what may come at that place,
//! and the spelling a mistyped placeholder or operator probably meant (Gatus's `[STATUS]`,
//! jq's `.status`, common synonyms such as `eq` or `=~`, then the closest name by
//! [`crate::suggest`]).

use crate::suggest;

/// The placeholders that may start a condition, listed in error messages.
pub(super) const PLACEHOLDERS: &str =
    "expected status, latency, body, body.<path>, header.<name>, cert.expires_in or len(...)";

/// The operators that may follow a placeholder, listed in error messages.
pub(super) const OPERATORS: &str = "expected one of ==, !=, <, <=, >, >=, contains, matches";

/// The kinds of value that may follow an operator, listed in error messages.
pub(super) const VALUES: &str =
    "expected a number, a \"string\", a duration such as 800ms, true, false or null";

/// Suggests the placeholder that a mistyped one probably meant, keeping any path after it.
pub(super) fn suggest_placeholder(text: &str) -> Option<String> {
    // A jq-style path such as `.status` means the same path under `body`.
    if text.starts_with('.') && text.len() > 1 {
        return Some(format!("body{text}"));
    }
    // Gatus writes placeholders in brackets, as in `[STATUS]` or `[BODY].status`.
    if let Some(inner) = text.strip_prefix('[') {
        let (name, rest) = inner.split_once(']')?;
        let name = match name.to_ascii_uppercase().as_str() {
            "STATUS" => "status",
            "RESPONSE_TIME" => "latency",
            "BODY" => "body",
            _ => return None,
        };
        return Some(format!("{name}{rest}"));
    }
    let head_len = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let (head, rest) = text.split_at(head_len);
    let name = match head.to_lowercase().as_str() {
        "code" | "status_code" | "statuscode" => "status",
        "duration" | "response_time" | "responsetime" | "time" | "elapsed" => "latency",
        "length" | "lenght" | "size" => "len",
        "headers" => "header",
        "certificate" | "certs" | "crt" | "tls" | "ssl" => "cert",
        "expires_in" | "expiry" | "cert_expiry" | "cert_expires_in" | "expires" => {
            "cert.expires_in"
        }
        lower => suggest::closest(
            lower,
            &["status", "latency", "body", "header", "len", "cert"],
        )?,
    };
    let suggestion = format!("{name}{rest}");
    (suggestion != text).then_some(suggestion)
}

/// Suggests the operator that an unknown one probably meant.
pub(super) fn suggest_operator(text: &str) -> Option<&'static str> {
    Some(match text.to_lowercase().as_str() {
        "=" | "===" | "eq" | "is" | "equals" => "==",
        "<>" | "!==" | "!" | "ne" | "neq" | "not" => "!=",
        "=<" | "le" | "lte" => "<=",
        "=>" | "ge" | "gte" => ">=",
        "lt" => "<",
        "gt" => ">",
        "~" | "=~" | "~=" | "like" | "regex" | "match" => "matches",
        "has" | "in" | "includes" | "include" | "contain" => "contains",
        lower => suggest::closest(lower, &["contains", "matches"])?,
    })
}
