//! The routes, as Notion answers them: auth and version first, then the outage, injected
//! faults and the rate limit, then the object routes. Objects are written in Notion's shapes.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::values::{self, Refusal};
use super::{DataSource, Fault, Inner, Page, Recorded, St, VERSION, compact};

const PAGE_SIZE: usize = 100;

pub(super) fn router(inner: Arc<Inner>) -> Router {
    Router::new().fallback(handle).with_state(inner)
}

/// Notion's error object.
fn error(status: u16, code: &str, message: &str) -> Response {
    let request_id = format!("{:08x}-fake-request", rand::random::<u32>());
    let body = json!({
        "object": "error",
        "status": status,
        "code": code,
        "message": message,
        "request_id": request_id,
    });
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert("retry-after", seconds.to_string().parse().unwrap());
    response
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let index = {
        let mut st = inner.lock();
        st.requests.push(Recorded {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            status: 0,
            at: Instant::now(),
            body: json_body.clone(),
        });
        st.requests.len() - 1
    };
    inner.bump();
    let response = answer(
        &inner,
        &method,
        &path,
        query.as_deref(),
        &headers,
        &body,
        json_body,
    )
    .await;
    inner.lock().requests[index].status = response.status().as_u16();
    inner.bump();
    response
}

async fn answer(
    inner: &Arc<Inner>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    raw: &Bytes,
    body: Option<Value>,
) -> Response {
    let bearer = format!("Bearer {}", inner.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        return error(401, "unauthorized", "API token is invalid.");
    }
    match headers.get("notion-version").and_then(|v| v.to_str().ok()) {
        None => {
            inner
                .lock()
                .violations
                .push(format!("{method} {path}: no Notion-Version"));
            return error(
                400,
                "missing_version",
                "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
            );
        }
        Some(VERSION) => {}
        Some(other) => {
            inner
                .lock()
                .violations
                .push(format!("{method} {path}: Notion-Version {other}"));
            return error(
                400,
                "validation_error",
                &format!(
                    "Notion-Version header failed validation: `{other}` is not a supported version."
                ),
            );
        }
    }
    if !raw.is_empty() && body.is_none() {
        inner
            .lock()
            .violations
            .push(format!("{method} {path}: a body that is not JSON"));
        return error(400, "invalid_json", "Error parsing JSON body.");
    }
    let (fault, wait) = {
        let mut st = inner.lock();
        if st.outage {
            return error(
                503,
                "service_unavailable",
                "Notion is unavailable, please try again later.",
            );
        }
        let fault = st.fault_for(path);
        let wait = match fault {
            Some(Fault::Delay(_) | Fault::Hang) | None => st.take_token(),
            Some(_) => None,
        };
        (fault, wait)
    };
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            return with_retry_after(
                error(
                    429,
                    "rate_limited",
                    "You have been rate limited. Please try again in a few minutes.",
                ),
                retry_after_secs,
            );
        }
        Some(Fault::Overloaded) => {
            return with_retry_after(
                error(
                    529,
                    "service_overload",
                    "Notion is overloaded, please try again later.",
                ),
                1,
            );
        }
        Some(Fault::Conflict) => {
            return error(
                409,
                "conflict_error",
                "Conflict occurred while saving. Please try again.",
            );
        }
        Some(Fault::Status(status)) => {
            let code = match status {
                502 => "bad_gateway",
                503 => "service_unavailable",
                504 => "gateway_timeout",
                _ => "internal_server_error",
            };
            return error(status, code, "Unexpected error occurred.");
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Hang) => std::future::pending::<()>().await,
        None => {}
    }
    if let Some(wait) = wait {
        return with_retry_after(
            error(
                429,
                "rate_limited",
                "You have been rate limited. Please try again in a few minutes.",
            ),
            wait.as_secs_f64().ceil().max(1.0) as u64,
        );
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut st = inner.lock();
    let st = &mut *st;
    let response = match (method.as_str(), segments.as_slice()) {
        ("GET", ["v1", "users", "me"]) => ok(json!({
            "object": "user",
            "id": "9a3b5ae0-c6e6-482d-b0e1-ed315ee6dc57",
            "type": "bot",
            "name": "patchbay (fake)",
            "avatar_url": null,
            "bot": { "owner": { "type": "workspace", "workspace": true }, "workspace_name": "Fake workspace" },
        })),
        ("GET", ["v1", "databases", id]) => database(st, id),
        ("GET", ["v1", "data_sources", id]) => match source_key(st, id) {
            Ok(key) => ok(data_source_object(st, &st.sources[&key])),
            Err(response) => response,
        },
        ("PATCH", ["v1", "data_sources", id]) => update_source(st, id, body.as_ref()),
        ("POST", ["v1", "data_sources", id, "query"]) => query_source(st, id, body.as_ref()),
        ("POST", ["v1", "pages"]) => create_page(st, body.as_ref()),
        ("GET", ["v1", "pages", id]) => match page_index(st, id) {
            Ok(index) => ok(page_object(&st.pages[index])),
            Err(response) => response,
        },
        ("PATCH", ["v1", "pages", id]) => update_page(st, id, body.as_ref()),
        ("GET", ["v1", "blocks", id, "children"]) => list_children(st, id, query),
        ("PATCH", ["v1", "blocks", id, "children"]) => append_children(st, id, body.as_ref()),
        _ => {
            st.violations
                .push(format!("{method} {path}: not a route of the API"));
            error(400, "invalid_request_url", "Invalid request URL.")
        }
    };
    if response.status() == StatusCode::BAD_REQUEST {
        st.violations.push(format!("{method} {path}: answered 400"));
    }
    response
}

