//! The Notion client: one module, on the shared resilience layer, for API version 2025-09-03
//! (databases hold data sources; pages are created under a data source).
//!
//! - [`Notion`] hands out one [`Client`] per token. Clients of the same token share one
//!   [`Upstream`]: its rate limit (Notion allows an average of 3 requests per second per
//!   integration), its holds after a 429, its circuit breaker (shown in `/metrics` as
//!   `patchbay_circuit_state{upstream="notion"}`) and its retry policy. Every job and health
//!   check of a token therefore shares its quota.
//! - Every call goes through [`Upstream::exchange`], which returns Notion's answer whatever its
//!   status, so the client reads Notion's error `code`, `message` and `request_id`
//!   ([`NotionError`]), and logs the request id with every failure.
//! - Retries: 429 `rate_limited` and 529 `service_overload` after `Retry-After`, for every call
//!   (Notion did nothing); 500/502/503/504 and lost answers only for reads and for writes that
//!   can be repeated (a page update sets the same values); creating a page or appending blocks
//!   is never repeated after it may have reached Notion: the jobs find what a lost answer
//!   created before creating again.
//! - Pagination (`start_cursor`, `has_more`, `next_cursor`, `page_size` of 100) is handled in
//!   one place, [`Client::paginate`]; appends are cut into batches of 100 blocks.
//! - Every attempt is counted: per client handle for the run that uses it
//!   ([`Client::requests_used`]), and in `patchbay_notion_requests_total{token, outcome}`.

mod error;
pub mod wire;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::NotionToken;
use crate::metrics::Metrics;
use crate::model::NotionId;
use crate::resilience::{
    BreakerConfig, Call, Exchange, RateLimit, RetryPolicy, Upstream, UpstreamConfig, UpstreamError,
};
use crate::secret::Secret;
pub use error::NotionError;
use wire::{BotUser, DataSource, DataSourceRef, Database, List, Page};

/// The API version patchbay speaks.
pub const NOTION_VERSION: &str = "2025-09-03";
/// Notion's published rate: an average of 3 requests per second per integration.
pub const REQUESTS_PER_SECOND: u32 = 3;
/// The largest page of results Notion returns.
pub const PAGE_SIZE: usize = 100;
/// The most blocks one append may carry.
pub const MAX_BLOCKS_PER_APPEND: usize = 100;

/// How calls to Notion behave: 30 s per attempt (a query of 100 rich pages can take a while),
/// four attempts, and up to a minute of `Retry-After` honoured before giving up.
fn upstream_config() -> UpstreamConfig {
    UpstreamConfig {
        timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        },
        breaker: BreakerConfig {
            failure_threshold: 5,
            open_duration: Duration::from_secs(30),
        },
        // No burst beyond the average: a sync of hundreds of rows then never runs ahead of
        // Notion's quota and meets its 429s only when something else spends the token too.
        rate_limit: Some(RateLimit {
            per_second: NonZeroU32::new(REQUESTS_PER_SECOND).expect("not zero"),
            burst: NonZeroU32::new(1).expect("not zero"),
        }),
        // Several writes are in flight: a 429 met by one holds the others until it ends,
        // rather than failing them.
        wait_out_holds: true,
        ..UpstreamConfig::default()
    }
}

/// The Notion clients of one process, one per token.
pub struct Notion {
    base: Url,
    http: reqwest::Client,
    metrics: Option<Arc<Metrics>>,
    clients: Mutex<HashMap<String, Client>>,
}

