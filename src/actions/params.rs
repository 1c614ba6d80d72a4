//! An action's parameters as people give them: `args` text (`service=api reason="deploy
//! stuck"`), a modal's fields, or a JSON object from the REST API, checked against the
//! action's `params` into the JSON object the workflow receives. Every refusal names the
//! parameter and what would be accepted.

use serde_json::{Map, Value};

use crate::config::{Action, ParamKind};
use crate::model::echo;

/// What was given for the parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamInput {
    /// `name=value` pairs in one line, values quoted with `"` when they hold spaces.
    Args(String),
    /// Text per parameter (a modal's fields); an empty field is a parameter not given.
    Fields(Vec<(String, String)>),
    /// A JSON object (the REST API's `params`).
    Json(Map<String, Value>),
}

/// Why the parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ParamError {
    /// `args` does not parse.
    #[error("args: {message}")]
    Syntax {
        /// What is wrong, where.
        message: String,
    },
    /// No parameter has this name.
    #[error("{action} has no parameter {}{}", echo(.name), .suggestion.as_ref().map_or_else(String::new, |s| format!(" (did you mean {s}?)")))]
    Unknown {
        /// The action.
        action: String,
        /// The name given.
        name: String,
        /// The closest parameter's name.
        suggestion: Option<String>,
    },
    /// A parameter given twice.
    #[error("{name} is given twice")]
    Repeated {
        /// The parameter.
        name: String,
    },
    /// A required parameter is missing.
    #[error("{name} is required")]
    Missing {
        /// The parameter.
        name: String,
    },
    /// A choice parameter's value is not one of its choices.
    #[error("{name} must be one of {}; got {}", .choices.join(", "), echo(.value))]
    NotAChoice {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
        /// The choices.
        choices: Vec<String>,
    },
    /// An integer parameter's value is not a whole number.
    #[error("{name} must be a whole number; got {}", echo(.value))]
    NotAnInteger {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
    },
    /// An integer parameter's value is outside its bounds.
    #[error("{name} must be {}; got {value}", range(*.min, *.max))]
    OutOfRange {
        /// The parameter.
        name: String,
        /// The value given.
        value: i64,
        /// The least allowed.
        min: Option<i64>,
        /// The greatest allowed.
        max: Option<i64>,
    },
    /// A boolean parameter's value is not true or false.
    #[error("{name} must be true or false; got {}", echo(.value))]
    NotABoolean {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
    },
    /// A string parameter's value is too long.
    #[error("{name} is {length} characters long; at most {max_len} are allowed")]
    TooLong {
        /// The parameter.
        name: String,
        /// Its length in characters.
        length: usize,
        /// The limit.
        max_len: usize,
    },
}

impl ParamError {
    /// The parameter the refusal is about, if one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ParamError::Syntax { .. } => None,
            ParamError::Unknown { name, .. }
            | ParamError::Repeated { name }
            | ParamError::Missing { name }
            | ParamError::NotAChoice { name, .. }
            | ParamError::NotAnInteger { name, .. }
            | ParamError::OutOfRange { name, .. }
            | ParamError::NotABoolean { name, .. }
            | ParamError::TooLong { name, .. } => Some(name),
        }
    }
}

fn range(min: Option<i64>, max: Option<i64>) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!("from {min} to {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => "a whole number".into(),
    }
}

