//! The handler and the routes. Every request is recorded, then answered in this order: the
//! outage (503); the token (401) and the version (400); a `Retry-After` hold, an injected fault
//! (`faults.rs`); the rate limit; a body that is not JSON (400 `invalid_json`); the capability
//! the route needs (403); the route. Every 400 answered is a violation: it is something real
//! Notion would have refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::Utc;
use serde_json::{Value, json};

use super::blocks::{self, append, check_children};
use super::faults::Pre;
use super::objects::{self, bot_user, data_source_object, database_object, page_object};
use super::query::query;
use super::values::{self, Bad, body_failed, only_keys, page_values, update_schema};
use super::*;

/// The versions real Notion takes (its own answer to an unknown one lists them).
const KNOWN_VERSIONS: &str = "\"2021-05-11\", \"2021-05-13\", \"2021-08-16\", \"2022-02-22\", \"2022-06-28\", \"2025-09-03\", or \"2026-03-11\"";

/// An answer: its status, its JSON body (`request_id` is added as it goes out), and the
/// `Retry-After` it carries.
pub(super) struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u64>,
    /// The fake could not serve the request (a violation of its own kind).
    pub unserved: bool,
}

impl Reply {
    pub(super) fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body,
            retry_after: None,
            unserved: false,
        }
    }

    /// Notion's error object.
    pub(super) fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply {
            status,
            body: json!({ "object": "error", "status": status, "code": code, "message": message }),
            retry_after: None,
            unserved: false,
        }
    }

    pub(super) fn retry_after(mut self, seconds: u64) -> Reply {
        self.retry_after = Some(seconds);
        self
    }

    fn invalid(message: &str) -> Reply {
        Reply::error(400, "validation_error", message)
    }

    fn not_found(kind: &str, id: &str) -> Reply {
        Reply::error(
            404,
            "object_not_found",
            &format!(
                "Could not find {kind} with ID: {}. Make sure the relevant pages and databases \
                 are shared with your integration.",
                dashed(&compact(id))
            ),
        )
    }

    fn into_response(self, request_id: &str) -> Response {
        let mut body = self.body;
        if let Some(object) = body.as_object_mut() {
            object.insert("request_id".into(), json!(request_id));
        }
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = StatusCode::from_u16(self.status).expect("a valid status");
        let headers = response.headers_mut();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("x-notion-request-id", id);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert("retry-after", HeaderValue::from(seconds));
        }
        response
    }
}

impl From<Bad> for Reply {
    fn from(bad: Bad) -> Reply {
        match bad {
            Bad::Invalid(message) => Reply::invalid(&message),
            Bad::Unserved(message) => Reply {
                unserved: true,
                ..Reply::invalid(&format!("The fake Notion does not serve this: {message}"))
            },
        }
    }
}

