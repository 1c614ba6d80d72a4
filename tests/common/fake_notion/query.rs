//! `POST /v1/data_sources/{id}/query`: filters (property conditions, `and`/`or` nested at most
//! two levels deep, timestamp conditions), sorts, and pagination (`page_size` of at most 100,
//! `start_cursor`, `has_more`, `next_cursor`). Pages come in creation order unless sorted; a
//! cursor is the id of the next page, so it stays good while pages are added.
//!
//! Text `equals` is exact; `contains`, `starts_with` and `ends_with` ignore case.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::objects::{self, page_object, page_properties};
use super::values::{Bad, body_failed, only_keys};
use super::*;

const TEXT_KINDS: [&str; 5] = ["title", "rich_text", "url", "email", "phone_number"];
const DATE_KINDS: [&str; 3] = ["date", "created_time", "last_edited_time"];

/// The conditions a filter of each type takes, and what their operand is.
fn conditions(filter_kind: &str) -> Option<&'static [(&'static str, &'static str)]> {
    const TEXT: &[(&str, &str)] = &[
        ("equals", "string"),
        ("does_not_equal", "string"),
        ("contains", "string"),
        ("does_not_contain", "string"),
        ("starts_with", "string"),
        ("ends_with", "string"),
        ("is_empty", "true"),
        ("is_not_empty", "true"),
    ];
    const NUMBER: &[(&str, &str)] = &[
        ("equals", "number"),
        ("does_not_equal", "number"),
        ("greater_than", "number"),
        ("less_than", "number"),
        ("greater_than_or_equal_to", "number"),
        ("less_than_or_equal_to", "number"),
        ("is_empty", "true"),
        ("is_not_empty", "true"),
    ];
    const SELECT: &[(&str, &str)] = &[
        ("equals", "string"),
        ("does_not_equal", "string"),
        ("is_empty", "true"),
        ("is_not_empty", "true"),
    ];
    const MULTI: &[(&str, &str)] = &[
        ("contains", "string"),
        ("does_not_contain", "string"),
        ("is_empty", "true"),
        ("is_not_empty", "true"),
    ];
    const CHECKBOX: &[(&str, &str)] = &[("equals", "boolean"), ("does_not_equal", "boolean")];
    const DATE: &[(&str, &str)] = &[
        ("equals", "date"),
        ("before", "date"),
        ("after", "date"),
        ("on_or_before", "date"),
        ("on_or_after", "date"),
        ("is_empty", "true"),
        ("is_not_empty", "true"),
    ];
    Some(match filter_kind {
        k if TEXT_KINDS.contains(&k) => TEXT,
        "number" => NUMBER,
        "select" | "status" => SELECT,
        "multi_select" => MULTI,
        "checkbox" => CHECKBOX,
        k if DATE_KINDS.contains(&k) => DATE,
        _ => return None,
    })
}

/// Checks `filter` (at `path`) against the schema of `source`; `depth` counts compound levels.
fn check_filter(source: &DataSource, filter: &Value, path: &str, depth: usize) -> Result<(), Bad> {
    let object = filter
        .as_object()
        .ok_or_else(|| body_failed(path, "an object", Some(filter)))?;
    for compound in ["or", "and"] {
        if let Some(parts) = object.get(compound) {
            only_keys(object, &[compound], path)?;
            let at = format!("{path}.{compound}");
            if depth >= 2 {
                return Err(body_failed(
                    &at,
                    "not present (compound filters nest at most two levels deep)",
                    Some(parts),
                ));
            }
            let parts = super::values::array_of(Some(parts), &at)?;
            for (i, part) in parts.iter().enumerate() {
                check_filter(source, part, &format!("{at}[{i}]"), depth + 1)?;
            }
            return Ok(());
        }
    }
    if let Some(timestamp) = object.get("timestamp") {
        let kind = timestamp
            .as_str()
            .filter(|t| DATE_KINDS[1..].contains(t))
            .ok_or_else(|| {
                body_failed(
                    &format!("{path}.timestamp"),
                    "`\"created_time\"` or `\"last_edited_time\"`",
                    Some(timestamp),
                )
            })?;
        only_keys(object, &["timestamp", "type", kind], path)?;
        return check_condition(object.get(kind), kind, &format!("{path}.{kind}"));
    }
    let name = object.get("property");
    let name = name
        .and_then(Value::as_str)
        .ok_or_else(|| body_failed(&format!("{path}.property"), "a string", name))?;
    let kinds: Vec<&String> = object
        .keys()
        .filter(|k| *k != "property" && *k != "type")
        .collect();
    let [filter_kind] = kinds.as_slice() else {
        return Err(body_failed(
            path,
            "a filter with one condition type",
            Some(filter),
        ));
    };
    let Some(property) = source
        .properties
        .iter()
        .find(|p| p.name == name || p.id == name)
    else {
        return Err(Bad::Invalid(format!(
            "Could not find property with name or id: {name}"
        )));
    };
    let fits = *filter_kind == &property.kind
        || (filter_kind.as_str() == "rich_text" && TEXT_KINDS.contains(&property.kind.as_str()));
    if conditions(filter_kind).is_none() {
        return Err(Bad::Unserved(format!(
            "{path}: the fake does not serve {filter_kind} filters"
        )));
    }
    if !fits {
        return Err(Bad::Invalid(format!(
            "database property {} does not match filter {filter_kind}",
            property.kind
        )));
    }
    check_condition(
        object.get(filter_kind.as_str()),
        filter_kind,
        &format!("{path}.{filter_kind}"),
    )
}