/// Splits `args` into `name=value` pairs. A value is quoted with `"` when it holds spaces;
/// `\"` and `\\` escape inside quotes.
pub fn parse_args(text: &str) -> Result<Vec<(String, String)>, ParamError> {
    let syntax = |message: String| ParamError::Syntax { message };
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(syntax(format!(
                "{} has no value: write name=value, quoting values with spaces (reason=\"deploy stuck\")",
                echo(&name)
            )));
        }
        if name.is_empty() {
            return Err(syntax("a value has no name before its =".into()));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some(escaped) => value.push(escaped),
                        None => break,
                    },
                    other => value.push(other),
                }
            }
            if !closed {
                return Err(syntax(format!("the quote after {name}= is never closed")));
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(syntax(format!(
                    "put a space after the closing quote of {name}"
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.push((name, value));
    }
}

/// Checks what was given against `action`'s parameters; the object the workflow receives.
pub fn validate(action: &Action, input: ParamInput) -> Result<Map<String, Value>, ParamError> {
    let given: Vec<(String, Value)> = match input {
        ParamInput::Args(text) => parse_args(&text)?
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect(),
        ParamInput::Fields(fields) => fields
            .into_iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| (name, Value::String(value)))
            .collect(),
        ParamInput::Json(map) => map.into_iter().collect(),
    };
    let mut out = Map::new();
    for (name, value) in given {
        let Some(param) = action.param(&name) else {
            let names: Vec<&str> = action.params.iter().map(|p| p.name.as_str()).collect();
            return Err(ParamError::Unknown {
                action: action.name.clone(),
                suggestion: crate::suggest::closest(&name, &names).map(str::to_string),
                name,
            });
        };
        if out.contains_key(&name) {
            return Err(ParamError::Repeated { name });
        }
        let value = typed(&name, &param.kind, value)?;
        out.insert(name, value);
    }
    if let Some(missing) = action
        .params
        .iter()
        .find(|p| p.required && !out.contains_key(&p.name))
    {
        return Err(ParamError::Missing {
            name: missing.name.clone(),
        });
    }
    Ok(out)
}

/// The text of a value as given, for messages.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn typed(name: &str, kind: &ParamKind, value: Value) -> Result<Value, ParamError> {
    let name = name.to_string();
    match kind {
        ParamKind::String { max_len } => {
            let text = shown(&value);
            let length = text.chars().count();
            if length > *max_len {
                return Err(ParamError::TooLong {
                    name,
                    length,
                    max_len: *max_len,
                });
            }
            Ok(Value::String(text))
        }
        ParamKind::Integer { min, max } => {
            let number = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(text) => text.trim().parse::<i64>().ok(),
                _ => None,
            };
            let Some(number) = number else {
                return Err(ParamError::NotAnInteger {
                    name,
                    value: shown(&value),
                });
            };
            if min.is_some_and(|min| number < min) || max.is_some_and(|max| number > max) {
                return Err(ParamError::OutOfRange {
                    name,
                    value: number,
                    min: *min,
                    max: *max,
                });
            }
            Ok(Value::from(number))
        }
        ParamKind::Boolean => {
            let flag = match &value {
                Value::Bool(flag) => Some(*flag),
                Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" | "1" => Some(true),
                    "false" | "no" | "off" | "0" => Some(false),
                    _ => None,
                },
                _ => None,
            };
            flag.map(Value::Bool).ok_or(ParamError::NotABoolean {
                name,
                value: shown(&value),
            })
        }
        ParamKind::Choice { choices } => {
            let text = shown(&value);
            if choices.contains(&text) {
                Ok(Value::String(text))
            } else {
                Err(ParamError::NotAChoice {
                    name,
                    value: text,
                    choices: choices.clone(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_split_into_pairs_with_quoted_values() {
        assert_eq!(
            parse_args(r#"service=api  reason="deploy \"stuck\"" count=3"#).unwrap(),
            vec![
                ("service".into(), "api".into()),
                ("reason".into(), "deploy \"stuck\"".into()),
                ("count".into(), "3".into()),
            ]
        );
        assert_eq!(parse_args("  ").unwrap(), vec![]);
        assert!(matches!(
            parse_args("service"),
            Err(ParamError::Syntax { .. })
        ));
        assert!(matches!(
            parse_args("reason=\"open"),
            Err(ParamError::Syntax { .. })
        ));
        assert!(matches!(parse_args("=x"), Err(ParamError::Syntax { .. })));
        assert!(matches!(
            parse_args("a=\"b\"c"),
            Err(ParamError::Syntax { .. })
        ));
    }
}
