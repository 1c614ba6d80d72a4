//! Page property values and schema changes, validated as Notion validates them and turned into
//! what Notion stores and returns.
//!
//! A request is checked in Notion's order: first the body's shape and limits ("body failed
//! validation: body.properties.Name.title[0].text.content.length should be ≤ `2000`, instead
//! was `2001`."), then the names and types against the schema ("Tags is not a property that
//! exists. Status is expected to be select."), then select options. Nothing is changed unless
//! the whole request is accepted.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use super::objects::default_annotations;
use super::*;

/// Why a request is refused.
#[derive(Debug)]
pub(super) enum Bad {
    /// 400 `validation_error` with Notion's message.
    Invalid(String),
    /// Something real Notion may well take but the fake does not serve (a violation, so that
    /// the test hears of it, answered 400).
    Unserved(String),
}

impl Bad {
    pub(super) fn message(&self) -> &str {
        match self {
            Bad::Invalid(m) | Bad::Unserved(m) => m,
        }
    }
}

/// A body-shape failure at `path`, in Notion's words.
pub(super) fn body_failed(path: &str, expected: &str, was: Option<&Value>) -> Bad {
    Bad::Invalid(format!(
        "body failed validation: {path} should be {expected}, instead was {}.",
        shown(was)
    ))
}

/// A value as Notion quotes it in a message: `` `undefined` `` or its JSON in backticks.
pub(super) fn shown(value: Option<&Value>) -> String {
    match value {
        None => "`undefined`".to_string(),
        Some(v) => {
            let text = v.to_string();
            if text.chars().count() > 200 {
                format!("`{}...`", text.chars().take(200).collect::<String>())
            } else {
                format!("`{text}`")
            }
        }
    }
}

/// Refuses any key of `object` not in `allowed`, as Notion does ("should be not present").
pub(super) fn only_keys(
    object: &Map<String, Value>,
    allowed: &[&str],
    path: &str,
) -> Result<(), Bad> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(body_failed(
            &format!("{path}.{key}"),
            "not present",
            object.get(key),
        )),
        None => Ok(()),
    }
}

/// A length in UTF-16 code units, as Notion (JavaScript) counts it.
pub(super) fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

fn check_length(text: &str, limit: usize, path: &str) -> Result<(), Bad> {
    let n = units(text);
    if n > limit {
        return Err(Bad::Invalid(format!(
            "body failed validation: {path}.length should be ≤ `{limit}`, instead was `{n}`."
        )));
    }
    Ok(())
}

/// An array of at most 100 items (Notion's limit for every array in a request).
pub(super) fn array_of<'a>(value: Option<&'a Value>, path: &str) -> Result<&'a Vec<Value>, Bad> {
    let items = value
        .and_then(Value::as_array)
        .ok_or_else(|| body_failed(path, "an array", value))?;
    if items.len() > MAX_PAGE_SIZE {
        return Err(Bad::Invalid(format!(
            "body failed validation: {path}.length should be ≤ `{MAX_PAGE_SIZE}`, instead was `{}`.",
            items.len()
        )));
    }
    Ok(items)
}

