//! Block children: the blocks a request appends (to a page or a block, or with a new page),
//! checked as Notion checks them (at most 100 blocks per array, children nested at most two
//! levels deep in one request, at most 1,000 blocks in all, rich text limits, no unknown
//! fields), stored in order, and listed back as Notion writes blocks.

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::objects::partial_user;
use super::values::{Bad, array_of, body_failed, only_keys, rich_text};
use super::*;

/// The block types the fake serves, with the fields their content may have.
const SERVED: [(&str, &[&str]); 12] = [
    ("paragraph", &["rich_text", "color", "children"]),
    ("bulleted_list_item", &["rich_text", "color", "children"]),
    ("numbered_list_item", &["rich_text", "color", "children"]),
    ("quote", &["rich_text", "color", "children"]),
    ("toggle", &["rich_text", "color", "children"]),
    ("to_do", &["rich_text", "checked", "color", "children"]),
    (
        "heading_1",
        &["rich_text", "color", "is_toggleable", "children"],
    ),
    (
        "heading_2",
        &["rich_text", "color", "is_toggleable", "children"],
    ),
    (
        "heading_3",
        &["rich_text", "color", "is_toggleable", "children"],
    ),
    ("callout", &["rich_text", "icon", "color", "children"]),
    ("code", &["rich_text", "language", "caption"]),
    ("divider", &[]),
];

/// Block types Notion has that the fake does not serve.
const NOT_SERVED: [&str; 20] = [
    "bookmark",
    "breadcrumb",
    "column_list",
    "column",
    "embed",
    "equation",
    "file",
    "image",
    "link_preview",
    "link_to_page",
    "pdf",
    "synced_block",
    "table",
    "table_row",
    "table_of_contents",
    "template",
    "video",
    "audio",
    "child_page",
    "child_database",
];

/// The colors a block's `color` may be.
fn block_color(color: &str) -> bool {
    let base = color.strip_suffix("_background").unwrap_or(color);
    super::values::COLORS.contains(&base)
}

/// A block of a request, checked: its type, its content as Notion returns it, its children.
pub(super) struct NewBlock {
    kind: String,
    content: Value,
    children: Vec<NewBlock>,
}

/// How many blocks one request may carry in all.
const MAX_BLOCKS: usize = 1000;

/// Checks the `children` of a request (at `path`, e.g. `body.children`) and returns them as
/// blocks to append.
pub(super) fn check_children(value: Option<&Value>, path: &str) -> Result<Vec<NewBlock>, Bad> {
    let mut total = 0;
    let blocks = check_array(value, path, 1, &mut total)?;
    if total > MAX_BLOCKS {
        return Err(Bad::Invalid(format!(
            "body failed validation: {path} should have at most `{MAX_BLOCKS}` block elements in \
             all, instead was `{total}`."
        )));
    }
    Ok(blocks)
}

fn check_array(
    value: Option<&Value>,
    path: &str,
    depth: usize,
    total: &mut usize,
) -> Result<Vec<NewBlock>, Bad> {
    let items = array_of(value, path)?;
    *total += items.len();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| check_block(item, &format!("{path}[{i}]"), depth, total))
        .collect()
}

