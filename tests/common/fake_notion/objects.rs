//! The objects as Notion writes them for API version 2025-09-03 (field for field as
//! `@notionhq/client`'s response types have them): the bot user, databases (with their
//! `data_sources`), data sources (with the `properties` schema), pages (with every property of
//! the schema, empty ones as Notion writes them empty), rich text and lists.

use serde_json::{Map, Value, json};

use super::*;

/// Plain rich text of `text`, as Notion returns a title it was given as one piece.
pub(super) fn text_items(text: &str) -> Value {
    if text.is_empty() {
        return json!([]);
    }
    json!([{
        "type": "text",
        "text": { "content": text, "link": null },
        "annotations": default_annotations(),
        "plain_text": text,
        "href": null,
    }])
}

pub(super) fn default_annotations() -> Value {
    json!({
        "bold": false,
        "italic": false,
        "strikethrough": false,
        "underline": false,
        "code": false,
        "color": "default",
    })
}

/// The `plain_text` of a rich text array, joined.
pub(super) fn plain_text(items: &Value) -> String {
    items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["plain_text"].as_str())
        .collect()
}

/// A property value (`{"id", "type", "<type>": ...}`) as plain text (see
/// [`FakePage::prop_text`]).
pub(super) fn value_text(value: &Value) -> String {
    let kind = value["type"].as_str().unwrap_or_default();
    let inner = &value[kind];
    match kind {
        "title" | "rich_text" => plain_text(inner),
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
        "checkbox" => inner.as_bool().map(|b| b.to_string()).unwrap_or_default(),
        "url" | "email" | "phone_number" | "created_time" | "last_edited_time" => {
            inner.as_str().unwrap_or_default().to_string()
        }
        _ => String::new(),
    }
}

pub(super) fn partial_user(st: &St) -> Value {
    json!({ "object": "user", "id": st.bot_id })
}

/// `GET /v1/users/me`: the integration's bot user, owned by the workspace.
pub(super) fn bot_user(st: &St) -> Value {
    json!({
        "object": "user",
        "id": st.bot_id,
        "name": BOT_NAME,
        "avatar_url": null,
        "type": "bot",
        "bot": {
            "owner": { "type": "workspace", "workspace": true },
            "workspace_name": WORKSPACE_NAME,
            "workspace_limits": { "max_file_upload_size_in_bytes": 5_242_880 },
        },
    })
}

fn notion_url(id: &str) -> String {
    format!("https://www.notion.so/{}", compact(id))
}

pub(super) fn database_object(st: &St, db: &Database) -> Value {
    let data_sources: Vec<Value> = db
        .sources
        .iter()
        .filter_map(|id| st.source_index(&compact(id)))
        .map(|i| json!({ "id": st.sources[i].id, "name": st.sources[i].name }))
        .collect();
    json!({
        "object": "database",
        "id": db.id,
        "title": text_items(&db.title),
        "description": [],
        "parent": { "type": "page_id", "page_id": db.parent_page },
        "is_inline": false,
        "in_trash": false,
        "archived": false,
        "is_locked": false,
        "created_time": notion_time(db.created),
        "last_edited_time": notion_time(db.created),
        "created_by": partial_user(st),
        "last_edited_by": partial_user(st),
        "data_sources": data_sources,
        "icon": null,
        "cover": null,
        "url": notion_url(&db.id),
        "public_url": null,
    })
}

pub(super) fn property_object(property: &Property) -> Value {
    let mut object = json!({
        "id": property.id,
        "name": property.name,
        "description": null,
        "type": property.kind,
    });
    object[&property.kind] = property.config.clone();
    object
}

pub(super) fn data_source_object(st: &St, source: &DataSource) -> Value {
    let properties: Map<String, Value> = source
        .properties
        .iter()
        .map(|p| (p.name.clone(), property_object(p)))
        .collect();
    let parent_page = st
        .database(&compact(&source.database))
        .map(|d| d.parent_page.clone())
        .unwrap_or_default();
    json!({
        "object": "data_source",
        "id": source.id,
        "created_time": notion_time(source.created),
        "last_edited_time": notion_time(source.edited),
        "created_by": partial_user(st),
        "last_edited_by": partial_user(st),
        "title": text_items(&source.name),
        "description": [],
        "parent": { "type": "database_id", "database_id": source.database },
        "database_parent": { "type": "page_id", "page_id": parent_page },
        "is_inline": false,
        "archived": false,
        "in_trash": false,
        "properties": properties,
        "icon": null,
        "cover": null,
        "url": notion_url(&source.id),
        "public_url": null,
    })
}