/// Rich text as a request writes it, checked (at most 100 items, text of at most 2,000 UTF-16
/// units, links of at most 2,000) and turned into what Notion returns (`plain_text`, `href`,
/// every annotation).
pub(super) fn rich_text(value: Option<&Value>, path: &str) -> Result<Value, Bad> {
    let items = array_of(value, path)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let object = item
            .as_object()
            .ok_or_else(|| body_failed(&at, "an object", Some(item)))?;
        only_keys(
            object,
            &[
                "type",
                "text",
                "mention",
                "equation",
                "annotations",
                "plain_text",
                "href",
            ],
            &at,
        )?;
        let kind = match item["type"].as_str() {
            Some(kind) => kind,
            None if object.contains_key("text") => "text",
            None if object.contains_key("equation") => "equation",
            None if object.contains_key("mention") => "mention",
            None => return Err(body_failed(&format!("{at}.text"), "defined", None)),
        };
        let mut annotations = default_annotations();
        if let Some(given) = object.get("annotations") {
            let given = given.as_object().ok_or_else(|| {
                body_failed(&format!("{at}.annotations"), "an object", Some(given))
            })?;
            only_keys(
                given,
                &[
                    "bold",
                    "italic",
                    "strikethrough",
                    "underline",
                    "code",
                    "color",
                ],
                &format!("{at}.annotations"),
            )?;
            for (key, v) in given {
                annotations[key] = v.clone();
            }
        }
        match kind {
            "text" => {
                let text = object
                    .get("text")
                    .and_then(Value::as_object)
                    .ok_or_else(|| {
                        body_failed(&format!("{at}.text"), "an object", object.get("text"))
                    })?;
                only_keys(text, &["content", "link"], &format!("{at}.text"))?;
                let content = text.get("content").and_then(Value::as_str).ok_or_else(|| {
                    body_failed(
                        &format!("{at}.text.content"),
                        "a string",
                        text.get("content"),
                    )
                })?;
                check_length(content, MAX_TEXT, &format!("{at}.text.content"))?;
                let link = match text.get("link") {
                    None | Some(Value::Null) => Value::Null,
                    Some(link) => {
                        let url = link["url"].as_str().ok_or_else(|| {
                            body_failed(
                                &format!("{at}.text.link"),
                                "an object, null, or undefined",
                                Some(link),
                            )
                        })?;
                        check_length(url, MAX_TEXT, &format!("{at}.text.link.url"))?;
                        json!({ "url": url })
                    }
                };
                out.push(json!({
                    "type": "text",
                    "text": { "content": content, "link": link },
                    "annotations": annotations,
                    "plain_text": content,
                    "href": link.get("url").cloned().unwrap_or(Value::Null),
                }));
            }
            "equation" => {
                let expression = item["equation"]["expression"].as_str().ok_or_else(|| {
                    body_failed(
                        &format!("{at}.equation.expression"),
                        "a string",
                        item["equation"].get("expression"),
                    )
                })?;
                check_length(expression, 1000, &format!("{at}.equation.expression"))?;
                out.push(json!({
                    "type": "equation",
                    "equation": { "expression": expression },
                    "annotations": annotations,
                    "plain_text": expression,
                    "href": null,
                }));
            }
            "mention" => {
                return Err(Bad::Unserved(format!(
                    "{at}: the fake does not serve mentions in rich text"
                )));
            }
            other => {
                return Err(body_failed(
                    &format!("{at}.type"),
                    "`\"text\"`, `\"mention\"`, or `\"equation\"`",
                    Some(&json!(other)),
                ));
            }
        }
    }
    Ok(Value::Array(out))
}

/// The colors of select, multi-select and status options.
pub(super) const COLORS: [&str; 10] = [
    "default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red",
];

/// The property types a page value may be written for.
const WRITABLE: [&str; 14] = [
    "title",
    "rich_text",
    "number",
    "select",
    "multi_select",
    "status",
    "date",
    "checkbox",
    "url",
    "email",
    "phone_number",
    "people",
    "relation",
    "files",
];

/// Every property type a schema can hold.
pub(super) const KINDS: [&str; 24] = [
    "title",
    "rich_text",
    "number",
    "select",
    "multi_select",
    "status",
    "date",
    "checkbox",
    "url",
    "email",
    "phone_number",
    "people",
    "relation",
    "files",
    "formula",
    "rollup",
    "created_time",
    "created_by",
    "last_edited_time",
    "last_edited_by",
    "unique_id",
    "button",
    "verification",
    "place",
];

/// A new property id: four characters, as Notion's are (`yfiK`), not yet used in `taken`.
pub(super) fn property_id(taken: &[Property]) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    loop {
        let id: String = (0..4)
            .map(|_| CHARS[rand::random_range(0..CHARS.len())] as char)
            .collect();
        if id != "title" && !taken.iter().any(|p| p.id == id) {
            return id;
        }
    }
}

/// An option reference as a page value or a schema writes it.
#[derive(Debug, Clone)]
struct OptionRef {
    id: Option<String>,
    name: Option<String>,
    color: Option<String>,
}

fn option_ref(value: &Value, path: &str) -> Result<OptionRef, Bad> {
    let object = value
        .as_object()
        .ok_or_else(|| body_failed(path, "an object", Some(value)))?;
    only_keys(object, &["id", "name", "color", "description"], path)?;
    let text = |key: &str| -> Result<Option<String>, Bad> {
        match object.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(body_failed(
                &format!("{path}.{key}"),
                "a string",
                Some(other),
            )),
        }
    };
    let option = OptionRef {
        id: text("id")?,
        name: text("name")?,
        color: text("color")?,
    };
    if option.id.is_none() && option.name.is_none() {
        return Err(body_failed(&format!("{path}.name"), "defined", None));
    }
    if let Some(color) = &option.color
        && !COLORS.contains(&color.as_str())
    {
        return Err(body_failed(
            &format!("{path}.color"),
            "one of the select colors",
            Some(&json!(color)),
        ));
    }
    Ok(option)
}

