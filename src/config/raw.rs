//! The first stage of loading: typed getters over the spanned TOML tree (`toml::de::DeTable`).
//! Each getter reports a wrong type with the key and the line and carries on, so one pass finds
//! every problem. The second stage (`config::load`) turns these values into validated settings.

use std::borrow::Cow;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::Diagnostics;
use crate::duration;
use crate::model::Snowflake;
use crate::suggest;

/// A table of the file, with its dotted path for error messages.
pub(crate) struct Table<'a, 'i> {
    pub(crate) path: String,
    pub(crate) inner: &'a DeTable<'i>,
}

type Value<'a, 'i> = &'a Spanned<DeValue<'i>>;

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn integer_of(value: &DeValue<'_>) -> Option<i64> {
    match value {
        DeValue::Integer(int) => {
            i64::from_str_radix(&int.as_str().replace('_', ""), int.radix()).ok()
        }
        _ => None,
    }
}

impl<'a, 'i> Table<'a, 'i> {
    pub(crate) fn root(inner: &'a DeTable<'i>) -> Self {
        Table {
            path: String::new(),
            inner,
        }
    }

    /// The dotted path of `key` in this table.
    pub(crate) fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Reports every key that is not in `known`, with a "did you mean" when one is close.
    pub(crate) fn check_keys(&self, d: &mut Diagnostics, known: &[&str]) {
        for (key, _) in self.inner {
            let name: &str = key.get_ref();
            if known.contains(&name) {
                continue;
            }
            let fix = match suggest::closest(name, known) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("remove it; known keys here: {}", known.join(", ")),
            };
            d.error(
                Some(key.span().start),
                self.key(name),
                "unknown key",
                Some(fix),
            );
        }
    }

    /// Reports a required `key` as missing, at `at` (the table's start). A key that is present
    /// with a wrong type was already reported by its getter, so it is not reported again.
    pub(crate) fn require(&self, d: &mut Diagnostics, key: &str, at: usize, fix: &str) {
        if self.get(key).is_none() {
            d.error(Some(at), self.key(key), "is missing", Some(fix.to_string()));
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Value<'a, 'i>> {
        self.inner.get(key)
    }

    fn wrong_type(&self, d: &mut Diagnostics, key: &str, value: Value<'_, '_>, expected: &str) {
        d.error(
            Some(value.span().start),
            self.key(key),
            format!("expected {expected}, found {}", type_name(value.get_ref())),
            None,
        );
    }

    pub(crate) fn string(&self, d: &mut Diagnostics, key: &str) -> Option<(String, usize)> {
        let value = self.get(key)?;
        if let DeValue::String(text) = value.get_ref() {
            Some((text.to_string(), value.span().start))
        } else {
            self.wrong_type(d, key, value, "a string");
            None
        }
    }

    pub(crate) fn integer(&self, d: &mut Diagnostics, key: &str) -> Option<(i64, usize)> {
        let value = self.get(key)?;
        if let Some(int) = integer_of(value.get_ref()) {
            Some((int, value.span().start))
        } else {
            self.wrong_type(d, key, value, "an integer");
            None
        }
    }

    /// A positive integer that fits `u32`, e.g. thresholds.
    pub(crate) fn positive(&self, d: &mut Diagnostics, key: &str) -> Option<u32> {
        self.at_least(d, key, 1)
    }

    /// A whole number from `min` up that fits `u32`, e.g. the flapping threshold.
    pub(crate) fn at_least(&self, d: &mut Diagnostics, key: &str, min: u32) -> Option<u32> {
        let (int, at) = self.integer(d, key)?;
        match u32::try_from(int) {
            Ok(value) if value >= min => Some(value),
            _ => {
                d.error(
                    Some(at),
                    self.key(key),
                    format!("{int} is out of range"),
                    Some(format!("use a whole number of at least {min}")),
                );
                None
            }
        }
    }

    /// A whole number from 0 to `max`, e.g. the redirect limit.
    pub(crate) fn at_most(&self, d: &mut Diagnostics, key: &str, max: usize) -> Option<usize> {
        let (int, at) = self.integer(d, key)?;
        match usize::try_from(int) {
            Ok(value) if value <= max => Some(value),
            _ => {
                d.error(
                    Some(at),
                    self.key(key),
                    format!("{int} is out of range"),
                    Some(format!("use a number from 0 to {max}")),
                );
                None
            }
        }
    }

    pub(crate) fn float(&self, d: &mut Diagnostics, key: &str) -> Option<(f64, usize)> {
        let value = self.get(key)?;
        let number = match value.get_ref() {
            DeValue::Float(float) => float.as_str().replace('_', "").parse().ok(),
            other => integer_of(other).map(|int| int as f64),
        };
        if let Some(number) = number {
            Some((number, value.span().start))
        } else {
            self.wrong_type(d, key, value, "a number");
            None
        }
    }

    pub(crate) fn boolean(&self, d: &mut Diagnostics, key: &str) -> Option<bool> {
        let value = self.get(key)?;
        if let DeValue::Boolean(flag) = value.get_ref() {
            Some(*flag)
        } else {
            self.wrong_type(d, key, value, "true or false");
            None
        }
    }

    pub(crate) fn duration(&self, d: &mut Diagnostics, key: &str) -> Option<(Duration, usize)> {
        let (text, at) = self.string(d, key)?;
        match self.parse_duration(d, key, &text, at)? {
            duration if !duration.is_zero() => Some((duration, at)),
            _ => {
                d.error(Some(at), self.key(key), "must be longer than zero", None);
                None
            }
        }
    }

    /// A duration where zero means "off" (e.g. alert reminders): `"0"`, `0` and `"0s"` all read
    /// as zero, which a plain [`Table::duration`] refuses.
    pub(crate) fn duration_or_zero(
        &self,
        d: &mut Diagnostics,
        key: &str,
    ) -> Option<(Duration, usize)> {
        let value = self.get(key)?;
        if integer_of(value.get_ref()) == Some(0) {
            return Some((Duration::ZERO, value.span().start));
        }
        let (text, at) = self.string(d, key)?;
        if text.trim() == "0" {
            return Some((Duration::ZERO, at));
        }
        self.parse_duration(d, key, &text, at)
            .map(|duration| (duration, at))
    }

    fn parse_duration(
        &self,
        d: &mut Diagnostics,
        key: &str,
        text: &str,
        at: usize,
    ) -> Option<Duration> {
        match duration::parse(text) {
            Ok(duration) => Some(duration),
            Err(message) => {
                d.error(
                    Some(at),
                    self.key(key),
                    message,
                    Some("write it like \"30s\", \"5m\", \"4h\" or \"7d\"".into()),
                );
                None
            }
        }
    }

    pub(crate) fn strings(&self, d: &mut Diagnostics, key: &str) -> Option<Vec<(String, usize)>> {
        let value = self.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(d, key, value, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(text) => out.push((text.to_string(), item.span().start)),
                other => d.error(
                    Some(item.span().start),
                    format!("{}[{index}]", self.key(key)),
                    format!("expected a string, found {}", type_name(other)),
                    None,
                ),
            }
        }
        Some(out)
    }

    fn snowflake_of(
        &self,
        d: &mut Diagnostics,
        key: String,
        value: Value<'_, '_>,
    ) -> Option<Snowflake> {
        let (parsed, shown) = match value.get_ref() {
            DeValue::String(text) => (text.trim().parse::<u64>().ok(), format!("{text:?}")),
            other => (
                integer_of(other).and_then(|int| u64::try_from(int).ok()),
                type_name(other).to_string(),
            ),
        };
        match parsed {
            Some(id) if id > 0 => Some(Snowflake(id)),
            _ => {
                d.error(
                    Some(value.span().start),
                    key,
                    format!("{shown} is not a Discord ID"),
                    Some(
                        "copy the ID with Discord's developer mode (a number like \"123456789012345678\")"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    pub(crate) fn snowflake(&self, d: &mut Diagnostics, key: &str) -> Option<Snowflake> {
        let value = self.get(key)?;
        self.snowflake_of(d, self.key(key), value)
    }

    pub(crate) fn snowflakes(&self, d: &mut Diagnostics, key: &str) -> Option<Vec<Snowflake>> {
        let value = self.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(d, key, value, "an array of Discord IDs");
            return None;
        };
        Some(
            items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    self.snowflake_of(d, format!("{}[{index}]", self.key(key)), item)
                })
                .collect(),
        )
    }

    pub(crate) fn table(&self, d: &mut Diagnostics, key: &str) -> Option<Table<'a, 'i>> {
        let value = self.get(key)?;
        if let DeValue::Table(inner) = value.get_ref() {
            Some(Table {
                path: self.key(key),
                inner,
            })
        } else {
            self.wrong_type(d, key, value, "a table");
            None
        }
    }

    /// The tables of an array of tables (`[[integration]]`), with their start offsets.
    pub(crate) fn tables(&self, d: &mut Diagnostics, key: &str) -> Vec<(Table<'a, 'i>, usize)> {
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = value.get_ref() else {
            let header = self.key(key);
            self.wrong_type(d, key, value, &format!("an array of tables ([[{header}]])"));
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| match item.get_ref() {
                DeValue::Table(inner) => Some((
                    Table {
                        path: format!("{}[{index}]", self.key(key)),
                        inner,
                    },
                    item.span().start,
                )),
                other => {
                    d.error(
                        Some(item.span().start),
                        format!("{}[{index}]", self.key(key)),
                        format!("expected a table, found {}", type_name(other)),
                        None,
                    );
                    None
                }
            })
            .collect()
    }

    /// A table of string values, e.g. `headers = { Authorization = "env:TOKEN" }`.
    pub(crate) fn string_map(
        &self,
        d: &mut Diagnostics,
        key: &str,
    ) -> Vec<(String, String, usize)> {
        let Some(table) = self.table(d, key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in table.inner {
            let name: &Cow<'_, str> = name.get_ref();
            match value.get_ref() {
                DeValue::String(text) => {
                    out.push((name.to_string(), text.to_string(), value.span().start));
                }
                other => d.error(
                    Some(value.span().start),
                    table.key(name),
                    format!("expected a string, found {}", type_name(other)),
                    None,
                ),
            }
        }
        out
    }
}

/// Reads `key`, one of the words `all` spells with `word` (a kind); a missing key is reported
/// with `add` as the fix, an unknown word as "unknown {noun}" with a "did you mean".
pub(crate) fn read_word<K: Copy>(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    (key, start): (&str, usize),
    (all, word): (&[K], fn(K) -> &'static str),
    (noun, add): (&str, &str),
) -> Option<K> {
    let Some((text, at)) = table.string(d, key) else {
        table.require(d, key, start, add);
        return None;
    };
    if let Some(known) = all.iter().copied().find(|k| word(*k) == text) {
        return Some(known);
    }
    let names: Vec<&str> = all.iter().map(|k| word(*k)).collect();
    let fix = match suggest::closest(&text, &names) {
        Some(close) => format!("did you mean \"{close}\"?"),
        None => format!("use one of {}", names.join(", ")),
    };
    d.error(
        Some(at),
        table.key(key),
        format!("unknown {noun} {text:?}"),
        Some(fix),
    );
    None
}

/// Reads the `name` of one table of the array `[[array]]` (an integration, a sync job): a
/// valid name, reported when an earlier table of the array has it already (`noun` says what
/// it names). Without a usable name the problem is reported, the table's other keys are
/// checked against `keys` (there is no name to label them with), and `None` is returned.
pub(crate) fn read_name(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    start: usize,
    (array, noun): (&str, &str),
    names: &mut std::collections::HashSet<String>,
    keys: &[&str],
) -> Option<String> {
    match table.string(d, "name") {
        Some((name, at)) if valid_name(&name) => {
            if !names.insert(name.clone()) {
                d.error(
                    Some(at),
                    table.key("name"),
                    format!("duplicate {noun} name {name:?}"),
                    Some(format!("give each [[{array}]] a unique name")),
                );
            }
            Some(name)
        }
        Some((name, at)) => {
            d.error(
                Some(at),
                table.key("name"),
                format!("{name:?} is not a valid name"),
                Some("use 1 to 64 characters from a-z, 0-9, - and _".into()),
            );
            table.check_keys(d, keys);
            None
        }
        None => {
            table.require(
                d,
                "name",
                start,
                &format!("add name = \"...\" to this [[{array}]]"),
            );
            table.check_keys(d, keys);
            None
        }
    }
}

/// Whether `name` may name an integration or a sync job: it appears in commands, logs and
/// metric labels.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
