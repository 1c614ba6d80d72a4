//! The gateway websocket at `/gateway`: HELLO, heartbeats, IDENTIFY (a new session, READY and
//! GUILD_CREATE), RESUME (the missed dispatches replayed, then RESUMED), the dispatches the
//! fake sends on the session, and dropping a connection the way a network does.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::checks::serenity_parses;
use super::*;

impl FakeDiscord {
    /// The gateway URL handed out by `GET /api/v10/gateway`.
    pub fn gateway_url(&self) -> String {
        self.inner.ws_url()
    }

    /// The tokens sent in IDENTIFY, in order.
    pub fn identify_tokens(&self) -> Vec<String> {
        self.inner.lock().identify_tokens.clone()
    }

    /// Every gateway frame the fake wrote (HELLO, ACKs, dispatches), in order.
    pub fn sent_frames(&self) -> Vec<Value> {
        self.inner.lock().sent_frames.clone()
    }

    /// Every frame the bot sent on the gateway (tokens replaced by `***`).
    pub fn gateway_ops(&self) -> Vec<Value> {
        self.inner.lock().gateway_ops.clone()
    }

    pub fn identify_count(&self) -> usize {
        self.inner.lock().identify_count
    }

    pub fn resume_count(&self) -> usize {
        self.inner.lock().resume_count
    }

    pub fn gateway_status(&self) -> GatewayStatus {
        status(&self.inner.lock())
    }

    /// Awaits a gateway state matching `pred`.
    pub async fn wait_gateway(&self, what: &str, pred: impl Fn(&GatewayStatus) -> bool) {
        self.wait(what, |st| pred(&status(st)).then_some(())).await;
    }

    /// Until a session is identified and READY + GUILD_CREATE were written to the socket.
    pub async fn wait_ready(&self) {
        self.wait_gateway("the gateway session to be READY", |s| {
            s.identify_count >= 1 && s.ready_written && s.connected
        })
        .await;
    }

    /// Until `n` IDENTIFYs happened and the last one's READY + GUILD_CREATE were written.
    pub async fn wait_identified(&self, n: usize) {
        self.wait_gateway(&format!("IDENTIFY #{n} and its READY"), |s| {
            s.identify_count >= n && s.ready_written && s.connected
        })
        .await;
    }

    /// Until `n` RESUMEs happened and their RESUMED dispatches were written.
    pub async fn wait_resumed(&self, n: usize) {
        self.wait_gateway(&format!("RESUME #{n} and its RESUMED"), |s| {
            s.resume_count >= n && s.resumed_written >= n && s.connected
        })
        .await;
    }

    /// Closes the gateway websocket abruptly (no close frame, like a network drop) and waits until
    /// the connection is gone. Serenity then reconnects and RESUMEs.
    pub async fn drop_gateway(&self) {
        let conn_id = {
            let mut st = self.inner.lock();
            let conn = st.conn.as_mut().expect("no gateway connection to drop");
            if let Some(kill) = conn.kill.take() {
                let _ = kill.send(());
            }
            conn.id
        };
        self.wait(&format!("gateway connection {conn_id} to close"), |st| {
            (st.conn.as_ref().map(|c| c.id) != Some(conn_id)).then_some(())
        })
        .await;
    }
}

impl St {
    /// Appends a dispatch to the session and writes it to the bound connection, if any. Returns
    /// false when there is no session.
    pub(super) fn dispatch(&mut self, t: &str, d: Value, kind: OutKind) -> bool {
        let Some(session) = self.session.as_mut() else {
            return false;
        };
        session.seq += 1;
        let seq = session.seq;
        let out = Out {
            text: json!({"op": 0, "t": t, "s": seq, "d": d}).to_string(),
            kind,
        };
        session.log.push((seq, out.clone()));
        if let Some(conn) = self.conn.as_ref().filter(|c| c.bound) {
            let _ = conn.tx.send(out);
        }
        true
    }
}

