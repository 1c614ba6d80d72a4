//! A fake Notion for end-to-end tests: the REST API of version `2025-09-03` (a database holds
//! one or more *data sources*; pages are rows of a data source) on one 127.0.0.1 port, written
//! to Notion's wire format as `@notionhq/client`'s types for that version
//! (`src/api-endpoints.ts` of makenotion/notion-sdk-js at the commit that made `2025-09-03` its
//! default) and Notion's reference pages (status codes, request limits, data source properties)
//! describe it.
//!
//! - **Auth and version**: every request needs `Authorization: Bearer <token>` with the one
//!   token the fake was started with (else 401 `unauthorized`, "API token is invalid.") and
//!   `Notion-Version: 2025-09-03` (missing: 400 `missing_version`; another value: 400
//!   `validation_error` naming the header). Every answer carries Notion's `x-notion-request-id`
//!   header and the same id as `request_id` in its body; an error body is Notion's error object
//!   (`object`, `status`, `code`, `message`, `request_id`).
//! - **Routes**: `GET /v1/users/me`; `GET /v1/databases/{id}`; `GET|PATCH /v1/data_sources/{id}`;
//!   `POST /v1/data_sources/{id}/query`; `POST /v1/pages`, `GET|PATCH /v1/pages/{id}`;
//!   `GET|PATCH /v1/blocks/{id}/children`. Ids are taken dashed or as 32 hex digits. A database
//!   not shared with the integration (and all it holds) is 404 `object_not_found`.
//! - **Validation** as Notion does it: unknown body fields, a property that does not exist, a
//!   value of another type than the property's, text over 2,000 characters (counted in UTF-16
//!   units, as Notion's JavaScript does), more than 100 items in an array, more than 100 blocks
//!   in one request, `page_size` over 100, a comma in a select option: 400 `validation_error`
//!   with Notion's message. A select or multi-select option not yet in the schema is created;
//!   a status option is not (Notion's API cannot create them).
//! - **Rate limit** ([`FakeNotion::set_rate_limit`]): a token bucket, Notion's average of 3
//!   requests per second with a burst; past it, 429 `rate_limited` with `Retry-After` in whole
//!   seconds. Notion's limit is per integration, so a 429 (or 529) holds *every* route until its
//!   `Retry-After` has passed: a request sent inside that window is answered 429 again and is a
//!   violation (one that was already on its way when the 429 went out is served: see
//!   [`IN_FLIGHT`]).
//! - **Faults** ([`FakeNotion::inject`]) per route prefix and count: 429, 409, 500, 502, 503,
//!   504, 529 with Notion's codes, a delay, an answer that never comes, a dropped connection;
//!   an outage ([`FakeNotion::set_outage`]: 503 for everything); missing capabilities
//!   ([`FakeNotion::set_insert_capability`], [`FakeNotion::set_update_capability`]: 403
//!   `restricted_resource`).
//!
//! Everything received is recorded ([`FakeNotion::requests`]) with the status answered and when
//! it arrived, so a test can check the client's pace ([`FakeNotion::max_in_window`],
//! [`FakeNotion::requests_per_second_average`]). Whatever real Notion would have refused, and
//! schema changes a sync must never make (re-typing, renaming or deleting a property, dropping
//! select options), is listed by [`FakeNotion::violations`]; so is whatever the fake cannot
//! serve. Waiting is done on a `watch` channel bumped on every change, with a 20 s deadline;
//! nothing polls or sleeps. With `FAKE_NOTION_LOG` set in the environment, every request and its
//! answer is printed to stderr as it goes out (with the client's port, to tell connections
//! apart).
//!
//! The files, each owning one part (the state they share is defined here, so that each of them
//! reads and writes it under the one lock):
//!
//! - `mod.rs`: the public types ([`FakeNotion`], [`Recorded`], [`Fault`], [`RateLimit`],
//!   [`FakePage`]), the state, starting the fake, the request log and its pace, violations,
//!   waiting.
//! - `setup.rs`: what a test arranges and inspects directly: databases, data sources,
//!   properties, pages, blocks.
//! - `rest.rs`: the handler (record, outage, faults, auth, version, rate limit, capability) and
//!   the routes.
//! - `faults.rs`: injected faults, the outage, capabilities, the token bucket and the
//!   `Retry-After` windows.
//! - `objects.rs`: the JSON objects as Notion writes them (user, database, data source,
//!   property, page, block, rich text, list).
//! - `values.rs`: page property values and schema changes: validation, conversion, select
//!   options.
//! - `blocks.rs`: block children: validation, appending, listing.
//! - `query.rs`: data source queries: filters, sorts, pagination.