/// A page value checked for shape, before the schema is consulted.
enum Written {
    /// Stored as it is.
    Plain(Value),
    /// A select or status option (`None` clears it).
    One(Option<OptionRef>),
    /// Multi-select options.
    Many(Vec<OptionRef>),
}

fn parse_date(text: &str) -> Option<String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.format("%Y-%m-%d").to_string());
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string());
    }
    // Without an offset (Notion reads it in `time_zone`, or UTC).
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string());
        }
    }
    None
}

/// A date value: `{"start", "end"?, "time_zone"?}`; ISO 8601 dates or times.
fn date_value(value: &Value, path: &str) -> Result<Value, Bad> {
    let object = value
        .as_object()
        .ok_or_else(|| body_failed(path, "an object or `null`", Some(value)))?;
    only_keys(object, &["start", "end", "time_zone"], path)?;
    let start = object.get("start");
    let start = start
        .and_then(Value::as_str)
        .ok_or_else(|| body_failed(&format!("{path}.start"), "a string", start))?;
    let start = parse_date(start).ok_or_else(|| {
        body_failed(
            &format!("{path}.start"),
            "a valid ISO 8601 date string",
            Some(&json!(start)),
        )
    })?;
    let end = match object.get("end") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(end)) => json!(parse_date(end).ok_or_else(|| body_failed(
            &format!("{path}.end"),
            "a valid ISO 8601 date string",
            Some(&json!(end))
        ))?),
        Some(other) => {
            return Err(body_failed(
                &format!("{path}.end"),
                "a string or `null`",
                Some(other),
            ));
        }
    };
    let time_zone = match object.get("time_zone") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(zone)) => json!(zone),
        Some(other) => {
            return Err(body_failed(
                &format!("{path}.time_zone"),
                "a string or `null`",
                Some(other),
            ));
        }
    };
    Ok(json!({ "start": start, "end": end, "time_zone": time_zone }))
}

fn nullable_text(value: &Value, limit: usize, path: &str) -> Result<Value, Bad> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::String(text) => {
            check_length(text, limit, path)?;
            Ok(value.clone())
        }
        other => Err(body_failed(path, "a string or `null`", Some(other))),
    }
}

/// Checks one page value (`{"<type>": ...}`, `type` optional) for shape and limits.
fn written(value: &Value, path: &str) -> Result<(String, Written), Bad> {
    let object = value
        .as_object()
        .ok_or_else(|| body_failed(path, "an object", Some(value)))?;
    let kinds: Vec<&String> = object
        .keys()
        .filter(|k| *k != "type" && *k != "id")
        .collect();
    let kind = match (kinds.as_slice(), object.get("type").and_then(Value::as_str)) {
        ([kind], None) => kind.as_str(),
        ([kind], Some(named)) if named == kind.as_str() => kind.as_str(),
        ([_] | [], Some(named)) => {
            return Err(body_failed(&format!("{path}.{named}"), "defined", None));
        }
        ([], None) => return Err(body_failed(path, "a property value", Some(value))),
        (_, _) => {
            return Err(body_failed(
                &format!("{path}.{}", kinds[1]),
                "not present",
                object.get(kinds[1].as_str()),
            ));
        }
    };
    if !WRITABLE.contains(&kind) {
        return Err(body_failed(
            &format!("{path}.{kind}"),
            "not present",
            object.get(kind),
        ));
    }
    let inner = &object[kind];
    let at = format!("{path}.{kind}");
    let written = match kind {
        "title" | "rich_text" => Written::Plain(rich_text(Some(inner), &at)?),
        "number" => match inner {
            Value::Null | Value::Number(_) => Written::Plain(inner.clone()),
            other => return Err(body_failed(&at, "a number or `null`", Some(other))),
        },
        "select" | "status" => match inner {
            Value::Null => Written::One(None),
            other => Written::One(Some(option_ref(other, &at)?)),
        },
        "multi_select" => {
            let items = array_of(Some(inner), &at)?;
            let options = items
                .iter()
                .enumerate()
                .map(|(i, o)| option_ref(o, &format!("{at}[{i}]")))
                .collect::<Result<Vec<_>, Bad>>()?;
            Written::Many(options)
        }
        "date" => match inner {
            Value::Null => Written::Plain(Value::Null),
            other => Written::Plain(date_value(other, &at)?),
        },
        "checkbox" => match inner {
            Value::Bool(_) => Written::Plain(inner.clone()),
            other => return Err(body_failed(&at, "a boolean", Some(other))),
        },
        "url" => Written::Plain(nullable_text(inner, MAX_TEXT, &at)?),
        "email" | "phone_number" => Written::Plain(nullable_text(inner, 200, &at)?),
        "people" | "relation" => {
            let items = array_of(Some(inner), &at)?;
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let id = item["id"].as_str().filter(|id| !compact(id).is_empty());
                let id = id.ok_or_else(|| {
                    body_failed(&format!("{at}[{i}].id"), "a valid uuid", item.get("id"))
                })?;
                out.push(if kind == "people" {
                    json!({ "object": "user", "id": id })
                } else {
                    json!({ "id": id })
                });
            }
            Written::Plain(Value::Array(out))
        }
        "files" => Written::Plain(Value::Array(array_of(Some(inner), &at)?.clone())),
        _ => unreachable!("checked against WRITABLE"),
    };
    Ok((kind.to_string(), written))
}

