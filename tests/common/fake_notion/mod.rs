//! A fake Notion for end-to-end tests: the REST API of version `2025-09-03` (databases that hold
//! data sources, pages created under a data source) on one 127.0.0.1 port, faithful to what
//! patchbay's client meets in the real one:
//!
//! - **Auth and version**: every request needs `Authorization: Bearer <token>` (else 401
//!   `unauthorized`) and `Notion-Version: 2025-09-03` (missing: 400 `missing_version`; another:
//!   400 `validation_error`). Errors are Notion's error object: `object`, `status`, `code`,
//!   `message`, `request_id`.
//! - **Objects**: `GET /v1/users/me`; `GET /v1/databases/{id}` (its `data_sources`; a database
//!   not shared with the integration is 404 `object_not_found` with Notion's message);
//!   `GET|PATCH /v1/data_sources/{id}` (the schema; a PATCH adds properties, creates select
//!   options, and a property re-typed or deleted is listed by [`FakeNotion::violations`]);
//!   `POST /v1/data_sources/{id}/query` (filters `equals` on title and rich text, `and`, `or`;
//!   `page_size` at most 100; `start_cursor`, `has_more`, `next_cursor`); `POST /v1/pages`,
//!   `GET|PATCH /v1/pages/{id}`; `GET|PATCH /v1/blocks/{id}/children`.
//! - **Validation** as Notion does it: a property that does not exist, a value of another type
//!   than the property's, text over 2,000 characters (counted in UTF-16 units), a select option
//!   with a comma, more than 100 blocks in one request: 400 `validation_error` naming the
//!   property and why. A select or multi-select option not yet in the schema is created, as
//!   Notion does. Every refusal of something patchbay sent is also a violation.
//! - **Rate limit** ([`FakeNotion::set_rate_limit`]): a token bucket (Notion's average of 3
//!   requests per second with some burst); past it, 429 `rate_limited` with `Retry-After` in
//!   whole seconds.
//! - **Faults** ([`FakeNotion::inject`]) per path prefix and count: 429 with `Retry-After`, 529
//!   `service_overload`, 409 `conflict_error`, 5xx, a delay before the answer, an answer that
//!   never comes; an outage ([`FakeNotion::set_outage`]: 503 for everything); a missing
//!   capability ([`FakeNotion::set_insert_capability`]: 403 `restricted_resource` for page
//!   creation and appends).
//!
//! Everything received is recorded ([`FakeNotion::requests`]) with the status answered and when
//! it arrived. Waiting is done on a `watch` channel bumped on every change, with a 20 s
//! deadline; nothing polls or sleeps.
//!
//! The files: `mod.rs` the public API, the state and waiting; `rest.rs` the routes and the
//! objects as Notion writes them; `values.rs` the validation of property values and blocks.

mod rest;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

/// The API version the fake speaks.
pub const VERSION: &str = "2025-09-03";

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The status answered (0 while the answer is pending, e.g. a hang).
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
    pub body: Option<Value>,
}

/// A fault to answer with instead of the real answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 `rate_limited` with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// 529 `service_overload` with `Retry-After: 1`.
    Overloaded,
    /// 409 `conflict_error`.
    Conflict,
    /// This 5xx status with Notion's code for it.
    Status(u16),
    /// The real answer, after this long.
    Delay(Duration),
    /// No answer at all (the client's timeout decides).
    Hang,
}

/// A token bucket: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl RateLimit {
    /// Notion's: an average of 3 requests per second, with some burst.
    pub fn notion() -> RateLimit {
        RateLimit {
            per_second: 3.0,
            burst: 10.0,
        }
    }
}

/// A page as the fake keeps it.
#[derive(Debug, Clone)]
pub struct FakePage {
    pub id: String,
    pub data_source: String,
    /// Property name → value, as Notion returns them.
    pub properties: serde_json::Map<String, Value>,
    pub in_trash: bool,
}

impl FakePage {
    /// The plain text of the title property.
    pub fn title(&self) -> String {
        self.properties
            .values()
            .find(|v| v["type"] == "title")
            .map(values::plain_text)
            .unwrap_or_default()
    }

    /// The plain text of property `name`: text, a select's name, multi-select names joined by
    /// `, `, a number, a date's start; `None` when absent or empty.
    pub fn prop_text(&self, name: &str) -> Option<String> {
        self.properties
            .get(name)
            .map(values::plain_text)
            .filter(|t| !t.is_empty())
    }
}

pub(crate) struct Database {
    pub id: String,
    pub title: String,
    pub data_sources: Vec<String>,
    pub shared: bool,
}

pub(crate) struct DataSource {
    pub id: String,
    pub name: String,
    pub database: String,
    /// Name → property object (`id`, `name`, `type`, `<type>`), in the order added.
    pub properties: BTreeMap<String, Value>,
}