impl std::fmt::Debug for Notion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notion")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Notion {
    /// Clients that call `base` (Notion itself, or `NOTION_API_BASE`) and report to `metrics`.
    pub fn new(mut base: Url, metrics: Option<Arc<Metrics>>) -> Notion {
        // Paths are joined onto the base: keep a base path (a proxy's prefix) whole.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Notion {
            base,
            http: reqwest::Client::builder()
                .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the TLS backend initialises"),
            metrics,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client of `token`: the same upstream (limit, holds, breaker) for every caller that
    /// uses the same variable with the same value.
    pub fn client(&self, token: &NotionToken) -> Client {
        let mut clients = self.clients.lock().expect("notion clients lock");
        if let Some(client) = clients.get(&token.variable)
            && client.shared.token == token.value
        {
            return client.counted();
        }
        let name = if token.variable == crate::config::DEFAULT_NOTION_TOKEN {
            "notion".to_string()
        } else {
            format!("notion:{}", token.variable)
        };
        let metrics = self.metrics.clone();
        let variable = token.variable.clone();
        let observer: crate::resilience::AttemptObserver = Arc::new(move |outcome| {
            if let Some(metrics) = &metrics {
                let label = match outcome {
                    Ok(_) => "ok",
                    Err(error) => error.kind(),
                };
                metrics.notion_request(&variable, label);
            }
        });
        let upstream = Upstream::observed(name, upstream_config(), observer);
        if let Some(metrics) = &self.metrics {
            metrics.watch_upstream(upstream.clone());
        }
        let client = Client {
            shared: Arc::new(Shared {
                http: self.http.clone(),
                base: self.base.clone(),
                token: token.value.clone(),
                variable: token.variable.clone(),
                upstream,
            }),
            used: Arc::new(AtomicU64::new(0)),
        };
        clients.insert(token.variable.clone(), client.clone());
        client.counted()
    }
}

struct Shared {
    http: reqwest::Client,
    base: Url,
    token: Secret,
    variable: String,
    upstream: Upstream,
}

/// A Notion client for one token. Clones share the token's upstream and the request count of
/// the handle they were cloned from; [`Client::counted`] starts a fresh count.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    used: Arc<AtomicU64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("notion::Client")
            .field("token", &self.shared.variable)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

/// Which database and data source a job writes to, as resolved from what a person pasted.
#[derive(Debug, Clone)]
pub struct Target {
    /// The database.
    pub database: Database,
    /// Its data source the job uses.
    pub data_source: DataSourceRef,
}