/// The property of `source` a request names by `key` (its name, or its id).
fn property_named(source: &DataSource, key: &str) -> Option<usize> {
    source
        .properties
        .iter()
        .position(|p| p.name == key)
        .or_else(|| source.properties.iter().position(|p| p.id == key))
}

/// Finds an option of `options` by id or name.
fn find_option<'a>(options: &'a [Value], wanted: &OptionRef) -> Option<&'a Value> {
    options.iter().find(|o| match (&wanted.id, &wanted.name) {
        (Some(id), _) => o["id"] == json!(id),
        (None, Some(name)) => o["name"] == json!(name),
        (None, None) => false,
    })
}

fn new_option(name: &str, color: Option<&str>, index: usize) -> Value {
    json!({
        "id": new_id(),
        "name": name,
        "color": color.unwrap_or(COLORS[index % COLORS.len()]),
        "description": null,
    })
}

/// Resolves option references against the options of `property`, creating the ones a select
/// or multi-select lacks (as Notion does); the options to add come back in `created`.
fn resolve_options(
    property: &Property,
    key: &str,
    wanted: &[OptionRef],
    created: &mut Vec<Value>,
) -> Result<Vec<Value>, Bad> {
    let existing = property.config["options"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for option in wanted {
        let all: Vec<Value> = existing.iter().chain(created.iter()).cloned().collect();
        let found = find_option(&all, option).cloned();
        let found = match (found, &option.name) {
            (Some(found), _) => found,
            (None, Some(name)) if property.kind != "status" && option.id.is_none() => {
                if name.contains(',') {
                    return Err(Bad::Invalid(format!(
                        "Invalid {} option, commas not allowed: {name}",
                        property.kind
                    )));
                }
                let made = new_option(name, option.color.as_deref(), all.len());
                created.push(made.clone());
                made
            }
            (None, _) if property.kind == "status" => {
                return Err(Bad::Invalid(format!(
                    "Invalid status option. Status option \"{}\" does not exist for property \
                     \"{key}\".",
                    option
                        .name
                        .as_deref()
                        .or(option.id.as_deref())
                        .unwrap_or_default()
                )));
            }
            (None, _) => {
                return Err(Bad::Invalid(format!(
                    "Invalid select option id for property \"{key}\": {}",
                    option.id.as_deref().unwrap_or_default()
                )));
            }
        };
        out.push(json!({ "id": found["id"], "name": found["name"], "color": found["color"] }));
    }
    Ok(out)
}

/// The page values of a create or update (`properties` of the body, at `path`) checked against
/// the schema of data source `source`, keyed by property id. Select and multi-select options
/// they name that the schema lacks are added to it (only when everything is accepted).
pub(super) fn page_values(
    st: &mut St,
    source: usize,
    properties: &Value,
    path: &str,
) -> Result<HashMap<String, (String, Value)>, Bad> {
    let path = format!("body.{path}");
    let object = properties
        .as_object()
        .ok_or_else(|| body_failed(&path, "an object", Some(properties)))?;
    // The body's shape and limits.
    let mut checked = Vec::new();
    for (key, value) in object {
        let (kind, written) = written(value, &format!("{path}.{key}"))?;
        checked.push((key.clone(), kind, written));
    }
    // Names and types against the schema: every problem at once, as Notion lists them.
    let schema = &st.sources[source];
    let mut problems = Vec::new();
    let mut targets = Vec::new();
    for (key, kind, _) in &checked {
        match property_named(schema, key) {
            None => problems.push(format!("{key} is not a property that exists.")),
            Some(p) if schema.properties[p].kind != *kind => problems.push(format!(
                "{key} is expected to be {}.",
                schema.properties[p].kind
            )),
            Some(p) => targets.push(p),
        }
    }
    if !problems.is_empty() {
        return Err(Bad::Invalid(problems.join(" ")));
    }
    // Options, created where Notion creates them.
    let mut values = HashMap::new();
    let mut created: HashMap<usize, Vec<Value>> = HashMap::new();
    for ((key, kind, written), p) in checked.into_iter().zip(targets) {
        let property = &schema.properties[p];
        let made = created.entry(p).or_default();
        let inner = match written {
            Written::Plain(value) => value,
            Written::One(None) => Value::Null,
            Written::One(Some(option)) => resolve_options(property, &key, &[option], made)?
                .pop()
                .unwrap_or(Value::Null),
            Written::Many(options) => {
                Value::Array(resolve_options(property, &key, &options, made)?)
            }
        };
        values.insert(property.id.clone(), (kind, inner));
    }
    let source = &mut st.sources[source];
    for (p, made) in created {
        if made.is_empty() {
            continue;
        }
        let property = &mut source.properties[p];
        if !property.config["options"].is_array() {
            property.config["options"] = json!([]);
        }
        if let Some(options) = property.config["options"].as_array_mut() {
            options.extend(made);
        }
        source.edited = Utc::now();
    }
    Ok(values)
}

/// Notion's default status options and groups.
fn default_status() -> Value {
    let not_started = new_id();
    let in_progress = new_id();
    let done = new_id();
    json!({
        "options": [
            { "id": not_started, "name": "Not started", "color": "default", "description": null },
            { "id": in_progress, "name": "In progress", "color": "blue", "description": null },
            { "id": done, "name": "Done", "color": "green", "description": null },
        ],
        "groups": [
            { "id": new_id(), "name": "To-do", "color": "gray", "option_ids": [not_started] },
            { "id": new_id(), "name": "In progress", "color": "blue", "option_ids": [in_progress] },
            { "id": new_id(), "name": "Complete", "color": "green", "option_ids": [done] },
        ],
    })
}

/// A property configuration as Notion stores and returns it: options get ids and colors
/// (keeping those of `existing` options of the same name), a number gets its format.
pub(super) fn normalise_config(kind: &str, config: &Value, existing: &[Value]) -> Value {
    match kind {
        "number" => json!({ "format": config["format"].as_str().unwrap_or("number") }),
        "select" | "multi_select" => {
            let mut options: Vec<Value> = Vec::new();
            for option in config["options"].as_array().into_iter().flatten() {
                let name = option["name"].as_str().unwrap_or_default();
                let kept = existing.iter().find(|o| {
                    o["name"] == json!(name)
                        || (option.get("id").is_some() && o["id"] == option["id"])
                });
                options.push(match kept {
                    Some(kept) => kept.clone(),
                    None => new_option(name, option["color"].as_str(), options.len()),
                });
            }
            json!({ "options": options })
        }
        "status" => {
            if config["options"].is_array() {
                config.clone()
            } else {
                default_status()
            }
        }
        "formula" => json!({ "expression": config["expression"].as_str().unwrap_or_default() }),
        "unique_id" => json!({ "prefix": config.get("prefix").cloned().unwrap_or(Value::Null) }),
        "relation" | "rollup" => config.clone(),
        _ => json!({}),
    }
}

/// What a `PATCH /v1/data_sources/{id}` does to one property.
enum Change {
    Add(Property),
    Delete(usize),
    /// Property index, new name, new type and configuration.
    Update(usize, Option<String>, Option<(String, Value)>),
}

/// Applies the `properties` of a `PATCH /v1/data_sources/{id}` to data source `source`:
/// properties are added; an existing one is re-typed, renamed, re-configured or deleted (each
/// of those a violation: a sync adds properties and options, it does not take what people made
/// away); select options left out of a new list are deleted, as Notion deletes them (a
/// violation too), and so are the values that used them.
pub(super) fn update_schema(
    st: &mut St,
    source: usize,
    properties: &Value,
    what: &str,
) -> Result<(), Bad> {
    let path = "body.properties";
    let object = properties
        .as_object()
        .ok_or_else(|| body_failed(path, "an object", Some(properties)))?;
    let schema = &st.sources[source];
    let mut changes = Vec::new();
    for (key, spec) in object {
        let at = format!("{path}.{key}");
        let found = property_named(schema, key);
        if spec.is_null() {
            match found {
                None => {
                    return Err(Bad::Invalid(format!(
                        "{key} is not a property that exists."
                    )));
                }
                Some(p) if schema.properties[p].kind == "title" => {
                    return Err(Bad::Invalid(format!(
                        "Cannot delete the title property {key}."
                    )));
                }
                Some(p) => changes.push(Change::Delete(p)),
            }
            continue;
        }
        let spec_object = spec
            .as_object()
            .ok_or_else(|| body_failed(&at, "an object or `null`", Some(spec)))?;
        let kinds: Vec<&str> = spec_object
            .keys()
            .map(String::as_str)
            .filter(|k| !["name", "type", "description"].contains(k))
            .collect();
        if let Some(unknown) = kinds.iter().find(|k| !KINDS.contains(k)) {
            return Err(body_failed(
                &format!("{at}.{unknown}"),
                "not present",
                spec.get(*unknown),
            ));
        }
        if kinds.len() > 1 {
            return Err(body_failed(
                &format!("{at}.{}", kinds[1]),
                "not present",
                spec.get(kinds[1]),
            ));
        }
        let kind = kinds.first().copied();
        if let Some(named) = spec["type"].as_str()
            && kind != Some(named)
        {
            return Err(body_failed(&format!("{at}.{named}"), "defined", None));
        }
        let name = match spec.get("name") {
            None => None,
            Some(Value::String(name)) if !name.is_empty() => Some(name.clone()),
            Some(other) => {
                return Err(body_failed(
                    &format!("{at}.name"),
                    "a non-empty string",
                    Some(other),
                ));
            }
        };
        let config = |kind: &str| -> Result<Value, Bad> {
            let given = &spec[kind];
            if !given.is_object() {
                return Err(body_failed(
                    &format!("{at}.{kind}"),
                    "an object",
                    Some(given),
                ));
            }
            for (i, option) in given["options"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let option = option_ref(option, &format!("{at}.{kind}.options[{i}]"))?;
                if let Some(name) = &option.name
                    && name.contains(',')
                {
                    return Err(Bad::Invalid(format!(
                        "Invalid {kind} option, commas not allowed: {name}"
                    )));
                }
            }
            Ok(given.clone())
        };
        match (found, kind) {
            (None, None) => {
                return Err(Bad::Invalid(format!(
                    "{key} is not a property that exists."
                )));
            }
            (None, Some("title")) => {
                return Err(Bad::Invalid(format!(
                    "Cannot create a second title property: {key}. A data source has exactly one."
                )));
            }
            (None, Some(kind)) => {
                let name = name.unwrap_or_else(|| key.clone());
                if property_named(schema, &name).is_some() {
                    return Err(Bad::Invalid(format!(
                        "A property named {name} already exists."
                    )));
                }
                let given = config(kind)?;
                changes.push(Change::Add(Property {
                    id: property_id(&schema.properties),
                    name,
                    kind: kind.to_string(),
                    config: normalise_config(kind, &given, &[]),
                }));
            }
            (Some(p), kind) => {
                let property = &schema.properties[p];
                if let Some(kind) = kind
                    && property.kind == "title"
                    && kind != "title"
                {
                    return Err(Bad::Invalid(format!(
                        "Cannot change the type of the title property {key}."
                    )));
                }
                if kind == Some("title") && property.kind != "title" {
                    return Err(Bad::Invalid(format!(
                        "Cannot create a second title property: {key}. A data source has exactly one."
                    )));
                }
                if property.kind == "status"
                    && kind == Some("status")
                    && spec["status"].get("options").is_some()
                {
                    return Err(Bad::Invalid(format!(
                        "Cannot update the options of status property {key} through the API."
                    )));
                }
                if let Some(name) = &name
                    && *name != property.name
                    && property_named(schema, name).is_some()
                {
                    return Err(Bad::Invalid(format!(
                        "A property named {name} already exists."
                    )));
                }
                let retyped = match kind {
                    Some(kind) => Some((kind.to_string(), config(kind)?)),
                    None => None,
                };
                changes.push(Change::Update(p, name, retyped));
            }
        }
    }
    // Every change is valid: make them.
    let mut deleted = Vec::new();
    for change in changes {
        match change {
            Change::Add(property) => st.sources[source].properties.push(property),
            Change::Delete(p) => {
                let name = st.sources[source].properties[p].name.clone();
                st.violation(format!("{what}: deleted property \"{name}\""));
                deleted.push(p);
            }
            Change::Update(p, name, kind) => update_property(st, source, p, name, kind, what)?,
        }
    }
    deleted.sort_unstable();
    for p in deleted.into_iter().rev() {
        st.sources[source].properties.remove(p);
    }
    st.sources[source].edited = Utc::now();
    Ok(())
}

fn update_property(
    st: &mut St,
    source: usize,
    p: usize,
    name: Option<String>,
    kind: Option<(String, Value)>,
    what: &str,
) -> Result<(), Bad> {
    let property = st.sources[source].properties[p].clone();
    let mut updated = property.clone();
    if let Some(name) = name
        && name != property.name
    {
        st.violation(format!(
            "{what}: renamed property \"{}\" to \"{name}\"",
            property.name
        ));
        updated.name = name;
    }
    if let Some((kind, given)) = kind {
        if kind == property.kind {
            if matches!(kind.as_str(), "select" | "multi_select") && given.get("options").is_some()
            {
                updated.config = replace_options(st, source, &property, &given, what)?;
            } else if kind == "number" && given.get("format").is_some() {
                updated.config = normalise_config(&kind, &given, &[]);
            }
        } else {
            st.violation(format!(
                "{what}: re-typed property \"{}\" from {} to {kind}",
                property.name, property.kind
            ));
            updated.config = normalise_config(&kind, &given, &[]);
            updated.kind = kind;
        }
    }
    st.sources[source].properties[p] = updated;
    Ok(())
}

/// A select's new option list: existing options named keep their id and color (a color change
/// is refused, as Notion refuses it); new ones are made; the ones left out are deleted, with
/// the page values that used them.
fn replace_options(
    st: &mut St,
    source: usize,
    property: &Property,
    given: &Value,
    what: &str,
) -> Result<Value, Bad> {
    let existing = property.config["options"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut options: Vec<Value> = Vec::new();
    for option in given["options"].as_array().into_iter().flatten() {
        let wanted = option_ref(option, "body.properties.options")?;
        if let Some(kept) = find_option(&existing, &wanted) {
            if let Some(color) = &wanted.color
                && kept["color"] != json!(color)
            {
                return Err(Bad::Invalid(format!(
                    "Cannot update color of select with name: {}.",
                    kept["name"].as_str().unwrap_or_default()
                )));
            }
            options.push(kept.clone());
            continue;
        }
        let name = wanted.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(Bad::Invalid(format!(
                "Invalid select option id for property \"{}\": {}",
                property.name,
                wanted.id.unwrap_or_default()
            )));
        }
        options.push(new_option(
            &name,
            wanted.color.as_deref(),
            existing.len() + options.len(),
        ));
    }
    let dropped: Vec<&Value> = existing
        .iter()
        .filter(|o| !options.iter().any(|kept| kept["id"] == o["id"]))
        .collect();
    if !dropped.is_empty() {
        let names: Vec<&str> = dropped.iter().filter_map(|o| o["name"].as_str()).collect();
        st.violation(format!(
            "{what}: the options of \"{}\" left out were deleted (Notion deletes options a new \
             list omits): {names:?}",
            property.name
        ));
        let gone: Vec<Value> = dropped.iter().map(|o| o["id"].clone()).collect();
        let source_id = st.sources[source].id.clone();
        for page in st.pages.iter_mut().filter(|p| p.data_source == source_id) {
            if let Some((kind, value)) = page.values.get_mut(&property.id) {
                if kind == "select" && gone.contains(&value["id"]) {
                    *value = Value::Null;
                } else if let Some(items) = value.as_array_mut() {
                    items.retain(|o| !gone.contains(&o["id"]));
                }
            }
        }
    }
    Ok(json!({ "options": options }))
}