fn check_condition(condition: Option<&Value>, filter_kind: &str, path: &str) -> Result<(), Bad> {
    let object = condition
        .and_then(Value::as_object)
        .ok_or_else(|| body_failed(path, "an object", condition))?;
    let ops = conditions(filter_kind).unwrap_or_default();
    let pairs: Vec<(&String, &Value)> = object.iter().collect();
    let [(op, operand)] = pairs.as_slice() else {
        return Err(body_failed(path, "an object with one condition", condition));
    };
    let Some((_, wanted)) = ops.iter().find(|(o, _)| *o == op.as_str()) else {
        if DATE_KINDS.contains(&filter_kind) {
            return Err(Bad::Unserved(format!(
                "{path}.{op}: the fake does not serve this date condition"
            )));
        }
        return Err(body_failed(
            &format!("{path}.{op}"),
            "not present",
            Some(operand),
        ));
    };
    let fits = match *wanted {
        "string" => operand.is_string(),
        "number" => operand.is_number(),
        "boolean" => operand.is_boolean(),
        "true" => **operand == json!(true),
        "date" => operand.as_str().and_then(instant).is_some(),
        _ => false,
    };
    if !fits {
        let expected = match *wanted {
            "true" => "`true`",
            "date" => "a valid ISO 8601 date string",
            other => other,
        };
        return Err(body_failed(
            &format!("{path}.{op}"),
            expected,
            Some(operand),
        ));
    }
    Ok(())
}

/// A date or time as an instant (a date alone is its midnight UTC; a time without an offset is
/// taken as UTC); whether it was a date alone.
fn instant(text: &str) -> Option<(DateTime<Utc>, bool)> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some((date.and_hms_opt(0, 0, 0)?.and_utc(), true));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some((at.with_timezone(&Utc), false));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|at| (at.and_utc(), false))
}