impl Client {
    /// The same client with its own request count, for one run.
    pub fn counted(&self) -> Client {
        Client {
            shared: self.shared.clone(),
            used: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The requests this handle (and its clones) sent, retries included.
    pub fn requests_used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The variable holding the token, for messages.
    pub fn token_variable(&self) -> &str {
        &self.shared.variable
    }

    /// The shared upstream, for tests and metrics.
    pub fn upstream(&self) -> &Upstream {
        &self.shared.upstream
    }

    /// `GET /v1/users/me` as a health probe: one attempt, outside the breaker; verifies the
    /// token.
    pub async fn me(&self) -> Result<BotUser, NotionError> {
        self.request(Method::GET, "v1/users/me", None, Call::probe())
            .await
    }

    /// `GET /v1/databases/{id}`.
    pub async fn database(&self, id: &NotionId) -> Result<Database, NotionError> {
        let path = format!("v1/databases/{id}");
        self.request(Method::GET, &path, None, Call::idempotent())
            .await
    }

    /// The database `id` and the data source a job uses: its only one, or the one `wanted`
    /// names (by name or id). Several data sources and none named, or a name that matches
    /// none, is a [`NotionError::Setup`] listing them.
    pub async fn resolve(
        &self,
        id: &NotionId,
        wanted: Option<&str>,
    ) -> Result<Target, NotionError> {
        let database = self.database(id).await?;
        let list = || {
            database
                .data_sources
                .iter()
                .map(|ds| format!("\"{}\" ({})", ds.name, ds.id))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let data_source = match (wanted, database.data_sources.as_slice()) {
            (_, []) => {
                return Err(NotionError::Setup(format!(
                    "the database {id} has no data source patchbay can write to"
                )));
            }
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(NotionError::Setup(format!(
                    "the database {id} has {} data sources: {}; set data_source = \"<name or id>\" in the job",
                    database.data_sources.len(),
                    list()
                )));
            }
            (Some(wanted), sources) => {
                let wanted_id = NotionId::parse(wanted).ok();
                let found = sources.iter().find(|ds| {
                    ds.name.eq_ignore_ascii_case(wanted)
                        || wanted_id
                            .as_ref()
                            .is_some_and(|w| NotionId::parse(&ds.id).ok().as_ref() == Some(w))
                });
                match found {
                    Some(ds) => ds.clone(),
                    None => {
                        return Err(NotionError::Setup(format!(
                            "the database {id} has no data source {wanted:?}; it has {}",
                            list()
                        )));
                    }
                }
            }
        };
        Ok(Target {
            database,
            data_source,
        })
    }

    /// `GET /v1/data_sources/{id}`: the schema.
    pub async fn data_source(&self, id: &str) -> Result<DataSource, NotionError> {
        let path = format!("v1/data_sources/{id}");
        self.request(Method::GET, &path, None, Call::idempotent())
            .await
    }

    /// `PATCH /v1/data_sources/{id}` with `properties` (name → property configuration): adds
    /// what is missing. Repeating it sets the same schema again.
    pub async fn update_data_source(
        &self,
        id: &str,
        properties: Value,
    ) -> Result<DataSource, NotionError> {
        let path = format!("v1/data_sources/{id}");
        let body = json!({ "properties": properties });
        self.request(Method::PATCH, &path, Some(&body), Call::idempotent())
            .await
    }

    /// `POST /v1/data_sources/{id}/query` with `filter`, every page of results; `on_page` is
    /// told each page as it arrives (for progress).
    pub async fn query(
        &self,
        data_source: &str,
        filter: Option<Value>,
        mut on_page: impl FnMut(usize),
    ) -> Result<Vec<Page>, NotionError> {
        let path = format!("v1/data_sources/{data_source}/query");
        self.paginate(
            |cursor| {
                let mut body = json!({ "page_size": PAGE_SIZE });
                if let Some(filter) = &filter {
                    body["filter"] = filter.clone();
                }
                if let Some(cursor) = cursor {
                    body["start_cursor"] = json!(cursor);
                }
                (Method::POST, path.clone(), Some(body))
            },
            &mut on_page,
        )
        .await
    }

    /// `GET /v1/blocks/{id}/children`, every page of them.
    pub async fn children(&self, block: &str) -> Result<Vec<Value>, NotionError> {
        self.paginate(
            |cursor| {
                let mut path = format!("v1/blocks/{block}/children?page_size={PAGE_SIZE}");
                if let Some(cursor) = cursor {
                    path.push_str("&start_cursor=");
                    path.push_str(&cursor);
                }
                (Method::GET, path, None)
            },
            &mut |_| {},
        )
        .await
    }

    /// `POST /v1/pages`: a new page under `data_source` with `properties` and up to 100
    /// `children` blocks. Never repeated once it may have reached Notion.
    pub async fn create_page(
        &self,
        data_source: &str,
        properties: Value,
        children: Vec<Value>,
    ) -> Result<Page, NotionError> {
        let mut body = json!({
            "parent": { "type": "data_source_id", "data_source_id": data_source },
            "properties": properties,
        });
        if !children.is_empty() {
            body["children"] = Value::Array(children);
        }
        self.request(
            Method::POST,
            "v1/pages",
            Some(&body),
            Call::non_idempotent(),
        )
        .await
    }

    /// `PATCH /v1/pages/{id}` with `properties`: sets those values (repeatable).
    pub async fn update_page(&self, page: &str, properties: Value) -> Result<Page, NotionError> {
        let path = format!("v1/pages/{page}");
        let body = json!({ "properties": properties });
        self.request(Method::PATCH, &path, Some(&body), Call::idempotent())
            .await
    }

    /// `PATCH /v1/blocks/{id}/children`: appends `children` in batches of 100. Never repeated
    /// once a batch may have reached Notion.
    pub async fn append_children(
        &self,
        block: &str,
        children: &[Value],
    ) -> Result<(), NotionError> {
        let path = format!("v1/blocks/{block}/children");
        for batch in children.chunks(MAX_BLOCKS_PER_APPEND) {
            let body = json!({ "children": batch });
            self.request::<Value>(Method::PATCH, &path, Some(&body), Call::non_idempotent())
                .await?;
        }
        Ok(())
    }

    /// The one pagination loop: `page(cursor)` says what to send for a cursor; every result is
    /// collected until Notion says there is no more.
    async fn paginate<T: DeserializeOwned>(
        &self,
        page: impl Fn(Option<String>) -> (Method, String, Option<Value>),
        on_page: &mut impl FnMut(usize),
    ) -> Result<Vec<T>, NotionError> {
        let mut results = Vec::new();
        let mut cursor = None;
        loop {
            let (method, path, body) = page(cursor.take());
            // A query is a POST but reads only: repeating it is safe.
            let list: List<T> = self
                .request(method, &path, body.as_ref(), Call::idempotent())
                .await?;
            on_page(list.results.len());
            results.extend(list.results);
            match (list.has_more, list.next_cursor) {
                (true, Some(next)) => cursor = Some(next),
                _ => return Ok(results),
            }
        }
    }

    /// One call through the shared upstream; Notion's error object read on failure.
    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        call: Call<'_>,
    ) -> Result<T, NotionError> {
        let shared = &*self.shared;
        let url = shared
            .base
            .join(path)
            .map_err(|err| NotionError::Unanswered(UpstreamError::BadResponse(err.to_string())))?;
        let build = || {
            self.used.fetch_add(1, Ordering::Relaxed);
            let mut request = shared
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(shared.token.expose())
                .header("Notion-Version", NOTION_VERSION);
            if let Some(body) = body {
                request = request.json(body);
            }
            request
        };
        let answer = match shared.upstream.exchange(call, build).await {
            Ok(answer) => answer,
            Err(unanswered) => {
                tracing::warn!(
                    method = %method, path = %redact_path(path), kind = unanswered.error.kind(),
                    error = %unanswered.error, "Notion call failed without an answer"
                );
                return Err(NotionError::Unanswered(unanswered.error));
            }
        };
        if let Some(error) = answer.error() {
            let failure = api_error(&answer, error);
            tracing::warn!(
                method = %method,
                path = %redact_path(path),
                status = answer.status.as_u16(),
                code = failure.code().unwrap_or_default(),
                request_id = failure.request_id().unwrap_or("none"),
                "Notion refused a call: {failure}"
            );
            return Err(failure);
        }
        answer.json().map_err(|err| {
            tracing::warn!(method = %method, path = %redact_path(path), error = %err,
                request_id = request_id_header(&answer).unwrap_or("none"),
                "Notion answered something patchbay cannot read");
            NotionError::Unanswered(err)
        })
    }
}

/// A path as logged: the cursor of a listing is Notion's, not ours, and long; the rest is ids.
fn redact_path(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

fn request_id_header(answer: &Exchange) -> Option<&str> {
    answer
        .headers
        .get("x-notion-request-id")
        .and_then(|value| value.to_str().ok())
}

/// Notion's error object (`{"object": "error", "status", "code", "message", "request_id"}`),
/// read from an answer of 400 or above.
fn api_error(answer: &Exchange, error: UpstreamError) -> NotionError {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        request_id: Option<String>,
    }
    let body: Option<Body> = serde_json::from_slice(&answer.body).ok();
    let status = answer.status;
    let (code, message, request_id) = match body {
        Some(body) => (body.code, body.message, body.request_id),
        None => (String::new(), String::new(), None),
    };
    NotionError::Api {
        status: status.as_u16(),
        code: if code.is_empty() {
            default_code(status).to_string()
        } else {
            code
        },
        message: if message.is_empty() {
            format!("HTTP {status}")
        } else {
            message
        },
        request_id: request_id.or_else(|| request_id_header(answer).map(str::to_string)),
        error,
    }
}

/// The code Notion uses for a status, when an answer carried no error object (a proxy's page).
fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => "restricted_resource",
        404 => "object_not_found",
        409 => "conflict_error",
        429 => "rate_limited",
        502 => "bad_gateway",
        503 => "service_unavailable",
        504 => "gateway_timeout",
        529 => "service_overload",
        500..=599 => "internal_server_error",
        _ => "invalid_request",
    }
}
