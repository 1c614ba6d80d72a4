//! The HTTP front over a real engine and store: `/readyz` says which part is not ready.

use std::sync::Arc;
use std::time::Duration;

use patchbay::http::{AppState, serve};
use patchbay::metrics::Metrics;
use patchbay::monitor::Engine;
use patchbay::monitor::http_check::HttpChecker;
use patchbay::store::{Store, writer};
use tokio_util::sync::CancellationToken;

async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn readyz_names_the_part_that_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("db").display()))
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::new());
    let (writer, _task) = writer::spawn(
        store.clone(),
        10,
        Duration::from_millis(10),
        metrics.clone(),
    );
    let engine = Engine::start(
        store.clone(),
        writer,
        metrics.clone(),
        Arc::new(HttpChecker::new()),
        4,
        Vec::new(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        AppState {
            store: store.clone(),
            engine: engine.clone(),
            metrics,
        },
        stop.clone(),
    ));

    assert_eq!(
        get(address, "/readyz").await,
        (
            200,
            r#"{"status":"ready","storage":"ok","scheduler":"ok"}"#.to_string()
        )
    );
    assert_eq!(get(address, "/healthz").await, (200, "ok\n".to_string()));

    engine.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        get(address, "/readyz").await,
        (
            503,
            r#"{"status":"not ready","storage":"ok","scheduler":"stopped"}"#.to_string()
        )
    );

    store.close().await;
    let (status, body) = get(address, "/readyz").await;
    assert_eq!(status, 503);
    // It names the part, not its error text: the endpoint answers anyone who can reach it.
    assert_eq!(
        body,
        r#"{"status":"not ready","storage":"unavailable","scheduler":"stopped"}"#
    );
    // Liveness does not depend on readiness.
    assert_eq!(get(address, "/healthz").await.0, 200);

    stop.cancel();
    server.await.unwrap().unwrap();
}