/// The value a filter looks at: the property's value (`{"id", "type", "<type>"}`) or a
/// timestamp.
fn matches(page: &Value, properties: &Value, filter: &Value) -> bool {
    if let Some(parts) = filter["or"].as_array() {
        return parts.iter().any(|f| matches(page, properties, f));
    }
    if let Some(parts) = filter["and"].as_array() {
        return parts.iter().all(|f| matches(page, properties, f));
    }
    let (kind, value) = if let Some(timestamp) = filter["timestamp"].as_str() {
        (
            timestamp.to_string(),
            json!({ "type": timestamp, timestamp: page[timestamp] }),
        )
    } else {
        let name = filter["property"].as_str().unwrap_or_default();
        let value = properties
            .as_object()
            .and_then(|m| {
                m.get(name)
                    .or_else(|| m.values().find(|v| v["id"] == json!(name)))
            })
            .cloned()
            .unwrap_or(Value::Null);
        let kind = filter
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "property" && *k != "type").cloned())
            .unwrap_or_default();
        (kind, value)
    };
    let Some((op, operand)) = filter[&kind].as_object().and_then(|o| o.iter().next()) else {
        return false;
    };
    let property_kind = value["type"].as_str().unwrap_or_default();
    let inner = &value[property_kind];
    match kind.as_str() {
        k if TEXT_KINDS.contains(&k) => {
            let text = objects::value_text(&value);
            let wanted = operand.as_str().unwrap_or_default();
            let (lower, wanted_lower) = (text.to_lowercase(), wanted.to_lowercase());
            match op.as_str() {
                "equals" => text == wanted,
                "does_not_equal" => text != wanted,
                "contains" => lower.contains(&wanted_lower),
                "does_not_contain" => !lower.contains(&wanted_lower),
                "starts_with" => lower.starts_with(&wanted_lower),
                "ends_with" => lower.ends_with(&wanted_lower),
                "is_empty" => text.is_empty(),
                _ => !text.is_empty(),
            }
        }
        "number" => {
            let (n, wanted) = (inner.as_f64(), operand.as_f64().unwrap_or_default());
            match (op.as_str(), n) {
                ("is_empty", n) => n.is_none(),
                ("is_not_empty", n) => n.is_some(),
                (_, None) => false,
                ("equals", Some(n)) => n == wanted,
                ("does_not_equal", Some(n)) => n != wanted,
                ("greater_than", Some(n)) => n > wanted,
                ("less_than", Some(n)) => n < wanted,
                ("greater_than_or_equal_to", Some(n)) => n >= wanted,
                (_, Some(n)) => n <= wanted,
            }
        }
        "checkbox" => {
            let on = inner.as_bool().unwrap_or(false);
            (op == "equals") == (Some(on) == operand.as_bool())
        }
        "select" | "status" => {
            let name = inner["name"].as_str();
            match op.as_str() {
                "equals" => name == operand.as_str(),
                "does_not_equal" => name != operand.as_str(),
                "is_empty" => name.is_none(),
                _ => name.is_some(),
            }
        }
        "multi_select" => {
            let names: Vec<&str> = inner
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["name"].as_str())
                .collect();
            let has = operand.as_str().is_some_and(|w| names.contains(&w));
            match op.as_str() {
                "contains" => has,
                "does_not_contain" => !has,
                "is_empty" => names.is_empty(),
                _ => !names.is_empty(),
            }
        }
        k if DATE_KINDS.contains(&k) => {
            let at = inner
                .get("start")
                .unwrap_or(inner)
                .as_str()
                .and_then(instant);
            let wanted = operand.as_str().and_then(instant);
            match (op.as_str(), at, wanted) {
                ("is_empty", at, _) => at.is_none(),
                ("is_not_empty", at, _) => at.is_some(),
                (_, None, _) | (_, _, None) => false,
                ("equals", Some((at, _)), Some((wanted, true))) => {
                    at.date_naive() == wanted.date_naive()
                }
                ("equals", Some((at, _)), Some((wanted, false))) => at == wanted,
                ("before", Some((at, _)), Some((wanted, _))) => at < wanted,
                ("after", Some((at, _)), Some((wanted, _))) => at > wanted,
                ("on_or_before", Some((at, _)), Some((wanted, _))) => at <= wanted,
                (_, Some((at, _)), Some((wanted, _))) => at >= wanted,
            }
        }
        _ => false,
    }
}

/// What a page sorts by for one sort: a number, a text, or nothing (always last).
fn sort_key(page: &Value, properties: &Value, sort: &Value) -> Option<(Option<f64>, String)> {
    let value = if let Some(timestamp) = sort["timestamp"].as_str() {
        json!({ "type": timestamp, timestamp: page[timestamp] })
    } else {
        let name = sort["property"].as_str().unwrap_or_default();
        properties
            .as_object()
            .and_then(|m| {
                m.get(name)
                    .or_else(|| m.values().find(|v| v["id"] == json!(name)))
            })
            .cloned()?
    };
    let kind = value["type"].as_str().unwrap_or_default();
    if let Some(n) = value[kind].as_f64() {
        return Some((Some(n), String::new()));
    }
    let text = objects::value_text(&value);
    (!text.is_empty()).then_some((None, text))
}