pub(super) fn router(inner: Arc<Inner>) -> Router {
    Router::new().fallback(handle).with_state(inner)
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let path = uri.path().to_string();
    let parsed: Result<Option<Value>, String> = if body.is_empty() {
        Ok(None)
    } else {
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| e.to_string())
    };
    let request_id = new_id();
    let (index, pre) = {
        let mut st = inner.lock();
        st.requests.push(Recorded {
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().map(str::to_string),
            status: 0,
            at: now,
            body: parsed.clone().ok().flatten(),
            request_id: request_id.clone(),
        });
        let index = st.requests.len() - 1;
        let pre = match st.outage() {
            Some(reply) => Some(Pre::Reply(reply)),
            None => match access(&mut st, &inner.token, method.as_str(), &path, &headers) {
                Some(reply) => Some(Pre::Reply(reply)),
                None => st.before(method.as_str(), &path, now, peer),
            },
        };
        (index, pre)
    };
    inner.bump();
    let reply = match pre {
        Some(Pre::Reply(reply)) => reply,
        Some(Pre::Hang) => {
            let mut closed = inner.closed.subscribe();
            // Errs only when the sender is gone, which means the fake is gone too.
            let _ = closed.wait_for(|closed| *closed).await;
            return Reply::error(503, "service_unavailable", "The fake Notion was dropped.")
                .into_response(&request_id);
        }
        Some(Pre::Drop) => return dropped(),
        Some(Pre::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            serve(&inner, peer, &method, &uri, parsed)
        }
        None => serve(&inner, peer, &method, &uri, parsed),
    };
    if std::env::var_os("FAKE_NOTION_LOG").is_some() {
        eprintln!(
            "fake Notion: {} {method} {uri} {} {} {}",
            Utc::now().format("%H:%M:%S%.3f"),
            peer.port(),
            reply.status,
            reply.body["message"].as_str().unwrap_or_default()
        );
    }
    {
        let mut st = inner.lock();
        st.requests[index].status = reply.status;
        let said = format!(
            "{} {}: {}",
            reply.body["code"].as_str().unwrap_or_default(),
            reply.status,
            reply.body["message"].as_str().unwrap_or_default()
        );
        if reply.unserved {
            st.violation(format!("the fake cannot serve {method} {path}: {said}"));
        } else if reply.status == 400 {
            st.violation(format!("{method} {path} refused: {said}"));
        }
    }
    inner.bump();
    reply.into_response(&request_id)
}

/// An answer whose body fails at once: the server closes the connection before the status line
/// goes out, as a connection dropped by the network would be.
fn dropped() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection dropped by Fault::Drop",
        ))
    });
    Response::new(Body::from_stream(stream))
}

/// The token (401) and the version (400), as Notion checks them before anything else.
fn access(st: &mut St, token: &str, m: &str, path: &str, headers: &HeaderMap) -> Option<Reply> {
    match headers
        .get("authorization")
        .map(|v| v.to_str().unwrap_or_default())
    {
        None => {
            st.violation(format!("{m} {path}: no Authorization header"));
            return Some(Reply::error(401, "unauthorized", "API token is invalid."));
        }
        Some(auth) => match auth.strip_prefix("Bearer ") {
            None => {
                st.violation(format!("{m} {path}: Authorization is not `Bearer <token>`"));
                return Some(Reply::error(401, "unauthorized", "API token is invalid."));
            }
            Some(given) if given != token => {
                return Some(Reply::error(401, "unauthorized", "API token is invalid."));
            }
            Some(_) => {}
        },
    }
    match headers
        .get("notion-version")
        .map(|v| v.to_str().unwrap_or_default())
    {
        None => Some(Reply::error(
            400,
            "missing_version",
            "Notion-Version header failed validation: Notion-Version header should be \
             defined, instead was `undefined`.",
        )),
        Some(VERSION) => None,
        Some(other) if KNOWN_VERSIONS.contains(&format!("\"{other}\"")) => {
            Some(Reply::invalid(&format!(
                "Notion-Version header failed validation: the fake Notion speaks only \
             \"{VERSION}\", instead was \"{other}\"."
            )))
        }
        Some(other) => Some(Reply::invalid(&format!(
            "Notion-Version header failed validation: Notion-Version header should be \
             {KNOWN_VERSIONS}, instead was \"{other}\"."
        ))),
    }
}

