//! The batching writer: check tasks hand their results and states to one task, which writes them
//! in one transaction per batch. A batch is written when it holds `batch_size` results, when the
//! oldest waiting result is `flush_interval` old, when a transition arrives (transitions are
//! committed before they are announced), or when asked to flush.
//!
//! The queue is bounded: when storage falls behind, check tasks wait instead of growing memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::instrument;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Batch, Store, StoreError};
use crate::metrics::Metrics;
use crate::model::{CheckResult, IntegrationState, Transition};

enum Op {
    Result(CheckResult, IntegrationState),
    /// A state change: written at once, and acknowledged after commit.
    Commit {
        result: Option<CheckResult>,
        state: IntegrationState,
        transition: Transition,
        ack: oneshot::Sender<Result<(), String>>,
    },
    Flush(oneshot::Sender<Result<(), String>>),
}

/// A cheap handle for sending work to the writer. The writer stops, after a final flush, when
/// every handle is dropped.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Op>,
}

/// The writer stopped (its task ended), so nothing more can be written.
#[derive(Debug, thiserror::Error)]
#[error("the storage writer has stopped")]
pub struct WriterGone;

/// A commit the writer could not make.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The writer has stopped.
    #[error(transparent)]
    Gone(#[from] WriterGone),
    /// The transaction failed.
    #[error("storage write failed: {0}")]
    Failed(String),
}

impl WriterHandle {
    /// Queues a result and the state it led to; waits only when the queue is full.
    #[instrument(skip_all)]
    pub async fn record(
        &self,
        result: CheckResult,
        state: IntegrationState,
    ) -> Result<(), WriterGone> {
        self.tx
            .send(Op::Result(result, state))
            .await
            .map_err(|_| WriterGone)
    }

    /// Writes a transition (with the result that caused it, if any) and waits for the commit.
    #[instrument(skip_all)]
    pub async fn commit_transition(
        &self,
        result: Option<CheckResult>,
        state: IntegrationState,
        transition: Transition,
    ) -> Result<(), CommitError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Op::Commit {
                result,
                state,
                transition,
                ack,
            })
            .await
            .map_err(|_| WriterGone)?;
        done.await
            .map_err(|_| WriterGone)?
            .map_err(CommitError::Failed)
    }

    /// Writes everything queued so far and waits for the commit.
    #[instrument(skip_all)]
    pub async fn flush(&self) -> Result<(), CommitError> {
        let (ack, done) = oneshot::channel();
        self.tx.send(Op::Flush(ack)).await.map_err(|_| WriterGone)?;
        done.await
            .map_err(|_| WriterGone)?
            .map_err(CommitError::Failed)
    }

    /// Operations waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Starts the writer task.
pub fn spawn(
    store: Store,
    batch_size: usize,
    flush_interval: Duration,
    metrics: Arc<Metrics>,
) -> (WriterHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(batch_size.max(1) * 4);
    let task = tokio::spawn(run(store, rx, batch_size.max(1), flush_interval, metrics));
    (WriterHandle { tx }, task)
}

struct Pending {
    results: Vec<CheckResult>,
    states: HashMap<String, IntegrationState>,
    transitions: Vec<Transition>,
    acks: Vec<oneshot::Sender<Result<(), String>>>,
}

impl Pending {
    fn new() -> Self {
        Pending {
            results: Vec::new(),
            states: HashMap::new(),
            transitions: Vec::new(),
            acks: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.results.is_empty()
            && self.states.is_empty()
            && self.transitions.is_empty()
            && self.acks.is_empty()
    }

    /// Adds `op`; returns true when it asks for an immediate write.
    fn add(&mut self, op: Op) -> bool {
        match op {
            Op::Result(result, state) => {
                self.results.push(result);
                self.states.insert(state.integration.clone(), state);
                false
            }
            Op::Commit {
                result,
                state,
                transition,
                ack,
            } => {
                self.results.extend(result);
                self.states.insert(state.integration.clone(), state);
                self.transitions.push(transition);
                self.acks.push(ack);
                true
            }
            Op::Flush(ack) => {
                self.acks.push(ack);
                true
            }
        }
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Op>,
    batch_size: usize,
    flush_interval: Duration,
    metrics: Arc<Metrics>,
) {
    let mut pending = Pending::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let op = match deadline {
            Some(at) => tokio::select! {
                op = rx.recv() => op,
                () = tokio::time::sleep_until(at) => {
                    write(&store, &mut pending, &metrics).await;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(op) = op else {
            // Every handle is gone: write what is left and stop.
            write(&store, &mut pending, &metrics).await;
            return;
        };
        let mut urgent = pending.add(op);
        // Take whatever else is already queued, so a burst becomes one transaction.
        while pending.results.len() < batch_size {
            match rx.try_recv() {
                Ok(op) => urgent |= pending.add(op),
                Err(_) => break,
            }
        }
        metrics.write_queue_depth.set((rx.len()) as i64);
        if urgent || pending.results.len() >= batch_size {
            write(&store, &mut pending, &metrics).await;
            deadline = None;
        } else if deadline.is_none() && !pending.is_empty() {
            deadline = Some(Instant::now() + flush_interval);
        }
    }
}

async fn write(store: &Store, pending: &mut Pending, metrics: &Metrics) {
    if pending.is_empty() {
        return;
    }
    let taken = std::mem::replace(pending, Pending::new());
    let batch = Batch {
        results: taken.results,
        states: taken.states.into_values().collect(),
        transitions: taken.transitions,
    };
    let outcome = write_with_retry(store, &batch).await;
    match &outcome {
        Ok(()) => {
            metrics.storage_batches.inc();
            metrics.storage_rows.inc_by(batch.results.len() as u64);
        }
        Err(err) => {
            metrics.storage_errors.inc();
            tracing::error!(error = %err, results = batch.results.len(), "storage batch lost");
        }
    }
    for ack in taken.acks {
        let _ = ack.send(
            outcome
                .as_ref()
                .copied()
                .map_err(std::string::ToString::to_string),
        );
    }
}

/// A locked or briefly unavailable database should not lose a batch: try a few times.
async fn write_with_retry(store: &Store, batch: &Batch) -> Result<(), StoreError> {
    let mut delay = Duration::from_millis(50);
    let batch = Arc::new(batch.clone());
    for attempt in 1.. {
        let (store, batch) = (store.clone(), batch.clone());
        match super::offload(async move { store.write(&batch).await }).await {
            Ok(()) => return Ok(()),
            Err(err) if attempt < 5 => {
                tracing::warn!(error = %err, attempt, "storage batch failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(err) => return Err(err),
        }
    }
    unreachable!("the loop returns")
}