pub(super) fn status(st: &St) -> GatewayStatus {
    GatewayStatus {
        connected: st.conn.as_ref().is_some_and(|c| c.bound),
        identify_count: st.identify_count,
        resume_count: st.resume_count,
        ready_written: st.ready_written,
        resumed_written: st.resumed_written,
        session_id: st.session.as_ref().map(|s| s.id.clone()),
    }
}

pub(super) async fn ws_handler(State(inner): State<Arc<Inner>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| run_connection(inner, socket))
}

enum Reply {
    Nothing,
    Send(Value),
    Close(u16, &'static str),
}

async fn run_connection(inner: Arc<Inner>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let (kill_tx, mut kill_rx) = oneshot::channel::<()>();
    let conn_id = {
        let mut st = inner.lock();
        st.next_conn += 1;
        let id = st.next_conn;
        // A new connection replaces the old one (dropping its sender ends its task).
        st.conn = Some(Conn {
            id,
            tx,
            kill: Some(kill_tx),
            bound: false,
        });
        id
    };
    inner.bump();

    let hello =
        json!({"op": 10, "s": null, "t": null, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}});
    let mut open = write_frame(&inner, &mut socket, &hello.to_string()).await;
    while open {
        tokio::select! {
            _ = &mut kill_rx => break,
            out = rx.recv() => {
                let Some(out) = out else { break };
                let stamped = stamp_interaction(&inner, out.kind);
                open = write_frame(&inner, &mut socket, &out.text).await;
                if open {
                    mark_written(&inner, conn_id, out.kind);
                } else if stamped {
                    unstamp_interaction(&inner, out.kind);
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(text))) => text.as_str().to_string(),
                    Some(Ok(WsMessage::Binary(_))) => {
                        inner.lock().violation("gateway: the client sent a binary frame".into());
                        continue;
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        // Answer the closing handshake, as Discord does.
                        let _ = socket.send(WsMessage::Close(frame)).await;
                        break;
                    }
                    None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let reply = handle_op(&inner, conn_id, &text);
                inner.bump();
                match reply {
                    Reply::Nothing => {}
                    Reply::Send(frame) => {
                        open = write_frame(&inner, &mut socket, &frame.to_string()).await;
                    }
                    Reply::Close(code, reason) => {
                        let _ = socket
                            .send(WsMessage::Close(Some(CloseFrame { code, reason: reason.into() })))
                            .await;
                        break;
                    }
                }
            }
        }
    }
    // Dropping the socket closes the TCP connection without a close frame.
    drop(socket);
    {
        let mut st = inner.lock();
        if st.conn.as_ref().map(|c| c.id) == Some(conn_id) {
            st.conn = None;
        }
    }
    inner.bump();
}

async fn write_frame(inner: &Inner, socket: &mut WebSocket, text: &str) -> bool {
    let ok = socket
        .send(WsMessage::Text(text.to_string().into()))
        .await
        .is_ok();
    if ok && let Ok(value) = serde_json::from_str::<Value>(text) {
        inner.lock().sent_frames.push(value);
    }
    ok
}

/// Stamps an interaction's `sent_at` just before its frame is written, if it has none yet, and
/// says whether it did. Stamping after the write would race the bot: it can read the frame and
/// POST its callback before the stamp, leaving `callback_latency` without a start.
fn stamp_interaction(inner: &Inner, kind: OutKind) -> bool {
    let OutKind::Interaction(id) = kind else {
        return false;
    };
    let mut st = inner.lock();
    match st.interactions.get_mut(&id) {
        Some(rec) if rec.sent_at.is_none() => {
            rec.sent_at = Some(Instant::now());
            true
        }
        _ => false,
    }
}

/// Takes back a stamp whose write failed: the frame will be sent again after a RESUME, and the
/// latency counts from that write.
fn unstamp_interaction(inner: &Inner, kind: OutKind) {
    if let OutKind::Interaction(id) = kind
        && let Some(rec) = inner.lock().interactions.get_mut(&id)
    {
        rec.sent_at = None;
    }
}