/// Everything after the token, the version and the faults: rate limit, JSON, capability, route.
fn serve(
    inner: &Inner,
    peer: SocketAddr,
    method: &Method,
    uri: &Uri,
    parsed: Result<Option<Value>, String>,
) -> Reply {
    let mut st = inner.lock();
    let path = uri.path();
    let m = method.as_str();
    if let Some(reply) = st.rate_limit(m, path, Instant::now(), peer) {
        return reply;
    }
    let body = match parsed {
        Ok(body) => body.unwrap_or(Value::Null),
        Err(_) => return Reply::error(400, "invalid_json", "Error parsing JSON body."),
    };
    let segments: Vec<&str> = match path.strip_prefix("/v1/") {
        Some(rest) => rest.trim_end_matches('/').split('/').collect(),
        None => Vec::new(),
    };
    let what = format!("{m} {path}");
    let answer = match (m, segments.as_slice()) {
        ("GET", ["users", "me"]) => Ok(Reply::ok(bot_user(&st))),
        ("GET", ["databases", id]) => get_database(&st, id),
        ("GET", ["data_sources", id]) => {
            source_of(&st, id).map(|s| Reply::ok(data_source_object(&st, &st.sources[s])))
        }
        ("PATCH", ["data_sources", id]) => match st.lacks("update") {
            Some(reply) => Ok(reply),
            None => update_source(&mut st, id, &body, &what),
        },
        ("POST", ["data_sources", id, "query"]) => {
            source_of(&st, id).and_then(|s| Ok(Reply::ok(query(&st, s, &body)?)))
        }
        ("POST", ["pages"]) => match st.lacks("insert") {
            Some(reply) => Ok(reply),
            None => create_page(&mut st, &body),
        },
        ("GET", ["pages", id]) => {
            page_of(&st, id).map(|p| Reply::ok(page_object(&st, &st.pages[p])))
        }
        ("PATCH", ["pages", id]) => match st.lacks("update") {
            Some(reply) => Ok(reply),
            None => update_page(&mut st, id, &body),
        },
        ("GET", ["blocks", id, "children"]) => list_children(&st, id, uri.query()),
        ("PATCH", ["blocks", id, "children"]) => match st.lacks("insert") {
            Some(reply) => Ok(reply),
            None => append_children(&mut st, id, &body),
        },
        _ => Ok(Reply::error(
            400,
            "invalid_request_url",
            "Invalid request URL.",
        )),
    };
    answer.unwrap_or_else(|refused| refused)
}

type Answer = Result<Reply, Reply>;

/// A path id (dashed or 32 hex digits) in compact form; 400 when it is not one.
fn path_id(name: &str, id: &str) -> Result<String, Reply> {
    let key = compact(id);
    if key.is_empty() {
        return Err(Reply::invalid(&format!(
            "path failed validation: path.{name} should be a valid uuid, instead was `\"{id}\"`."
        )));
    }
    Ok(key)
}

fn get_database(st: &St, id: &str) -> Answer {
    let key = path_id("database_id", id)?;
    match st.database(&key) {
        Some(db) if db.shared => Ok(Reply::ok(database_object(st, db))),
        _ => Err(Reply::not_found("database", id)),
    }
}

/// The data source `id` names, if the integration can see it.
fn source_of(st: &St, id: &str) -> Result<usize, Reply> {
    let key = path_id("data_source_id", id)?;
    st.source_index(&key)
        .filter(|s| st.source_shared(*s))
        .ok_or_else(|| Reply::not_found("data_source", id))
}

/// The page `id` names, if the integration can see it.
fn page_of(st: &St, id: &str) -> Result<usize, Reply> {
    let key = path_id("page_id", id)?;
    st.page_index(&key)
        .filter(|_| st.container_shared(&key))
        .ok_or_else(|| Reply::not_found("page", id))
}

fn object_body<'a>(
    body: &'a Value,
    allowed: &[&str],
) -> Result<&'a serde_json::Map<String, Value>, Reply> {
    let object = body
        .as_object()
        .ok_or_else(|| Reply::from(body_failed("body", "an object", Some(body))))?;
    only_keys(object, allowed, "body")?;
    Ok(object)
}

