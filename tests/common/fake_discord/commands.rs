//! Application commands: registration (`PUT`, `POST`, `PATCH`, `DELETE` under
//! `/applications/{id}/commands` and its per-guild twin), stored as Discord stores them, and the
//! command ids interactions carry.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::checks::check_command;
use super::rest::{RestReply, invalid_form, not_found, ok, unserved};
use super::*;

impl FakeDiscord {
    /// The commands registered with `PUT`/`POST`: `None` for global ones, `Some(guild)` per guild.
    pub fn registered_commands(&self, guild: Option<u64>) -> Vec<Value> {
        self.inner
            .lock()
            .commands
            .get(&guild)
            .cloned()
            .unwrap_or_default()
    }
}

impl St {
    /// The registered command's id (and guild, for a guild command), or a stable synthetic id.
    pub(super) fn command_id(&mut self, name: &str) -> (u64, Option<u64>) {
        for (guild, commands) in &self.commands {
            if let Some(c) = commands.iter().find(|c| c["name"] == name)
                && let Some(id) = snowflake(&c["id"])
            {
                return (id, *guild);
            }
        }
        if let Some(id) = self.synthetic_command_ids.get(name) {
            return (*id, None);
        }
        let id = self.snowflake();
        self.synthetic_command_ids.insert(name.to_string(), id);
        (id, None)
    }
}

pub(super) fn commands_route(
    st: &mut St,
    m: &str,
    path: &str,
    app: &str,
    guild: Option<u64>,
    rest: &[&str],
    body: Value,
) -> RestReply {
    if app.parse::<u64>() != Ok(APP_ID) {
        st.violation(format!("{m} {path}: application id is not APP_ID"));
        return not_found(10002, "Unknown Application");
    }
    if let Some(g) = guild
        && g != GUILD_ID
    {
        return not_found(10004, "Unknown Guild");
    }
    match (m, rest) {
        ("GET", []) => ok(Value::Array(
            st.commands.get(&guild).cloned().unwrap_or_default(),
        )),
        ("PUT", []) => {
            let Value::Array(list) = body else {
                return invalid_form(
                    st,
                    &format!("{m} {path}"),
                    vec!["body must be an array".into()],
                )
                .unwrap_or((StatusCode::BAD_REQUEST, None));
            };
            let mut problems = Vec::new();
            for c in &list {
                check_command(c, &mut problems);
            }
            if let Some(reply) = invalid_form(st, &format!("{m} {path}"), problems) {
                return reply;
            }
            let old = st.commands.get(&guild).cloned().unwrap_or_default();
            let stored: Vec<Value> = list
                .iter()
                .map(|c| {
                    let id = old
                        .iter()
                        .find(|o| {
                            o["name"] == c["name"]
                                && o["type"] == c.get("type").cloned().unwrap_or(json!(1))
                        })
                        .and_then(|o| snowflake(&o["id"]))
                        .unwrap_or_else(|| st.snowflake());
                    let version = st.snowflake();
                    stored_command(c, id, version, guild)
                })
                .collect();
            st.commands.insert(guild, stored.clone());
            ok(Value::Array(stored))
        }
        ("POST", []) => {
            let mut problems = Vec::new();
            check_command(&body, &mut problems);
            if let Some(reply) = invalid_form(st, &format!("{m} {path}"), problems) {
                return reply;
            }
            let id = st.snowflake();
            let version = st.snowflake();
            let stored = stored_command(&body, id, version, guild);
            let list = st.commands.entry(guild).or_default();
            list.retain(|c| c["name"] != body["name"]);
            list.push(stored.clone());
            (StatusCode::CREATED, Some(stored))
        }
        (_, [command]) => {
            let list = st.commands.entry(guild).or_default();
            let Some(pos) = list.iter().position(|c| c["id"] == json!(command)) else {
                return not_found(10063, "Unknown application command");
            };
            match m {
                "GET" => ok(list[pos].clone()),
                "DELETE" => {
                    list.remove(pos);
                    (StatusCode::NO_CONTENT, None)
                }
                "PATCH" => {
                    if let (Value::Object(stored), Value::Object(patch)) = (&mut list[pos], body) {
                        for (k, v) in patch {
                            stored.insert(k, v);
                        }
                    }
                    ok(list[pos].clone())
                }
                _ => unserved(st, m, path),
            }
        }
        _ => unserved(st, m, path),
    }
}

/// A command as Discord stores it: what was sent, plus ids, type and version.
fn stored_command(sent: &Value, id: u64, version: u64, guild: Option<u64>) -> Value {
    let mut c = sent.clone();
    let obj = c.as_object_mut().expect("checked to be an object");
    obj.insert("id".into(), json!(id.to_string()));
    obj.insert("application_id".into(), json!(APP_ID.to_string()));
    obj.insert("version".into(), json!(version.to_string()));
    obj.entry("type").or_insert(json!(1));
    obj.entry("description").or_insert(json!(""));
    obj.entry("default_member_permissions")
        .or_insert(Value::Null);
    obj.entry("nsfw").or_insert(json!(false));
    if let Some(g) = guild {
        obj.insert("guild_id".into(), json!(g.to_string()));
    }
    c
}
