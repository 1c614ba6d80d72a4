#![allow(dead_code)]
pub mod fake_discord;
pub mod fake_notion;
pub mod fake_retool;
pub mod history;
pub mod process;
pub mod stack;
pub mod tls_upstream;
pub mod upstream;

/// The `custom_id` of every component in a message (as the fake Discord stores or receives it),
/// row by row.
pub fn custom_ids(message: &serde_json::Value) -> Vec<String> {
    message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|component| component["custom_id"].as_str().map(str::to_string))
        .collect()
}