pub(crate) struct Page {
    pub id: String,
    pub data_source: String,
    pub properties: serde_json::Map<String, Value>,
    pub children: Vec<Value>,
    pub in_trash: bool,
    pub created: String,
}

struct Bucket {
    limit: RateLimit,
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
pub(crate) struct St {
    pub databases: HashMap<String, Database>,
    pub sources: HashMap<String, DataSource>,
    /// In creation order.
    pub pages: Vec<Page>,
    pub requests: Vec<Recorded>,
    pub faults: Vec<(String, Fault, usize)>,
    pub outage: bool,
    bucket: Option<Bucket>,
    pub no_insert: bool,
    pub violations: Vec<String>,
    pub next_id: u64,
}

impl St {
    /// A fresh id in Notion's dashed form.
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        let random: u32 = rand::random();
        format!(
            "{random:08x}-{:04x}-4{:03x}-8000-{:012x}",
            self.next_id & 0xffff,
            (self.next_id >> 16) & 0xfff,
            self.next_id
        )
    }

    /// Takes a token of the rate limit; the wait before one is free when none is.
    fn take_token(&mut self) -> Option<Duration> {
        let bucket = self.bucket.as_mut()?;
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * bucket.limit.per_second).min(bucket.limit.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / bucket.limit.per_second,
            ))
        }
    }

    /// The fault for `path`, used up once.
    fn fault_for(&mut self, path: &str) -> Option<Fault> {
        let slot = self
            .faults
            .iter_mut()
            .find(|(prefix, _, left)| *left > 0 && path.starts_with(prefix.as_str()))?;
        slot.2 -= 1;
        Some(slot.1.clone())
    }
}

pub(crate) struct Inner {
    st: Mutex<St>,
    changed: watch::Sender<u64>,
    token: String,
}

impl Inner {
    pub fn lock(&self) -> MutexGuard<'_, St> {
        self.st.lock().unwrap()
    }

    pub fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

