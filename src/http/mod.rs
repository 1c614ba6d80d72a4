//! The HTTP front: `/healthz`, `/readyz` and `/metrics` here, and the REST API under `/api/v1`
//! in [`api`]. The only module that imports axum. Handlers are thin: they ask the engine, the
//! store, the metrics registry or the control plane and render the answer. Every path no route
//! serves, and every method a route does not take, is answered in JSON like the API's errors.

pub mod api;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::monitor::Engine;
use crate::service::ControlPlane;
use crate::store::Store;

/// What the handlers need.
#[derive(Clone)]
pub struct AppState {
    /// The database, for readiness.
    pub store: Store,
    /// The engine, for readiness.
    pub engine: Engine,
    /// The registry rendered at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The control plane the REST API calls.
    pub plane: Arc<ControlPlane>,
    /// The largest request body the API takes (`[api].body_limit`, read at start).
    pub body_limit: usize,
    /// The REST list as last rendered, shared by every caller while it is fresh.
    pub list_cache: Arc<api::ListCache>,
}

/// The router, separate from serving so tests can drive it on their own listener.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api::router(state.body_limit))
        .fallback(api::error::no_route)
        .method_not_allowed_fallback(api::error::wrong_method)
        .with_state(state)
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// The `/readyz` body: the verdict first, then each part's own answer.
#[derive(serde::Serialize)]
struct Readiness {
    status: &'static str,
    storage: &'static str,
    scheduler: &'static str,
}

async fn readyz(State(state): State<AppState>) -> Response {
    // The endpoint answers anyone who can reach the port, so it says which part is not ready
    // and no more: the error itself (paths, driver text) goes to the log.
    let storage = match state.store.ping().await {
        Ok(()) => "ok",
        Err(err) => {
            tracing::warn!(error = %err, "readiness: the database does not answer");
            "unavailable"
        }
    };
    let scheduler = if state.engine.is_running() {
        "ok"
    } else {
        "stopped"
    };
    let ready = storage == "ok" && scheduler == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ready" } else { "not ready" },
        storage,
        scheduler,
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