/// What Notion writes under a property's type key when the page has no value for it.
fn empty_value(st: &St, property: &Property, page: &Page, index: usize) -> Value {
    match property.kind.as_str() {
        "title" | "rich_text" | "multi_select" | "people" | "relation" | "files" => json!([]),
        "checkbox" => json!(false),
        // A new page takes the first option of the "To-do" group, as Notion does.
        "status" => property.config["options"].get(0).map_or(
            Value::Null,
            |o| json!({ "id": o["id"], "name": o["name"], "color": o["color"] }),
        ),
        "created_time" => json!(notion_time(page.created)),
        "last_edited_time" => json!(notion_time(page.edited)),
        "created_by" | "last_edited_by" => partial_user(st),
        "formula" => json!({ "type": "string", "string": null }),
        "rollup" => json!({
            "type": "number",
            "number": null,
            "function": property.config["function"].as_str().unwrap_or("count"),
        }),
        "unique_id" => json!({
            "prefix": property.config["prefix"],
            "number": index + 1,
        }),
        "button" => json!({}),
        _ => Value::Null,
    }
}

/// The page's `properties`: every property of its data source's schema, by name.
pub(super) fn page_properties(st: &St, page: &Page) -> Value {
    let Some(source) = st.source_index(&compact(&page.data_source)) else {
        return json!({});
    };
    let index = st.pages.iter().position(|p| p.id == page.id).unwrap_or(0);
    let properties: Map<String, Value> = st.sources[source]
        .properties
        .iter()
        .map(|property| {
            let inner = match page.values.get(&property.id) {
                Some((kind, value)) if *kind == property.kind => value.clone(),
                _ => empty_value(st, property, page, index),
            };
            let mut value = json!({ "id": property.id, "type": property.kind });
            value[&property.kind] = inner;
            if property.kind == "relation" {
                value["has_more"] = json!(false);
            }
            (property.name.clone(), value)
        })
        .collect();
    Value::Object(properties)
}

/// `https://www.notion.so/<Title-words>-<32 hex>`, as Notion links a page.
pub(super) fn page_url(st: &St, page: &Page) -> String {
    let title = page_properties(st, page)
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .find(|v| v["type"] == "title")
        .map(value_text)
        .unwrap_or_default();
    let slug: Vec<String> = title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    if slug.is_empty() {
        notion_url(&page.id)
    } else {
        format!(
            "https://www.notion.so/{}-{}",
            slug.join("-"),
            compact(&page.id)
        )
    }
}

pub(super) fn page_object(st: &St, page: &Page) -> Value {
    let database = st
        .source_index(&compact(&page.data_source))
        .map(|i| st.sources[i].database.clone())
        .unwrap_or_default();
    json!({
        "object": "page",
        "id": page.id,
        "created_time": notion_time(page.created),
        "last_edited_time": notion_time(page.edited),
        "created_by": partial_user(st),
        "last_edited_by": partial_user(st),
        "cover": null,
        "icon": null,
        "parent": {
            "type": "data_source_id",
            "data_source_id": page.data_source,
            "database_id": database,
        },
        "archived": page.in_trash,
        "in_trash": page.in_trash,
        "is_locked": false,
        "properties": page_properties(st, page),
        "url": page_url(st, page),
        "public_url": null,
    })
}

/// A list answer: `kind` is `page_or_data_source` for a query, `block` for block children.
pub(super) fn list(results: Vec<Value>, next_cursor: Option<String>, kind: &str) -> Value {
    let mut list = json!({
        "object": "list",
        "results": results,
        "next_cursor": next_cursor,
        "has_more": next_cursor.is_some(),
        "type": kind,
    });
    list[kind] = json!({});
    list
}