pub struct FakeNotion {
    inner: Arc<Inner>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeNotion {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Compact (32 hex, lowercase) form of an id as a client may write it; `None` when it is not
/// one.
pub(crate) fn compact(id: &str) -> Option<String> {
    let bare: String = id.chars().filter(|c| *c != '-').collect();
    (bare.len() == 32 && bare.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| bare.to_ascii_lowercase())
}

impl FakeNotion {
    /// Starts the fake on 127.0.0.1; `token` is the only integration token it accepts.
    pub async fn start(token: &str) -> FakeNotion {
        let inner = Arc::new(Inner {
            st: Mutex::new(St::default()),
            changed: watch::channel(0).0,
            token: token.to_string(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = rest::router(inner.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeNotion {
            inner,
            addr,
            server,
        }
    }

    /// What `NOTION_API_BASE` should be.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A shared database with one data source whose only property is its title, called
    /// `title_property`. Returns (database id, data source id), dashed.
    pub fn add_database_with_title_property(
        &self,
        title: &str,
        title_property: &str,
    ) -> (String, String) {
        let database = {
            let mut st = self.inner.lock();
            let database = st.new_id();
            st.databases.insert(
                compact(&database).unwrap(),
                Database {
                    id: database.clone(),
                    title: title.to_string(),
                    data_sources: Vec::new(),
                    shared: true,
                },
            );
            database
        };
        let source = self.add_data_source(&database, title);
        let mut st = self.inner.lock();
        let ds = st.sources.get_mut(&compact(&source).unwrap()).unwrap();
        ds.properties.clear();
        ds.properties.insert(
            title_property.to_string(),
            serde_json::json!({ "id": "title", "name": title_property, "type": "title", "title": {} }),
        );
        drop(st);
        self.inner.bump();
        (database, source)
    }

    /// A second (or further) data source in `database`, with only a title property `Name`.
    pub fn add_data_source(&self, database: &str, name: &str) -> String {
        let mut st = self.inner.lock();
        let id = st.new_id();
        let key = compact(database).expect("a database id");
        st.databases
            .get_mut(&key)
            .expect("a database of this fake")
            .data_sources
            .push(compact(&id).unwrap());
        let mut properties = BTreeMap::new();
        properties.insert(
            "Name".to_string(),
            serde_json::json!({ "id": "title", "name": "Name", "type": "title", "title": {} }),
        );
        st.sources.insert(
            compact(&id).unwrap(),
            DataSource {
                id: id.clone(),
                name: name.to_string(),
                database: key,
                properties,
            },
        );
        drop(st);
        self.inner.bump();
        id
    }

    /// A database that exists but is not shared with the integration.
    pub fn add_unshared_database(&self) -> String {
        let (database, _) = self.add_database_with_title_property("Private", "Name");
        self.inner
            .lock()
            .databases
            .get_mut(&compact(&database).unwrap())
            .unwrap()
            .shared = false;
        database
    }

    /// Sets property `name` of `data_source` to `configuration` (`{"number": {}}`), as a person
    /// editing the database in Notion would.
    pub fn set_property(&self, data_source: &str, name: &str, configuration: Value) {
        let mut st = self.inner.lock();
        let id = st.new_id();
        let ds = st
            .sources
            .get_mut(&compact(data_source).unwrap())
            .expect("a data source of this fake");
        let kind = configuration
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .expect("{\"<type>\": {...}}");
        let mut property = serde_json::json!({ "id": &id[..8], "name": name, "type": kind });
        property[&kind] = configuration[&kind].clone();
        ds.properties.insert(name.to_string(), property);
        drop(st);
        self.inner.bump();
    }

    /// The schema of `data_source` as `GET /v1/data_sources/{id}` returns it.
    pub fn schema(&self, data_source: &str) -> Value {
        let st = self.inner.lock();
        rest::data_source_object(&st, &st.sources[&compact(data_source).unwrap()])
    }

    /// The pages of `data_source`, in creation order.
    pub fn pages(&self, data_source: &str) -> Vec<FakePage> {
        let key = compact(data_source).unwrap();
        let st = self.inner.lock();
        pages_of(&st, &key)
    }

    /// The blocks of `page`, in order.
    pub fn children(&self, page: &str) -> Vec<Value> {
        let key = compact(page).unwrap();
        let st = self.inner.lock();
        st.pages
            .iter()
            .find(|p| compact(&p.id).unwrap() == key)
            .map(|p| p.children.clone())
            .unwrap_or_default()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().requests.clone()
    }

    /// How many requests with `method` had a path starting with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.inner
            .lock()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    }

    /// What patchbay sent that real Notion would refuse (or a schema it re-typed).
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().violations.clone()
    }

    /// Answers the next `times` requests whose path starts with `prefix` with `fault`.
    pub fn inject(&self, prefix: &str, fault: Fault, times: usize) {
        self.inner
            .lock()
            .faults
            .push((prefix.to_string(), fault, times));
    }

    /// Every request answered 503 while on.
    pub fn set_outage(&self, outage: bool) {
        self.inner.lock().outage = outage;
        self.inner.bump();
    }

    /// The rate limit (`None`: none).
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.inner.lock().bucket = limit.map(|limit| Bucket {
            limit,
            tokens: limit.burst,
            at: Instant::now(),
        });
    }

    /// Whether the integration may insert content (create pages, append blocks).
    pub fn set_insert_capability(&self, allowed: bool) {
        self.inner.lock().no_insert = !allowed;
    }

    /// Awaits at least `n` pages in `data_source` and returns them all.
    pub async fn wait_pages(&self, data_source: &str, n: usize) -> Vec<FakePage> {
        let key = compact(data_source).unwrap();
        self.wait(&format!("{n} pages in {data_source}"), |st| {
            let pages = pages_of(st, &key);
            (pages.len() >= n).then_some(pages)
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
        let key = compact(id).unwrap();
        self.wait(what, |st| {
            let page = st.pages.iter().find(|p| compact(&p.id).unwrap() == key)?;
            let page = FakePage {
                id: page.id.clone(),
                data_source: page.data_source.clone(),
                properties: page.properties.clone(),
                in_trash: page.in_trash,
            };
            pred(&page).then_some(page)
        })
        .await
    }

    /// Awaits a request that `pred` accepts (its status is set once answered) and returns it.
    pub async fn wait_request(&self, what: &str, pred: impl Fn(&Recorded) -> bool) -> Recorded {
        self.wait(what, |st| st.requests.iter().find(|r| pred(r)).cloned())
            .await
    }

    /// Awaits at least `n` requests and returns them all.
    pub async fn wait_requests(&self, n: usize) -> Vec<Recorded> {
        self.wait(&format!("{n} requests"), |st| {
            (st.requests.len() >= n).then(|| st.requests.clone())
        })
        .await
    }

    /// Awaits at least `n` blocks in `page` and returns them all.
    pub async fn wait_children(&self, page: &str, n: usize) -> Vec<Value> {
        let key = compact(page).unwrap();
        self.wait(&format!("{n} blocks in page {page}"), |st| {
            let page = st.pages.iter().find(|p| compact(&p.id).unwrap() == key)?;
            (page.children.len() >= n).then(|| page.children.clone())
        })
        .await
    }

    async fn wait<T>(&self, what: &str, mut f: impl FnMut(&St) -> Option<T>) -> T {
        let mut changed = self.inner.changed.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = f(&self.inner.lock()) {
                return found;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                _ => panic!("timed out after 20 s waiting for {what}"),
            }
        }
    }
}

fn pages_of(st: &St, data_source: &str) -> Vec<FakePage> {
    st.pages
        .iter()
        .filter(|p| p.data_source == data_source)
        .map(|p| FakePage {
            id: p.id.clone(),
            data_source: p.data_source.clone(),
            properties: p.properties.clone(),
            in_trash: p.in_trash,
        })
        .collect()
}