fn update_source(st: &mut St, id: &str, body: &Value, what: &str) -> Answer {
    let source = source_of(st, id)?;
    let object = object_body(
        body,
        &[
            "title",
            "description",
            "icon",
            "cover",
            "properties",
            "is_inline",
            "archived",
            "in_trash",
            "parent",
        ],
    )?;
    let title = match object.get("title") {
        Some(title) => Some(objects::plain_text(&values::rich_text(
            Some(title),
            "body.title",
        )?)),
        None => None,
    };
    if let Some(properties) = object.get("properties") {
        update_schema(st, source, properties, what)?;
    }
    if let Some(title) = title {
        st.sources[source].name = title;
    }
    st.sources[source].edited = Utc::now();
    Ok(Reply::ok(data_source_object(st, &st.sources[source])))
}

fn create_page(st: &mut St, body: &Value) -> Answer {
    let object = object_body(
        body,
        &[
            "parent",
            "properties",
            "children",
            "content",
            "icon",
            "cover",
            "template",
            "position",
        ],
    )?;
    let parent = object
        .get("parent")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Reply::from(body_failed(
                "body.parent",
                "an object",
                object.get("parent"),
            ))
        })?;
    only_keys(
        parent,
        &[
            "type",
            "data_source_id",
            "database_id",
            "page_id",
            "workspace",
        ],
        "body.parent",
    )?;
    let keys: Vec<&str> = parent
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "type")
        .collect();
    let [kind] = keys.as_slice() else {
        return Err(body_failed(
            "body.parent",
            "one of data_source_id, database_id, page_id or workspace",
            object.get("parent"),
        )
        .into());
    };
    if let Some(named) = parent.get("type")
        && named != kind
    {
        return Err(body_failed(
            &format!("body.parent.{}", named.as_str().unwrap_or_default()),
            "defined",
            None,
        )
        .into());
    }
    let id = parent[*kind].as_str().unwrap_or_default();
    let source = match *kind {
        "data_source_id" => {
            if compact(id).is_empty() {
                return Err(body_failed(
                    "body.parent.data_source_id",
                    "a valid uuid",
                    parent.get("data_source_id"),
                )
                .into());
            }
            source_of(st, id)?
        }
        "database_id" => {
            if compact(id).is_empty() {
                return Err(body_failed(
                    "body.parent.database_id",
                    "a valid uuid",
                    parent.get("database_id"),
                )
                .into());
            }
            let db = st
                .database(&compact(id))
                .filter(|d| d.shared)
                .ok_or_else(|| Reply::not_found("database", id))?;
            match db.sources.as_slice() {
                [only] => st
                    .source_index(&compact(only))
                    .expect("a database's data source"),
                _ => {
                    return Err(Reply::invalid(&format!(
                        "Database with ID {} has more than one data source; create the page \
                         under a data_source_id parent instead.",
                        db.id
                    )));
                }
            }
        }
        other => {
            return Err(Bad::Unserved(format!(
                "pages under a {other} parent (only data source rows)"
            ))
            .into());
        }
    };
    let children = match object.get("children").or_else(|| object.get("content")) {
        None => Vec::new(),
        some => check_children(some, "body.children")?,
    };
    let empty = json!({});
    let properties = object.get("properties").unwrap_or(&empty);
    let values = page_values(st, source, properties, "properties")?;
    let now = Utc::now();
    let id = new_id();
    let data_source = st.sources[source].id.clone();
    st.pages.push(Page {
        id: id.clone(),
        data_source,
        values,
        created: now,
        edited: now,
        in_trash: false,
    });
    append(st, &compact(&id), children, None);
    let page = st.pages.last().expect("just pushed");
    Ok(Reply::ok(page_object(st, page)))
}

/// Notion's refusal to edit what is in the trash.
fn archived() -> Reply {
    Reply::invalid(
        "Can't edit block that is archived. You must unarchive the block before editing.",
    )
}

