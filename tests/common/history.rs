//! What the benches measure against: many integrations configured and a day of their history
//! stored, in the SQLite file the stack ([`super::stack`]) opens. `benches/discord.rs` and
//! `benches/api.rs` share it, so both answer from the same data.

use std::path::Path;

use patchbay::model::{CheckResult, IntegrationState, State};
use patchbay::store::{Batch, Store};

/// The name of integration `i`.
pub fn name(i: usize) -> String {
    format!("svc-{i}")
}

/// `[[integration]]` tables for `n` integrations against a closed port, checked once a day, so
/// the engine runs but does not check during a measurement.
pub fn integrations(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[integration]]\nname = \"{}\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"24h\"\ntags = [\"bench\"]\n",
                name(i)
            )
        })
        .collect()
}

/// Stores a day of history for `n` integrations into the stack's SQLite file in `dir`, before
/// patchbay starts: one result per integration per hour (every 17th failing), latencies from
/// 5 to 204 ms, and a state for each (every 97th DOWN, the rest UP).
pub async fn store_day(dir: &Path, n: usize) {
    let store = Store::open(&format!(
        "sqlite://{}",
        super::stack::db_path(dir).display()
    ))
    .await
    .unwrap();
    let now = patchbay::model::now();
    eprintln!("[bench] storing 24 h of history for {n} integrations ...");
    for hour in 0..24 {
        let results: Vec<CheckResult> = (0..n)
            .map(|i| CheckResult {
                integration: name(i),
                at: now - chrono::Duration::hours(hour),
                success: !(i + hour as usize).is_multiple_of(17),
                latency_ms: 5.0 + (i % 200) as f64,
                status: Some(200),
                error_kind: None,
                message: None,
            })
            .collect();
        let states = if hour == 0 {
            (0..n)
                .map(|i| {
                    let mut state = IntegrationState::new(name(i), now);
                    state.state = if i % 97 == 0 { State::Down } else { State::Up };
                    state
                })
                .collect()
        } else {
            Vec::new()
        };
        store
            .write(&Batch {
                results,
                states,
                transitions: Vec::new(),
            })
            .await
            .unwrap();
    }
    store.close().await;
}
