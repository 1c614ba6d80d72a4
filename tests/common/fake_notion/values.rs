//! Property values and blocks as Notion checks and stores them: what a write may carry for
//! each property type, the 2,000-character limit on text (UTF-16 units, as Notion counts),
//! select options created on first use, and the shapes Notion answers with.

use serde_json::{Map, Value, json};

use super::DataSource;

/// The property types the fake knows.
pub(super) const TYPES: &[&str] = &[
    "title",
    "rich_text",
    "number",
    "select",
    "multi_select",
    "date",
    "checkbox",
    "url",
    "status",
];

/// The longest text content Notion takes.
const MAX_TEXT: usize = 2000;

/// A validation error's message.
#[derive(Debug)]
pub(super) struct Refusal(pub String);

/// Rich text as Notion returns it, from a plain string.
pub(super) fn rich_text_out(text: &str) -> Value {
    if text.is_empty() {
        return json!([]);
    }
    json!([{
        "type": "text",
        "text": { "content": text, "link": null },
        "annotations": { "bold": false, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default" },
        "plain_text": text,
        "href": null,
    }])
}

/// A property value's plain text (see `FakePage::prop_text`).
pub(super) fn plain_text(value: &Value) -> String {
    let kind = value["type"].as_str().unwrap_or_default();
    let inner = &value[kind];
    match kind {
        "title" | "rich_text" => inner
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["plain_text"].as_str().unwrap_or_default())
            .collect(),
        "select" | "status" => inner["name"].as_str().unwrap_or_default().to_string(),
        "multi_select" => inner
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["name"].as_str())
            .collect::<Vec<_>>()
            .join(", "),
        "number" => inner.as_f64().map(|n| n.to_string()).unwrap_or_default(),
        "date" => inner["start"].as_str().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

/// Reads rich text a client sent (`[{ "text": { "content" } }]`) into Notion's answer shape,
/// refusing text over the limit.
fn rich_text_in(at: &str, given: &Value) -> Result<Value, Refusal> {
    let Some(parts) = given.as_array() else {
        return Err(Refusal(format!(
            "{at} should be an array, instead was `{given}`."
        )));
    };
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        let Some(content) = part["text"]["content"].as_str() else {
            return Err(Refusal(format!(
                "{at}[{i}].text.content should be defined."
            )));
        };
        let units = content.encode_utf16().count();
        if units > MAX_TEXT {
            return Err(Refusal(format!(
                "{at}[{i}].text.content.length should be ≤ `{MAX_TEXT}`, instead was `{units}`."
            )));
        }
        text.push_str(content);
    }
    Ok(rich_text_out(&text))
}

/// An option of a select property, created in the schema when new.
fn option(
    ds: &mut DataSource,
    property: &str,
    kind: &str,
    at: &str,
    given: &Value,
) -> Result<Value, Refusal> {
    let Some(name) = given["name"].as_str() else {
        return Err(Refusal(format!("{at}.name should be defined.")));
    };
    if name.contains(',') {
        return Err(Refusal(format!(
            "{at}.name: select option names cannot contain commas."
        )));
    }
    if name.chars().count() > 100 {
        return Err(Refusal(format!("{at}.name.length should be ≤ `100`.")));
    }
    let schema = ds.properties.get_mut(property).unwrap();
    let options = schema[kind]["options"].as_array_mut();
    let existing = options
        .as_ref()
        .and_then(|o| o.iter().find(|o| o["name"] == name).cloned());
    if let Some(existing) = existing {
        return Ok(existing);
    }
    let created =
        json!({ "id": format!("{:08x}", rand::random::<u32>()), "name": name, "color": "default" });
    if schema[kind]["options"].is_array() {
        schema[kind]["options"]
            .as_array_mut()
            .unwrap()
            .push(created.clone());
    } else {
        schema[kind] = json!({ "options": [created.clone()] });
    }
    Ok(created)
}