fn check_sorts(source: &DataSource, sorts: &Value) -> Result<(), Bad> {
    let sorts = super::values::array_of(Some(sorts), "body.sorts")?;
    for (i, sort) in sorts.iter().enumerate() {
        let at = format!("body.sorts[{i}]");
        let object = sort
            .as_object()
            .ok_or_else(|| body_failed(&at, "an object", Some(sort)))?;
        let direction = object.get("direction");
        if !direction.is_some_and(|d| d == "ascending" || d == "descending") {
            return Err(body_failed(
                &format!("{at}.direction"),
                "`\"ascending\"` or `\"descending\"`",
                direction,
            ));
        }
        match (object.get("property"), object.get("timestamp")) {
            (Some(Value::String(name)), None) => {
                only_keys(object, &["property", "direction"], &at)?;
                if !source
                    .properties
                    .iter()
                    .any(|p| p.name == *name || p.id == *name)
                {
                    return Err(Bad::Invalid(format!(
                        "Could not find sort property with name or id: {name}"
                    )));
                }
            }
            (None, Some(timestamp)) if DATE_KINDS[1..].iter().any(|k| timestamp == k) => {
                only_keys(object, &["timestamp", "direction"], &at)?;
            }
            _ => return Err(body_failed(&at, "a property or timestamp sort", Some(sort))),
        }
    }
    Ok(())
}

/// Answers a query of data source `source` with `body`.
pub(super) fn query(st: &St, source: usize, body: &Value) -> Result<Value, Bad> {
    let empty = serde_json::Map::new();
    let object = match body {
        Value::Null => &empty,
        Value::Object(object) => object,
        other => return Err(body_failed("body", "an object", Some(other))),
    };
    only_keys(
        object,
        &[
            "sorts",
            "filter",
            "start_cursor",
            "page_size",
            "archived",
            "in_trash",
            "filter_properties",
            "result_type",
        ],
        "body",
    )?;
    let page_size = match object.get("page_size") {
        None => MAX_PAGE_SIZE,
        Some(size) => {
            let n = size
                .as_u64()
                .ok_or_else(|| body_failed("body.page_size", "an integer", Some(size)))?;
            if n > MAX_PAGE_SIZE as u64 {
                return Err(Bad::Invalid(format!(
                    "body failed validation: body.page_size should be ≤ `{MAX_PAGE_SIZE}`, instead was `{n}`."
                )));
            }
            if n == 0 {
                return Err(Bad::Invalid(
                    "body failed validation: body.page_size should be ≥ `1`, instead was `0`."
                        .to_string(),
                ));
            }
            n as usize
        }
    };
    let schema = &st.sources[source];
    if let Some(filter) = object.get("filter") {
        check_filter(schema, filter, "body.filter", 0)?;
    }
    if let Some(sorts) = object.get("sorts") {
        check_sorts(schema, sorts)?;
    }
    let trashed = object.get("in_trash").or_else(|| object.get("archived")) == Some(&json!(true));
    let mut rows: Vec<(Value, Value)> = st
        .pages
        .iter()
        .filter(|p| p.data_source == schema.id && p.in_trash == trashed)
        .map(|p| (page_object(st, p), page_properties(st, p)))
        .filter(|(page, properties)| {
            object
                .get("filter")
                .is_none_or(|filter| matches(page, properties, filter))
        })
        .collect();
    for sort in object
        .get("sorts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .rev()
    {
        let descending = sort["direction"] == "descending";
        rows.sort_by(
            |(a, pa), (b, pb)| match (sort_key(a, pa, sort), sort_key(b, pb, sort)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(x), Some(y)) => {
                    let order = match (x.0, y.0) {
                        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                        _ => x.1.cmp(&y.1),
                    };
                    if descending { order.reverse() } else { order }
                }
            },
        );
    }
    let start = match object.get("start_cursor") {
        None | Some(Value::Null) => 0,
        Some(cursor) => {
            let key = cursor.as_str().map(compact).unwrap_or_default();
            rows.iter()
                .position(|(page, _)| {
                    !key.is_empty() && page["id"].as_str().map(compact) == Some(key.clone())
                })
                .ok_or_else(|| {
                    Bad::Invalid(format!(
                        "body failed validation: body.start_cursor should be a cursor this query \
                         returned, instead was {}.",
                        super::values::shown(Some(cursor))
                    ))
                })?
        }
    };
    let end = (start + page_size).min(rows.len());
    let next = rows
        .get(end)
        .and_then(|(page, _)| page["id"].as_str().map(str::to_string));
    let results = rows[start..end]
        .iter()
        .map(|(page, _)| page.clone())
        .collect();
    Ok(objects::list(results, next, "page_or_data_source"))
}