fn refused(st: &mut St, refusal: Refusal) -> Response {
    let _ = st;
    error(400, "validation_error", &refusal.0)
}

fn bad_id(kind: &str, id: &str) -> Response {
    error(
        400,
        "validation_error",
        &format!(
            "path failed validation: path.{kind}_id should be a valid uuid, instead was `\"{id}\"`."
        ),
    )
}

fn database(st: &St, id: &str) -> Response {
    let Some(key) = compact(id) else {
        return bad_id("database", id);
    };
    match st.databases.get(&key) {
        Some(db) if db.shared => ok(json!({
            "object": "database",
            "id": db.id,
            "title": values::rich_text_out(&db.title),
            "description": [],
            "url": format!("https://www.notion.so/{key}"),
            "is_inline": false,
            "in_trash": false,
            "data_sources": db.data_sources.iter().map(|ds| {
                let ds = &st.sources[ds];
                json!({ "id": ds.id, "name": ds.name })
            }).collect::<Vec<_>>(),
        })),
        _ => error(
            404,
            "object_not_found",
            &format!(
                "Could not find database with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
            ),
        ),
    }
}

// The error is the answer itself, returned once per request by a test server.
#[allow(clippy::result_large_err)]
fn source_key(st: &St, id: &str) -> Result<String, Response> {
    let Some(key) = compact(id) else {
        return Err(bad_id("data_source", id));
    };
    match st.sources.get(&key) {
        Some(ds) if st.databases[&ds.database].shared => Ok(key),
        _ => Err(error(
            404,
            "object_not_found",
            &format!(
                "Could not find data_source with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
            ),
        )),
    }
}

pub(super) fn data_source_object(st: &St, ds: &DataSource) -> Value {
    let database = &st.databases[&ds.database];
    json!({
        "object": "data_source",
        "id": ds.id,
        "title": values::rich_text_out(&ds.name),
        "properties": ds.properties,
        "parent": { "type": "database_id", "database_id": database.id },
        "database_parent": { "type": "workspace", "workspace": true },
        "in_trash": false,
    })
}