fn update_page(st: &mut St, id: &str, body: &Value) -> Answer {
    let index = page_of(st, id)?;
    let object = object_body(
        body,
        &[
            "properties",
            "icon",
            "cover",
            "archived",
            "in_trash",
            "is_locked",
            "erase_content",
            "template",
        ],
    )?;
    let trash = match object.get("in_trash").or_else(|| object.get("archived")) {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => return Err(body_failed("body.in_trash", "a boolean", Some(other)).into()),
    };
    if st.pages[index].in_trash && trash != Some(false) {
        return Err(archived());
    }
    let source = st
        .source_index(&compact(&st.pages[index].data_source))
        .expect("a page's data source");
    let values = match object.get("properties") {
        Some(properties) => page_values(st, source, properties, "properties")?,
        None => std::collections::HashMap::new(),
    };
    let page = &mut st.pages[index];
    page.values.extend(values);
    if let Some(trash) = trash {
        page.in_trash = trash;
    }
    page.edited = Utc::now();
    Ok(Reply::ok(page_object(st, &st.pages[index])))
}

/// The page or block `id` names (compact), if the integration can see it.
fn container_of(st: &St, id: &str) -> Result<String, Reply> {
    let key = path_id("block_id", id)?;
    let known = st.blocks.contains_key(&key) || st.page_index(&key).is_some();
    if known && st.container_shared(&key) {
        Ok(key)
    } else {
        Err(Reply::not_found("block", id))
    }
}

fn list_children(st: &St, id: &str, query: Option<&str>) -> Answer {
    let key = container_of(st, id)?;
    let mut page_size = MAX_PAGE_SIZE;
    let mut cursor = None;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "page_size" => {
                let n: u64 = value.parse().map_err(|_| {
                    Reply::invalid(&format!(
                        "query failed validation: query.page_size should be a number, instead was `\"{value}\"`."
                    ))
                })?;
                if n == 0 || n > MAX_PAGE_SIZE as u64 {
                    return Err(Reply::invalid(&format!(
                        "query failed validation: query.page_size should be ≤ `{MAX_PAGE_SIZE}` and \
                         ≥ `1`, instead was `{n}`."
                    )));
                }
                page_size = n as usize;
            }
            "start_cursor" => cursor = Some(value.into_owned()),
            other => {
                return Err(Reply::invalid(&format!(
                    "query failed validation: query.{other} should be not present, instead was `\"{value}\"`."
                )));
            }
        }
    }
    let all = st.children.get(&key).cloned().unwrap_or_default();
    let start = match cursor {
        None => 0,
        Some(cursor) => all
            .iter()
            .position(|c| *c == compact(&cursor))
            .ok_or_else(|| {
                Reply::invalid(&format!(
                    "query failed validation: query.start_cursor should be a cursor this listing \
                     returned, instead was `\"{cursor}\"`."
                ))
            })?,
    };
    let end = (start + page_size).min(all.len());
    let results = all[start..end]
        .iter()
        .map(|c| blocks::block_object(st, c))
        .collect();
    let next = all.get(end).map(|c| dashed(c));
    Ok(Reply::ok(objects::list(results, next, "block")))
}

fn append_children(st: &mut St, id: &str, body: &Value) -> Answer {
    let key = container_of(st, id)?;
    let mut page = key.clone();
    while let Some(block) = st.blocks.get(&page) {
        page.clone_from(&block.parent);
    }
    if st.page_index(&page).is_some_and(|p| st.pages[p].in_trash) {
        return Err(archived());
    }
    let object = object_body(body, &["children", "after", "position"])?;
    let children = check_children(object.get("children"), "body.children")?;
    let after = match object.get("after") {
        None => None,
        Some(after) => {
            let wanted = after.as_str().map(compact).unwrap_or_default();
            if !st.children.get(&key).is_some_and(|c| c.contains(&wanted)) {
                return Err(Reply::not_found(
                    "block",
                    after.as_str().unwrap_or_default(),
                ));
            }
            Some(wanted)
        }
    };
    let created = append(st, &key, children, after.as_deref());
    if let Some(index) = st.page_index(&page) {
        st.pages[index].edited = Utc::now();
    }
    Ok(Reply::ok(objects::list(created, None, "block")))
}
