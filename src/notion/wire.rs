//! Notion's objects as patchbay reads them (API version 2025-09-03), and the property values it
//! writes. Only the fields patchbay uses are typed; property values stay JSON, read through
//! [`plain_text`] and written through the builders below, which keep every text within
//! Notion's limit of 2,000 characters.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

/// The most characters Notion takes in one rich text object (counted as JavaScript does, in
/// UTF-16 code units).
pub const MAX_TEXT: usize = 2000;

/// `GET /v1/users/me`: the integration's bot user.
#[derive(Debug, Clone, Deserialize)]
pub struct BotUser {
    /// The bot's id.
    pub id: String,
    /// The integration's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A database: since 2025-09-03 a container of data sources.
#[derive(Debug, Clone, Deserialize)]
pub struct Database {
    /// Its id.
    pub id: String,
    /// Its title.
    #[serde(default)]
    pub title: Vec<RichText>,
    /// Its link.
    #[serde(default)]
    pub url: Option<String>,
    /// The data sources it holds.
    #[serde(default)]
    pub data_sources: Vec<DataSourceRef>,
}

impl Database {
    /// The title as plain text.
    pub fn title(&self) -> String {
        self.title.iter().map(|t| t.plain_text.as_str()).collect()
    }
}

/// A data source as a database lists it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct DataSourceRef {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// A data source: a table with its schema.
#[derive(Debug, Clone, Deserialize)]
pub struct DataSource {
    /// Its id.
    pub id: String,
    /// Property name → its schema.
    #[serde(default)]
    pub properties: BTreeMap<String, PropertySchema>,
}

impl DataSource {
    /// The name of the title property (every data source has exactly one, whatever it is
    /// called).
    pub fn title_property(&self) -> Option<&str> {
        self.properties
            .iter()
            .find(|(_, schema)| schema.kind == "title")
            .map(|(name, _)| name.as_str())
    }
}

/// One property of a schema.
#[derive(Debug, Clone, Deserialize)]
pub struct PropertySchema {
    /// Its id.
    #[serde(default)]
    pub id: String,
    /// Its type (`title`, `rich_text`, `number`, `select`, ...).
    #[serde(rename = "type")]
    pub kind: String,
}

/// A page (a row of a data source).
#[derive(Debug, Clone, Deserialize)]
pub struct Page {
    /// Its id.
    pub id: String,
    /// Its link.
    #[serde(default)]
    pub url: Option<String>,
    /// Property name → value, as Notion returns it.
    #[serde(default)]
    pub properties: serde_json::Map<String, Value>,
    /// Whether it is in the trash.
    #[serde(default)]
    pub in_trash: bool,
    /// Whether it is archived (the older name of the same flag).
    #[serde(default)]
    pub archived: bool,
}

impl Page {
    /// The plain text of property `name` (see [`plain_text`]); empty when absent.
    pub fn text(&self, name: &str) -> String {
        self.properties
            .get(name)
            .map(plain_text)
            .unwrap_or_default()
    }
}

/// A piece of rich text.
#[derive(Debug, Clone, Deserialize)]
pub struct RichText {
    /// Its text without formatting.
    #[serde(default)]
    pub plain_text: String,
}

/// A list answer (`object: "list"`).
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    /// This page of results.
    pub results: Vec<T>,
    /// Whether more follow.
    #[serde(default)]
    pub has_more: bool,
    /// The cursor of the next page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// A property value as plain text: the text of a title or rich text, a select's name, a
/// multi-select's names joined by `, `, a number, a date's start; empty for anything else.
pub fn plain_text(value: &Value) -> String {
    let kind = value["type"].as_str().unwrap_or_default();
    let inner = &value[kind];
    match kind {
        "title" | "rich_text" => inner
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                t["plain_text"]
                    .as_str()
                    .or_else(|| t["text"]["content"].as_str())
                    .unwrap_or_default()
            })
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

/// `text` cut to Notion's limit of [`MAX_TEXT`] UTF-16 code units, ending in `…` when cut.
pub fn fit_text(text: &str) -> String {
    if text.encode_utf16().count() <= MAX_TEXT {
        return text.to_string();
    }
    let mut out = String::new();
    let mut units = 0;
    for c in text.chars() {
        if units + c.len_utf16() > MAX_TEXT - 1 {
            break;
        }
        units += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// Rich text made of `text`, fitted to the limit.
pub fn rich_text(text: &str) -> Value {
    if text.is_empty() {
        return json!([]);
    }
    json!([{ "type": "text", "text": { "content": fit_text(text) } }])
}

/// A title property value.
pub fn title_value(text: &str) -> Value {
    json!({ "title": rich_text(text) })
}

/// A rich text property value.
pub fn rich_text_value(text: &str) -> Value {
    json!({ "rich_text": rich_text(text) })
}

/// A number property value (`None` clears it).
pub fn number_value(number: Option<f64>) -> Value {
    json!({ "number": number })
}

/// A select property value (`None` clears it). Names may not contain commas.
pub fn select_value(name: Option<&str>) -> Value {
    match name {
        Some(name) => json!({ "select": { "name": option_name(name) } }),
        None => json!({ "select": null }),
    }
}

/// A multi-select property value.
pub fn multi_select_value(names: &[String]) -> Value {
    let options: Vec<Value> = names
        .iter()
        .map(|name| json!({ "name": option_name(name) }))
        .collect();
    json!({ "multi_select": options })
}

/// A date property value (RFC 3339 start; `None` clears it).
pub fn date_value(start: Option<&str>) -> Value {
    match start {
        Some(start) => json!({ "date": { "start": start } }),
        None => json!({ "date": null }),
    }
}

/// Notion refuses commas in option names and cuts them at 100 characters.
fn option_name(name: &str) -> String {
    crate::model::shorten(&name.replace(',', " "), 100)
}

/// A block of `kind` (`paragraph`, `bulleted_list_item`, ...) holding `text`.
pub fn text_block(kind: &str, text: &str) -> Value {
    json!({ "object": "block", "type": kind, kind: { "rich_text": rich_text(text) } })
}

/// A callout block with an emoji icon.
pub fn callout_block(emoji: &str, text: &str) -> Value {
    json!({
        "object": "block",
        "type": "callout",
        "callout": { "rich_text": rich_text(text), "icon": { "type": "emoji", "emoji": emoji } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_fitted_in_utf16_units() {
        assert_eq!(fit_text("short"), "short");
        let long = "a".repeat(2500);
        let fitted = fit_text(&long);
        assert_eq!(fitted.encode_utf16().count(), MAX_TEXT);
        assert!(fitted.ends_with('…'));
        // An emoji is two UTF-16 units: 1,500 of them are 3,000 units.
        let emoji = "🔥".repeat(1500);
        let fitted = fit_text(&emoji);
        assert!(fitted.encode_utf16().count() <= MAX_TEXT);
        assert!(fitted.encode_utf16().count() >= MAX_TEXT - 2);
    }

    #[test]
    fn plain_text_reads_every_kind_patchbay_writes() {
        let page: Page = serde_json::from_value(json!({
            "id": "p", "properties": {
                "Name": {"type": "title", "title": [{"plain_text": "api"}, {"plain_text": "-1"}]},
                "Status": {"type": "select", "select": {"name": "Up"}},
                "Tags": {"type": "multi_select", "multi_select": [{"name": "a"}, {"name": "b"}]},
                "Latency": {"type": "number", "number": 12.5},
                "Empty": {"type": "number", "number": null},
                "When": {"type": "date", "date": {"start": "2026-12-01T10:00:00Z"}}
            }
        }))
        .unwrap();
        assert_eq!(page.text("Name"), "api-1");
        assert_eq!(page.text("Status"), "Up");
        assert_eq!(page.text("Tags"), "a, b");
        assert_eq!(page.text("Latency"), "12.5");
        assert_eq!(page.text("Empty"), "");
        assert_eq!(page.text("When"), "2026-12-01T10:00:00Z");
        assert_eq!(page.text("Missing"), "");
    }

    #[test]
    fn option_names_lose_their_commas() {
        assert_eq!(
            select_value(Some("a,b")),
            json!({"select": {"name": "a b"}})
        );
    }
}