fn update_source(st: &mut St, id: &str, body: Option<&Value>) -> Response {
    let key = match source_key(st, id) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let Some(properties) = body.and_then(|b| b["properties"].as_object()) else {
        return refused(st, Refusal("body.properties should be an object.".into()));
    };
    let mut changes = Vec::new();
    for (name, configuration) in properties {
        if configuration.is_null() {
            changes.push((name.clone(), None));
            continue;
        }
        let Some(kind) = configuration.as_object().and_then(|o| {
            o.keys()
                .find(|k| values::TYPES.contains(&k.as_str()))
                .cloned()
        }) else {
            return refused(
                st,
                Refusal(format!(
                    "body.properties.{name} should define a property type."
                )),
            );
        };
        changes.push((name.clone(), Some((kind, configuration.clone()))));
    }
    let mut violations = Vec::new();
    let mut ids = Vec::new();
    for _ in &changes {
        ids.push(st.new_id());
    }
    let ds = st.sources.get_mut(&key).unwrap();
    for ((name, change), id) in changes.into_iter().zip(ids) {
        match change {
            None => {
                violations.push(format!("PATCH data source {id}: deleted property {name:?}"));
                ds.properties.remove(&name);
            }
            Some((kind, configuration)) => {
                if let Some(existing) = ds.properties.get(&name)
                    && existing["type"] != kind.as_str()
                {
                    violations.push(format!(
                        "PATCH data source: property {name:?} re-typed from {} to {kind}",
                        existing["type"]
                    ));
                }
                let mut property = json!({ "id": &id[..8], "name": name, "type": kind });
                let mut inner = configuration[&kind].clone();
                if matches!(kind.as_str(), "select" | "multi_select") {
                    let options: Vec<Value> = inner["options"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|mut o| {
                            o["id"] = json!(format!("{:08x}", rand::random::<u32>()));
                            if o["color"].is_null() {
                                o["color"] = json!("default");
                            }
                            o
                        })
                        .collect();
                    inner = json!({ "options": options });
                }
                property[&kind] = inner;
                ds.properties.insert(name, property);
            }
        }
    }
    st.violations.extend(violations);
    ok(data_source_object(st, &st.sources[&key]))
}

fn query_source(st: &mut St, id: &str, body: Option<&Value>) -> Response {
    let key = match source_key(st, id) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let empty = json!({});
    let body = body.unwrap_or(&empty);
    let size = body["page_size"].as_u64().unwrap_or(PAGE_SIZE as u64) as usize;
    if size == 0 || size > PAGE_SIZE {
        return refused(
            st,
            Refusal(format!(
                "body.page_size should be ≤ `100`, instead was `{size}`."
            )),
        );
    }
    let filter = &body["filter"];
    let matching: Vec<&Page> = st
        .pages
        .iter()
        .filter(|p| p.data_source == key && !p.in_trash)
        .filter(|p| filter.is_null() || values::matches(filter, &p.properties))
        .collect();
    let start = match body["start_cursor"].as_str() {
        None => 0,
        Some(cursor) => match matching.iter().position(|p| p.id == cursor) {
            Some(at) => at,
            None => {
                return refused(
                    st,
                    Refusal("body.start_cursor should be a valid cursor.".into()),
                );
            }
        },
    };
    let page: Vec<Value> = matching[start..]
        .iter()
        .take(size)
        .map(|p| page_object(p))
        .collect();
    let next = matching.get(start + size).map(|p| p.id.clone());
    ok(json!({
        "object": "list",
        "results": page,
        "next_cursor": next,
        "has_more": next.is_some(),
        "type": "page_or_data_source",
        "page_or_data_source": {},
    }))
}

#[allow(clippy::result_large_err)]
fn page_index(st: &St, id: &str) -> Result<usize, Response> {
    let Some(key) = compact(id) else {
        return Err(bad_id("page", id));
    };
    st.pages
        .iter()
        .position(|p| compact(&p.id).as_deref() == Some(key.as_str()))
        .ok_or_else(|| {
            error(
                404,
                "object_not_found",
                &format!("Could not find page with ID: {id}. Make sure the relevant pages and databases are shared with your integration."),
            )
        })
}

pub(super) fn page_object(page: &Page) -> Value {
    json!({
        "object": "page",
        "id": page.id,
        "created_time": page.created,
        "last_edited_time": page.created,
        "in_trash": page.in_trash,
        "archived": page.in_trash,
        "parent": { "type": "data_source_id", "data_source_id": page.data_source },
        "properties": page.properties,
        "url": format!("https://www.notion.so/{}", compact(&page.id).unwrap()),
    })
}