mod blocks;
mod faults;
mod objects;
mod query;
mod rest;
mod setup;
mod values;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;

/// The API version the fake speaks.
pub const VERSION: &str = "2025-09-03";
/// The bot user's name (`GET /v1/users/me`).
pub const BOT_NAME: &str = "Fake integration";
/// The workspace the bot belongs to.
pub const WORKSPACE_NAME: &str = "Fake workspace";
/// The largest page of results Notion returns, and the most items of any array it takes.
pub const MAX_PAGE_SIZE: usize = 100;
/// The most UTF-16 code units Notion takes in one rich text `content` (and in a link's URL).
pub const MAX_TEXT: usize = 2000;

const DEADLINE: Duration = Duration::from_secs(20);

/// One request as the fake received it, and how it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The URL path (`/v1/...`), without the query string.
    pub path: String,
    /// The query string without its `?`, when the URL had one.
    pub query: Option<String>,
    /// The status answered; 0 while no answer went out (a delayed request not answered yet, a
    /// [`Fault::Hang`] or a [`Fault::Drop`]).
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
    /// The JSON body, when there was one and it parsed.
    pub body: Option<Value>,
    /// The `request_id` (and `x-notion-request-id`) of the answer.
    pub request_id: String,
}

/// A failure [`FakeNotion::inject`] answers with instead of serving a request. None of them is
/// a violation: they are Notion's doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 `rate_limited` with `Retry-After: retry_after_secs`; every request until then is
    /// answered 429 again and is a violation.
    RateLimited { retry_after_secs: u64 },
    /// 529 `service_overload` with `Retry-After: 1`, held like a 429.
    Overloaded,
    /// 409 `conflict_error`: the transaction was not committed (nothing is changed).
    Conflict,
    /// That 5xx status with Notion's code for it: 500 `internal_server_error`, 502
    /// `bad_gateway`, 503 `service_unavailable`, 504 `gateway_timeout`, 529 `service_overload`.
    /// Nothing is changed.
    Status(u16),
    /// The request is served as usual, after this long.
    Delay(Duration),
    /// No answer at all, until the client gives up or the fake is dropped. Nothing is changed.
    Hang,
    /// The connection is closed without an answer. Nothing is changed.
    Drop,
}

/// A token bucket: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl RateLimit {
    /// Notion's: "an average of three requests per second", with "some bursts beyond the
    /// average rate" (how many is not published; 10 here).
    pub fn notion() -> RateLimit {
        RateLimit {
            per_second: 3.0,
            burst: 10.0,
        }
    }
}

/// A page (a row of a data source) as the fake holds it.
#[derive(Debug, Clone)]
pub struct FakePage {
    /// Dashed, as Notion writes ids.
    pub id: String,
    /// The data source it is a row of (dashed).
    pub data_source: String,
    /// Its place among every page the fake holds, in creation order (0 first).
    pub index: usize,
    /// Property name → value, as `GET /v1/pages/{id}` returns them (every property of the
    /// schema, empty ones included).
    pub properties: Value,
    pub in_trash: bool,
    pub url: String,
}

impl FakePage {
    /// The plain text of the title property.
    pub fn title(&self) -> String {
        self.properties
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .find(|v| v["type"] == "title")
            .map(objects::value_text)
            .unwrap_or_default()
    }

    /// Property `name` as plain text: the text of a title or rich text, a select's or status's
    /// name, multi-select names joined by `, `, a number, a date's start, a checkbox's `true` or
    /// `false`, a URL, email or phone number; `None` when the property is absent or empty.
    pub fn prop_text(&self, name: &str) -> Option<String> {
        self.properties
            .get(name)
            .map(objects::value_text)
            .filter(|t| !t.is_empty())
    }