fn check_block(
    value: &Value,
    path: &str,
    depth: usize,
    total: &mut usize,
) -> Result<NewBlock, Bad> {
    let object = value
        .as_object()
        .ok_or_else(|| body_failed(path, "an object", Some(value)))?;
    if let Some(kind) = object.get("object")
        && kind != "block"
    {
        return Err(body_failed(
            &format!("{path}.object"),
            "`\"block\"`",
            Some(kind),
        ));
    }
    let kinds: Vec<&String> = object
        .keys()
        .filter(|k| *k != "object" && *k != "type")
        .collect();
    let kind = match kinds.as_slice() {
        [kind] => kind.as_str(),
        [] => {
            let named = object
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("paragraph");
            return Err(body_failed(&format!("{path}.{named}"), "defined", None));
        }
        [_, second, ..] => {
            return Err(body_failed(
                &format!("{path}.{second}"),
                "not present",
                object.get(second.as_str()),
            ));
        }
    };
    if let Some(named) = object.get("type")
        && named != kind
    {
        return Err(body_failed(
            &format!("{path}.{}", named.as_str().unwrap_or_default()),
            "defined",
            None,
        ));
    }
    let Some((_, fields)) = SERVED.iter().find(|(k, _)| *k == kind) else {
        if NOT_SERVED.contains(&kind) {
            return Err(Bad::Unserved(format!(
                "{path}: the fake does not serve {kind} blocks"
            )));
        }
        return Err(body_failed(
            &format!("{path}.{kind}"),
            "not present",
            object.get(kind),
        ));
    };
    let at = format!("{path}.{kind}");
    let given = &object[kind];
    let content = given
        .as_object()
        .ok_or_else(|| body_failed(&at, "an object", Some(given)))?;
    only_keys(content, fields, &at)?;
    let mut out = Map::new();
    if fields.contains(&"rich_text") {
        out.insert(
            "rich_text".into(),
            rich_text(content.get("rich_text"), &format!("{at}.rich_text"))?,
        );
    }
    if fields.contains(&"color") {
        let color = match content.get("color") {
            None => "default",
            Some(Value::String(c)) if block_color(c) => c.as_str(),
            Some(other) => return Err(body_failed(&format!("{at}.color"), "a color", Some(other))),
        };
        out.insert("color".into(), json!(color));
    }
    for flag in ["is_toggleable", "checked"] {
        if fields.contains(&flag) {
            let on = match content.get(flag) {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(body_failed(
                        &format!("{at}.{flag}"),
                        "a boolean",
                        Some(other),
                    ));
                }
            };
            out.insert(flag.into(), json!(on));
        }
    }
    if kind == "callout" {
        out.insert(
            "icon".into(),
            content.get("icon").cloned().unwrap_or(Value::Null),
        );
    }
    if kind == "code" {
        let language = content.get("language");
        let language = language
            .and_then(Value::as_str)
            .ok_or_else(|| body_failed(&format!("{at}.language"), "a string", language))?;
        out.insert("language".into(), json!(language));
        let caption = match content.get("caption") {
            None => json!([]),
            some => rich_text(some, &format!("{at}.caption"))?,
        };
        out.insert("caption".into(), caption);
    }
    let children = match content.get("children") {
        None => Vec::new(),
        Some(nested) if depth >= 2 => {
            return Err(body_failed(
                &format!("{at}.children"),
                "not present",
                Some(nested),
            ));
        }
        nested => check_array(nested, &format!("{at}.children"), depth + 1, total)?,
    };
    Ok(NewBlock {
        kind: kind.to_string(),
        content: Value::Object(out),
        children,
    })
}

/// Appends `blocks` to the page or block `parent` (compact id), after its child `after`
/// (compact id) or at the end; returns the objects of the blocks appended at the top level.
pub(super) fn append(
    st: &mut St,
    parent: &str,
    blocks: Vec<NewBlock>,
    after: Option<&str>,
) -> Vec<Value> {
    let now = notion_time(Utc::now());
    let parent_field = if st.blocks.contains_key(parent) {
        json!({ "type": "block_id", "block_id": dashed(parent) })
    } else {
        json!({ "type": "page_id", "page_id": dashed(parent) })
    };
    let mut ids = Vec::new();
    let mut nested = Vec::new();
    for block in blocks {
        let id = new_id();
        let key = compact(&id);
        let mut object = json!({
            "object": "block",
            "id": id,
            "parent": parent_field,
            "created_time": now,
            "last_edited_time": now,
            "created_by": partial_user(st),
            "last_edited_by": partial_user(st),
            "has_children": false,
            "archived": false,
            "in_trash": false,
            "type": block.kind,
        });
        object[&block.kind] = block.content;
        st.blocks.insert(
            key.clone(),
            Block {
                parent: parent.to_string(),
                object,
            },
        );
        if !block.children.is_empty() {
            nested.push((key.clone(), block.children));
        }
        ids.push(key);
    }
    let list = st.children.entry(parent.to_string()).or_default();
    let at = after
        .and_then(|after| list.iter().position(|c| c == after))
        .map_or(list.len(), |i| i + 1);
    list.splice(at..at, ids.iter().cloned());
    for (key, children) in nested {
        append(st, &key, children, None);
    }
    ids.iter().map(|key| block_object(st, key)).collect()
}

/// A block as Notion returns it, `has_children` worked out.
pub(super) fn block_object(st: &St, key: &str) -> Value {
    let mut object = st.blocks[key].object.clone();
    object["has_children"] = json!(st.children.get(key).is_some_and(|c| !c.is_empty()));
    object
}

/// The child blocks of a page or block (compact id), in order.
pub(super) fn child_objects(st: &St, parent: &str) -> Vec<Value> {
    st.children
        .get(parent)
        .into_iter()
        .flatten()
        .map(|key| block_object(st, key))
        .collect()
}