fn create_page(st: &mut St, body: Option<&Value>) -> Response {
    if st.no_insert {
        return error(
            403,
            "restricted_resource",
            "Insufficient permissions for this endpoint.",
        );
    }
    let Some(body) = body else {
        return refused(st, Refusal("body failed validation.".into()));
    };
    let parent = &body["parent"];
    let Some(source) = parent["data_source_id"].as_str() else {
        return refused(
            st,
            Refusal("body.parent.data_source_id should be defined.".into()),
        );
    };
    let key = match source_key(st, source) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let children = body["children"].as_array().cloned().unwrap_or_default();
    if children.len() > 100 {
        return refused(
            st,
            Refusal(format!(
                "body.children.length should be ≤ `100`, instead was `{}`.",
                children.len()
            )),
        );
    }
    let empty = serde_json::Map::new();
    let given = body["properties"].as_object().unwrap_or(&empty);
    let properties = match values::write(
        st.sources.get_mut(&key).unwrap(),
        &serde_json::Map::new(),
        given,
        true,
    ) {
        Ok(properties) => properties,
        Err(refusal) => return refused(st, refusal),
    };
    let blocks = match values::blocks(&children) {
        Ok(blocks) => blocks,
        Err(refusal) => return refused(st, refusal),
    };
    let id = st.new_id();
    st.pages.push(Page {
        id,
        data_source: key,
        properties,
        children: blocks,
        in_trash: false,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    ok(page_object(st.pages.last().unwrap()))
}

fn update_page(st: &mut St, id: &str, body: Option<&Value>) -> Response {
    let index = match page_index(st, id) {
        Ok(index) => index,
        Err(response) => return response,
    };
    let empty = serde_json::Map::new();
    let given = body
        .and_then(|b| b["properties"].as_object())
        .unwrap_or(&empty);
    let source = st.pages[index].data_source.clone();
    let current = st.pages[index].properties.clone();
    let properties =
        match values::write(st.sources.get_mut(&source).unwrap(), &current, given, false) {
            Ok(properties) => properties,
            Err(refusal) => return refused(st, refusal),
        };
    st.pages[index].properties = properties;
    if let Some(trash) = body.and_then(|b| b["in_trash"].as_bool()) {
        st.pages[index].in_trash = trash;
    }
    ok(page_object(&st.pages[index]))
}

fn list_children(st: &mut St, id: &str, query: Option<&str>) -> Response {
    let index = match page_index(st, id) {
        Ok(index) => index,
        Err(response) => return response,
    };
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let size = param("page_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(PAGE_SIZE);
    if size == 0 || size > PAGE_SIZE {
        return refused(
            st,
            Refusal(format!(
                "query.page_size should be ≤ `100`, instead was `{size}`."
            )),
        );
    }
    let children = &st.pages[index].children;
    let start = match param("start_cursor") {
        None => 0,
        Some(cursor) => match children.iter().position(|b| b["id"] == cursor.as_str()) {
            Some(at) => at,
            None => {
                return refused(
                    st,
                    Refusal("query.start_cursor should be a valid cursor.".into()),
                );
            }
        },
    };
    let page: Vec<Value> = children[start..].iter().take(size).cloned().collect();
    let next = children.get(start + size).map(|b| b["id"].clone());
    ok(json!({
        "object": "list",
        "results": page,
        "next_cursor": next,
        "has_more": next.is_some(),
        "type": "block",
        "block": {},
    }))
}

fn append_children(st: &mut St, id: &str, body: Option<&Value>) -> Response {
    if st.no_insert {
        return error(
            403,
            "restricted_resource",
            "Insufficient permissions for this endpoint.",
        );
    }
    let index = match page_index(st, id) {
        Ok(index) => index,
        Err(response) => return response,
    };
    let children = body
        .and_then(|b| b["children"].as_array())
        .cloned()
        .unwrap_or_default();
    if children.is_empty() || children.len() > 100 {
        return refused(
            st,
            Refusal(format!(
                "body.children.length should be between 1 and `100`, instead was `{}`.",
                children.len()
            )),
        );
    }
    let blocks = match values::blocks(&children) {
        Ok(blocks) => blocks,
        Err(refusal) => return refused(st, refusal),
    };
    st.pages[index].children.extend(blocks.iter().cloned());
    ok(json!({
        "object": "list",
        "results": blocks,
        "next_cursor": null,
        "has_more": false,
        "type": "block",
        "block": {},
    }))
}