/// The properties of a page after a write of `given` onto `current`: each given property must
/// exist in the schema and carry a value of its type.
pub(super) fn write(
    ds: &mut DataSource,
    current: &Map<String, Value>,
    given: &Map<String, Value>,
    creating: bool,
) -> Result<Map<String, Value>, Refusal> {
    let mut out = current.clone();
    if creating {
        // A new page has every property, empty.
        for (name, schema) in &ds.properties {
            let kind = schema["type"].as_str().unwrap();
            let empty = match kind {
                "title" | "rich_text" | "multi_select" => json!([]),
                "checkbox" => json!(false),
                _ => Value::Null,
            };
            out.insert(
                name.clone(),
                json!({ "id": schema["id"], "type": kind, kind: empty }),
            );
        }
    }
    for (name, value) in given {
        let Some(schema) = ds.properties.get(name).cloned() else {
            return Err(Refusal(format!("{name} is not a property that exists.")));
        };
        let kind = schema["type"].as_str().unwrap().to_string();
        let at = format!("body.properties.{name}.{kind}");
        let Some(inner) = value.as_object().and_then(|o| o.get(&kind)) else {
            return Err(Refusal(format!("{name} is expected to be {kind}.")));
        };
        let stored = match kind.as_str() {
            "title" | "rich_text" => rich_text_in(&at, inner)?,
            "number" => {
                if !(inner.is_null() || inner.is_number()) {
                    return Err(Refusal(format!(
                        "{at} should be a number or `null`, instead was `{inner}`."
                    )));
                }
                inner.clone()
            }
            "select" | "status" => {
                if inner.is_null() {
                    Value::Null
                } else {
                    option(ds, name, &kind, &at, inner)?
                }
            }
            "multi_select" => {
                let Some(items) = inner.as_array() else {
                    return Err(Refusal(format!(
                        "{at} should be an array, instead was `{inner}`."
                    )));
                };
                let mut options = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    options.push(option(ds, name, &kind, &format!("{at}[{i}]"), item)?);
                }
                Value::Array(options)
            }
            "date" => {
                if inner.is_null() {
                    Value::Null
                } else {
                    let Some(start) = inner["start"].as_str() else {
                        return Err(Refusal(format!("{at}.start should be defined.")));
                    };
                    if chrono::DateTime::parse_from_rfc3339(start).is_err()
                        && chrono::NaiveDate::parse_from_str(start, "%Y-%m-%d").is_err()
                    {
                        return Err(Refusal(format!(
                            "{at}.start should be a valid ISO 8601 date string, instead was `\"{start}\"`."
                        )));
                    }
                    json!({ "start": start, "end": inner["end"], "time_zone": null })
                }
            }
            _ => inner.clone(),
        };
        out.insert(
            name.clone(),
            json!({ "id": schema["id"], "type": kind, kind: stored }),
        );
    }
    Ok(out)
}

/// Blocks a client sent, checked and given ids, as Notion returns them.
pub(super) fn blocks(children: &[Value]) -> Result<Vec<Value>, Refusal> {
    let mut out = Vec::new();
    for (i, block) in children.iter().enumerate() {
        let Some(kind) = block["type"].as_str() else {
            return Err(Refusal(format!(
                "body.children[{i}].type should be defined."
            )));
        };
        let Some(content) = block.get(kind) else {
            return Err(Refusal(format!(
                "body.children[{i}].{kind} should be defined."
            )));
        };
        let mut content = content.clone();
        if let Some(rich) = content.get("rich_text") {
            content["rich_text"] =
                rich_text_in(&format!("body.children[{i}].{kind}.rich_text"), rich)?;
        }
        out.push(json!({
            "object": "block",
            "id": format!("{:08x}-0000-4000-8000-{:012x}", rand::random::<u32>(), rand::random::<u32>()),
            "type": kind,
            "has_children": false,
            kind: content,
        }));
    }
    Ok(out)
}

/// Whether a page's properties match a query filter (`equals` on title and rich text, `and`,
/// `or`).
pub(super) fn matches(filter: &Value, properties: &Map<String, Value>) -> bool {
    if let Some(all) = filter["and"].as_array() {
        return all.iter().all(|f| matches(f, properties));
    }
    if let Some(any) = filter["or"].as_array() {
        return any.iter().any(|f| matches(f, properties));
    }
    let Some(name) = filter["property"].as_str() else {
        return false;
    };
    let Some(value) = properties.get(name) else {
        return false;
    };
    for kind in ["title", "rich_text"] {
        if let Some(equals) = filter[kind]["equals"].as_str() {
            return plain_text(value) == equals;
        }
    }
    false
}