    /// Property `name` as Notion returns it (`Value::Null` when there is none).
    pub fn prop(&self, name: &str) -> &Value {
        &self.properties[name]
    }
}

struct Database {
    id: String,
    title: String,
    /// Whether the integration was given access.
    shared: bool,
    /// Its data sources (dashed ids), in the order added.
    sources: Vec<String>,
    /// The page it lives in (Notion puts an API-made database under a page).
    parent_page: String,
    created: DateTime<Utc>,
}

struct DataSource {
    id: String,
    name: String,
    /// Its database (dashed id).
    database: String,
    /// In the order added.
    properties: Vec<Property>,
    created: DateTime<Utc>,
    edited: DateTime<Utc>,
}

/// One property of a data source's schema.
#[derive(Clone)]
struct Property {
    /// Notion's short property id (`title` for the title property).
    id: String,
    name: String,
    kind: String,
    /// The configuration under the type's key (`{"options": [...]}`, `{"format": "number"}`).
    config: Value,
}

struct Page {
    id: String,
    data_source: String,
    /// Property id → (the property's type when written, the value under the type's key as
    /// Notion returns it).
    values: HashMap<String, (String, Value)>,
    created: DateTime<Utc>,
    edited: DateTime<Utc>,
    in_trash: bool,
}

/// A block as appended: its object as Notion returns it, without `has_children` (worked out
/// when it is written).
struct Block {
    /// Compact id of the page or block it belongs to.
    parent: String,
    object: Value,
}

/// An injected fault not used up yet.
struct Injected {
    /// Only requests with this method (any when `None`).
    method: Option<String>,
    prefix: String,
    fault: Fault,
    remaining: usize,
}

struct Bucket {
    limit: RateLimit,
    tokens: f64,
    at: Instant,
}

/// The `Retry-After` of the last 429 or 529: no request should arrive before `until`, except
/// the ones already on their way when it was answered (see [`IN_FLIGHT`]).
struct Hold {
    answered: Instant,
    until: Instant,
    retry_after: u64,
    /// The client end of the connection the 429 or 529 went out on.
    peer: SocketAddr,
}

/// How soon after a 429 or 529 a request on *another* connection is taken to have been on its
/// way already (a client with several requests in flight cannot have seen the answer yet); a
/// request on the same connection, or later than this, was sent after the client could know.
const IN_FLIGHT: Duration = Duration::from_millis(250);

struct St {
    bot_id: String,
    databases: Vec<Database>,
    sources: Vec<DataSource>,
    /// In creation order.
    pages: Vec<Page>,
    /// Compact id → block.
    blocks: HashMap<String, Block>,
    /// Compact id of a page or block → compact ids of its child blocks, in order.
    children: HashMap<String, Vec<String>>,
    requests: Vec<Recorded>,
    violations: Vec<String>,
    faults: Vec<Injected>,
    outage: bool,
    bucket: Option<Bucket>,
    hold: Option<Hold>,
    insert_capability: bool,
    update_capability: bool,
}

impl St {
    fn violation(&mut self, text: String) {
        self.violations.push(text);
    }

    fn database(&self, key: &str) -> Option<&Database> {
        self.databases.iter().find(|d| compact(&d.id) == key)
    }

    fn source_index(&self, key: &str) -> Option<usize> {
        self.sources.iter().position(|s| compact(&s.id) == key)
    }

    fn page_index(&self, key: &str) -> Option<usize> {
        self.pages.iter().position(|p| compact(&p.id) == key)
    }

    /// Whether the integration can see the data source (its database is shared with it).
    fn source_shared(&self, index: usize) -> bool {
        self.database(&compact(&self.sources[index].database))
            .is_some_and(|d| d.shared)
    }

