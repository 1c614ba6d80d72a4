//! The HTTP front over a real engine and store: `/readyz` says which part is not ready.

use std::time::Duration;

use patchbay::config::{self, Environment};
use patchbay::http::{AppState, serve};
use patchbay::monitor::{Engine, EngineParts};
use patchbay::service::ControlPlane;
use patchbay::store::Store;
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
    let config = config::parse("", "test.toml", None, &Environment::default()).unwrap();
    let (parts, _writer) = EngineParts::from_config(store.clone(), &config);
    let metrics = parts.metrics.clone();
    let engine = Engine::start(parts).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let plane = std::sync::Arc::new(
        ControlPlane::new(&config, store.clone(), Some(engine.clone()))
            .await
            .unwrap(),
    );
    let server = tokio::spawn(serve(
        listener,
        AppState {
            store: store.clone(),
            engine: engine.clone(),
            metrics,
            plane,
            body_limit: config.api.body_limit,
            list_cache: std::sync::Arc::default(),
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