fn mark_written(inner: &Inner, conn_id: u64, kind: OutKind) {
    let mut st = inner.lock();
    if st.conn.as_ref().map(|c| c.id) != Some(conn_id) {
        return;
    }
    match kind {
        OutKind::Plain | OutKind::Interaction(_) => {}
        OutKind::GuildCreate => st.ready_written = true,
        OutKind::Resumed => st.resumed_written += 1,
    }
    drop(st);
    inner.bump();
}

fn handle_op(inner: &Inner, conn_id: u64, text: &str) -> Reply {
    let mut st = inner.lock();
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        st.violation(format!("gateway: frame is not JSON: {text}"));
        return Reply::Close(4002, "Error while decoding payload.");
    };
    let mut logged = frame.clone();
    if logged["d"]["token"].is_string() {
        logged["d"]["token"] = json!("***");
    }
    st.gateway_ops.push(logged);
    let current = st.conn.as_ref().map(|c| c.id) == Some(conn_id);
    let bound = current && st.conn.as_ref().is_some_and(|c| c.bound);
    match frame["op"].as_u64() {
        Some(1) => Reply::Send(json!({"op": 11, "s": null, "t": null, "d": null})),
        Some(2) => {
            if !current {
                return Reply::Close(4000, "Unknown error.");
            }
            if bound {
                st.violation("gateway: IDENTIFY on an identified connection".into());
                return Reply::Close(4005, "Already authenticated.");
            }
            let token = frame["d"]["token"].as_str().unwrap_or_default().to_string();
            if token.is_empty() {
                st.violation("gateway: IDENTIFY without a token".into());
                return Reply::Close(4004, "Authentication failed.");
            }
            st.identify_tokens.push(token);
            st.identify_count += 1;
            st.next_session += 1;
            let session_id = format!("fake-session-{}", st.next_session);
            st.session = Some(Session {
                id: session_id.clone(),
                seq: 0,
                log: Vec::new(),
            });
            st.ready_written = false;
            if let Some(conn) = st.conn.as_mut() {
                conn.bound = true;
            }
            let shard = match &frame["d"]["shard"] {
                Value::Array(a) if a.len() == 2 => Value::Array(a.clone()),
                _ => json!([0, 1]),
            };
            let ready = payload::ready(&session_id, &inner.ws_url(), shard);
            let guild = payload::guild_with_channels(&st.guild_channels);
            for (t, d) in [("READY", &ready), ("GUILD_CREATE", &guild)] {
                if let Err(why) = serenity_parses(t, d) {
                    st.violation(format!(
                        "fake Discord bug: serenity cannot parse its {t}: {why}"
                    ));
                }
            }
            st.dispatch("READY", ready, OutKind::Plain);
            st.dispatch("GUILD_CREATE", guild, OutKind::GuildCreate);
            Reply::Nothing
        }
        Some(6) => {
            if !current {
                return Reply::Close(4000, "Unknown error.");
            }
            let d = &frame["d"];
            let asked = d["session_id"].as_str().unwrap_or_default();
            let seq = d["seq"].as_u64().unwrap_or(0);
            let matches = st.session.as_ref().is_some_and(|s| s.id == asked);
            if !matches || d["token"].as_str().unwrap_or_default().is_empty() {
                return Reply::Send(json!({"op": 9, "s": null, "t": null, "d": false}));
            }
            st.resume_count += 1;
            let replay: Vec<Out> = st
                .session
                .as_ref()
                .map(|s| {
                    s.log
                        .iter()
                        .filter(|(s, _)| *s > seq)
                        .map(|(_, o)| o.clone())
                        .collect()
                })
                .unwrap_or_default();
            if let Some(conn) = st.conn.as_mut() {
                conn.bound = true;
                for out in replay {
                    let _ = conn.tx.send(out);
                }
            }
            st.dispatch("RESUMED", json!({}), OutKind::Resumed);
            Reply::Nothing
        }
        // Presence update, voice state, request guild members, soundboard: accepted, ignored.
        Some(3 | 4 | 8 | 31) => Reply::Nothing,
        _ => {
            st.violation(format!("gateway: unknown opcode in {text}"));
            Reply::Close(4001, "Unknown opcode.")
        }
    }
}