    /// Whether the integration can see the page, or the block's page.
    fn container_shared(&self, key: &str) -> bool {
        let mut key = key.to_string();
        // A block's chain of parents ends at a page.
        while let Some(block) = self.blocks.get(&key) {
            key.clone_from(&block.parent);
        }
        self.page_index(&key).is_some_and(|i| {
            let source = compact(&self.pages[i].data_source);
            self.source_index(&source)
                .is_some_and(|s| self.source_shared(s))
        })
    }
}

struct Inner {
    port: u16,
    token: String,
    state: Mutex<St>,
    changed: watch::Sender<u64>,
    /// Set when the [`FakeNotion`] is dropped: requests held by [`Fault::Hang`] end then.
    closed: watch::Sender<bool>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, St> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

/// The fake Notion: one 127.0.0.1 port, one integration token, state under one lock.
pub struct FakeNotion {
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeNotion {
    fn drop(&mut self) {
        self.server.abort();
        self.inner.closed.send_replace(true);
    }
}

impl FakeNotion {
    /// Binds 127.0.0.1:0 and serves the API there; `token` is the only integration token it
    /// accepts. No rate limit until [`FakeNotion::set_rate_limit`]; every capability granted.
    pub async fn start(token: &str) -> FakeNotion {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Inner {
            port,
            token: token.to_string(),
            state: Mutex::new(St {
                bot_id: new_id(),
                databases: Vec::new(),
                sources: Vec::new(),
                pages: Vec::new(),
                blocks: HashMap::new(),
                children: HashMap::new(),
                requests: Vec::new(),
                violations: Vec::new(),
                faults: Vec::new(),
                outage: false,
                bucket: None,
                hold: None,
                insert_capability: true,
                update_capability: true,
            }),
            changed: watch::channel(0).0,
            closed: watch::channel(false).0,
        });
        let app = rest::router(Arc::clone(&inner));
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        FakeNotion { inner, server }
    }

    /// `http://127.0.0.1:PORT`: the client appends `/v1/...`.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }

    /// The bot user's id (dashed).
    pub fn bot_id(&self) -> String {
        self.inner.lock().bot_id.clone()
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().requests.clone()
    }

    /// The requests with `method` (any when empty) whose path starts with `prefix`.
    pub fn requests_to(&self, method: &str, prefix: &str) -> Vec<Recorded> {
        self.inner
            .lock()
            .requests
            .iter()
            .filter(|r| {
                (method.is_empty() || r.method.eq_ignore_ascii_case(method))
                    && r.path.starts_with(prefix)
            })
            .cloned()
            .collect()
    }

    /// How many requests with `method` (any when empty) had a path starting with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.requests_to(method, prefix).len()
    }

    /// The average pace of the whole run: requests after the first, divided by the seconds
    /// from the first to the last (0 with fewer than two requests).
    pub fn requests_per_second_average(&self) -> f64 {
        let st = self.inner.lock();
        match (st.requests.first(), st.requests.last()) {
            (Some(first), Some(last)) if st.requests.len() > 1 => {
                let span = last.at.duration_since(first.at).as_secs_f64();
                if span > 0.0 {
                    (st.requests.len() - 1) as f64 / span
                } else {
                    f64::INFINITY
                }
            }
            _ => 0.0,
        }
    }

    /// The most requests that arrived within any span of `window` (from one request's
    /// arrival, `window` long, end excluded). With Notion's limit a client stays at or under
    /// `3 × window + burst`.
    pub fn max_in_window(&self, window: Duration) -> usize {
        let st = self.inner.lock();
        let times: Vec<Instant> = st.requests.iter().map(|r| r.at).collect();
        let mut most = 0;
        let mut end = 0;
        for (start, at) in times.iter().enumerate() {
            while end < times.len() && times[end].duration_since(*at) < window {
                end += 1;
            }
            most = most.max(end - start);
        }
        most
    }

    /// [`FakeNotion::max_in_window`] as requests per second.
    pub fn max_rate_over(&self, window: Duration) -> f64 {
        self.max_in_window(window) as f64 / window.as_secs_f64()
    }

    /// What real Notion would have refused (each is also answered with Notion's refusal), what
    /// a sync must never do to a schema, and what the fake cannot serve.
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().violations.clone()
    }

    /// Awaits `f` returning `Some`, looked at after every change to the fake, for up to 20 s;
    /// panics with the request log and the violations when it does not come.
    pub async fn wait_for<T>(&self, what: &str, mut f: impl FnMut(&FakeNotion) -> Option<T>) -> T {
        let mut changed = self.inner.changed.subscribe();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            changed.borrow_and_update();
            if let Some(found) = f(self) {
                return found;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => self.give_up(what),
            }
        }
    }

    /// Awaits at least `n` pages in `data_source` and returns them all.
    pub async fn wait_pages(&self, data_source: &str, n: usize) -> Vec<FakePage> {
        self.wait_for(&format!("{n} pages in data source {data_source}"), |fake| {
            let pages = fake.pages(data_source);
            (pages.len() >= n).then_some(pages)
        })
        .await
    }

    /// Awaits at least `n` child blocks of `page` (a page or block id) and returns them all.
    pub async fn wait_children(&self, page: &str, n: usize) -> Vec<Value> {
        self.wait_for(&format!("{n} blocks in {page}"), |fake| {
            let blocks = fake.children(page);
            (blocks.len() >= n).then_some(blocks)
        })
        .await
    }

    /// Awaits page `id` in a state `pred` accepts and returns it.
    pub async fn wait_page(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&FakePage) -> bool,
    ) -> FakePage {
        self.wait_for(what, |fake| fake.page(id).filter(|p| pred(p)))
            .await
    }

    /// Awaits a request `pred` accepts (its `status` is set once it is answered) and returns
    /// the first.
    pub async fn wait_request(&self, what: &str, pred: impl Fn(&Recorded) -> bool) -> Recorded {
        self.wait_for(what, |fake| {
            fake.inner.lock().requests.iter().find(|r| pred(r)).cloned()
        })
        .await
    }

    /// Awaits at least `n` requests (answered or not) and returns them all.
    pub async fn wait_requests(&self, n: usize) -> Vec<Recorded> {
        self.wait_for(&format!("{n} requests"), |fake| {
            let requests = fake.requests();
            (requests.len() >= n).then_some(requests)
        })
        .await
    }

    /// Awaits at least `n` answered requests as [`FakeNotion::requests_to`] selects them.
    pub async fn wait_answered(&self, method: &str, prefix: &str, n: usize) -> Vec<Recorded> {
        self.wait_for(&format!("{n} answered {method} {prefix}"), |fake| {
            let found: Vec<Recorded> = fake
                .requests_to(method, prefix)
                .into_iter()
                .filter(|r| r.status != 0)
                .collect();
            (found.len() >= n).then_some(found)
        })
        .await
    }

    fn give_up(&self, what: &str) -> ! {
        let st = self.inner.lock();
        let log: Vec<String> = st
            .requests
            .iter()
            .map(|r| {
                let body = r.body.as_ref().map(Value::to_string).unwrap_or_default();
                let body: String = body.chars().take(300).collect();
                format!("  {} {} {} {body}", r.status, r.method, r.path)
            })
            .collect();
        panic!(
            "fake Notion: timed out after {DEADLINE:?} waiting for {what}\nviolations: {:#?}\n\
             requests:\n{}",
            st.violations,
            log.join("\n")
        );
    }
}

/// A new id: a random UUID (version 4), dashed, as Notion writes ids.
fn new_id() -> String {
    let n = (rand::random::<u128>() & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{n:032x}");
    dashed(&hex)
}

/// The 32 lowercase hex digits of an id given dashed or not; empty when it is not an id.
fn compact(id: &str) -> String {
    let bare: String = id.chars().filter(|c| *c != '-').collect();
    if bare.len() == 32 && bare.chars().all(|c| c.is_ascii_hexdigit()) {
        bare.to_ascii_lowercase()
    } else {
        String::new()
    }
}

/// 32 hex digits in the 8-4-4-4-12 form.
fn dashed(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A time as Notion writes `created_time` and `last_edited_time`: UTC, to the minute (Notion
/// rounds these down to the minute).
fn notion_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:00.000Z").to_string()
}
