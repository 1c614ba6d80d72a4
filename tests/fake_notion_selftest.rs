//! The fake Notion itself, driven with plain reqwest: its answers are Notion's (auth and
//! version errors, databases and data sources, schema changes, validation, pagination, rate
//! limits and faults), so the tests that use it test against the real wire format.

mod common;

use std::time::Duration;

use common::fake_notion::{FakeNotion, Fault, RateLimit};
use serde_json::{Value, json};

const TOKEN: &str = "secret_selftest";

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(fake: &FakeNotion) -> Client {
        Client {
            base: fake.api_base(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("Notion-Version", "2025-09-03");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            headers,
        )
    }
}

#[tokio::test]
async fn auth_and_version_are_required_with_notions_error_objects() {
    let fake = FakeNotion::start(TOKEN).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/users/me", fake.api_base());
    let wrong = http
        .get(&url)
        .bearer_auth("nope")
        .header("Notion-Version", "2025-09-03")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["object"], "error");
    assert_eq!(body["code"], "unauthorized");
    assert!(body["request_id"].is_string());
    let no_version = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(no_version.status(), 400);
    assert_eq!(
        no_version.json::<Value>().await.unwrap()["code"],
        "missing_version"
    );
    let old = http
        .get(&url)
        .bearer_auth(TOKEN)
        .header("Notion-Version", "2022-06-28")
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.json::<Value>().await.unwrap()["code"],
        "validation_error"
    );
    let me = Client::new(&fake)
        .send(reqwest::Method::GET, "/v1/users/me", None)
        .await;
    assert_eq!((me.0, me.1["type"].as_str()), (200, Some("bot")));
}

#[tokio::test]
async fn databases_hold_data_sources_and_the_schema_grows_by_patch() {
    let fake = FakeNotion::start(TOKEN).await;
    let (database, source) = fake.add_database_with_title_property("Board", "Service");
    let client = Client::new(&fake);
    // Undashed ids are accepted.
    let (status, db, _) = client
        .send(
            reqwest::Method::GET,
            &format!("/v1/databases/{}", database.replace('-', "")),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(db["object"], "database");
    assert_eq!(db["data_sources"][0]["id"], source.as_str());
    let (_, ds, _) = client
        .send(
            reqwest::Method::GET,
            &format!("/v1/data_sources/{source}"),
            None,
        )
        .await;
    assert_eq!(ds["properties"]["Service"]["type"], "title");
    let (status, ds, _) = client
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/data_sources/{source}"),
            Some(json!({ "properties": { "Status": { "select": { "options": [{ "name": "Up", "color": "green" }] } } } })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        ds["properties"]["Status"]["select"]["options"][0]["name"],
        "Up"
    );
    assert!(fake.violations().is_empty());
    // Re-typing is answered (as Notion does) but listed as a violation.
    client
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/data_sources/{source}"),
            Some(json!({ "properties": { "Status": { "number": {} } } })),
        )
        .await;
    assert_eq!(fake.violations().len(), 1);
    // A database not shared answers 404 object_not_found.
    let private = fake.add_unshared_database();
    let (status, err, _) = client
        .send(
            reqwest::Method::GET,
            &format!("/v1/databases/{private}"),
            None,
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("object_not_found"))
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("shared with your integration")
    );
}

#[tokio::test]
async fn pages_are_validated_like_notion_does() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database_with_title_property("Board", "Name");
    fake.set_property(&source, "Status", json!({ "select": { "options": [] } }));
    fake.set_property(&source, "Count", json!({ "number": {} }));
    let client = Client::new(&fake);
    let create = |properties: Value| json!({ "parent": { "type": "data_source_id", "data_source_id": source }, "properties": properties });
    let cases = [
        (
            json!({ "Missing": { "number": 1 } }),
            "Missing is not a property that exists.",
        ),
        (
            json!({ "Count": { "rich_text": [] } }),
            "Count is expected to be number.",
        ),
        (
            json!({ "Name": { "title": [{ "text": { "content": "x".repeat(2001) } }] } }),
            "text.content.length should be ≤ `2000`, instead was `2001`.",
        ),
        (
            json!({ "Status": { "select": { "name": "a,b" } } }),
            "cannot contain commas",
        ),
    ];
    for (properties, message) in cases {
        let (status, err, _) = client
            .send(reqwest::Method::POST, "/v1/pages", Some(create(properties)))
            .await;
        assert_eq!(
            (status, err["code"].as_str()),
            (400, Some("validation_error"))
        );
        assert!(err["message"].as_str().unwrap().contains(message), "{err}");
    }
    // A new select option is created in the schema.
    let (status, page, _) = client
        .send(reqwest::Method::POST, "/v1/pages", Some(create(json!({ "Name": { "title": [{ "text": { "content": "api" } }] }, "Status": { "select": { "name": "Up" } } }))))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["properties"]["Name"]["title"][0]["plain_text"], "api");
    assert_eq!(
        fake.schema(&source)["properties"]["Status"]["select"]["options"][0]["name"],
        "Up"
    );
    // More than 100 blocks in one append is refused.
    let id = page["id"].as_str().unwrap();
    let blocks: Vec<Value> = (0..101)
        .map(|i| json!({ "type": "paragraph", "paragraph": { "rich_text": [{ "text": { "content": format!("{i}") } }] } }))
        .collect();
    let (status, _, _) = client
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/blocks/{id}/children"),
            Some(json!({ "children": blocks[..101] })),
        )
        .await;
    assert_eq!(status, 400);
    let (status, appended, _) = client
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/blocks/{id}/children"),
            Some(json!({ "children": blocks[..3] })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(appended["results"].as_array().unwrap().len(), 3);
    assert_eq!(fake.children(id).len(), 3);
}

#[tokio::test]
async fn queries_filter_and_paginate_with_cursors() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database_with_title_property("Board", "Name");
    let client = Client::new(&fake);
    for i in 0..250 {
        let body = json!({ "parent": { "data_source_id": source }, "properties": { "Name": { "title": [{ "text": { "content": format!("row-{i:03}") } }] } } });
        assert_eq!(
            client
                .send(reqwest::Method::POST, "/v1/pages", Some(body))
                .await
                .0,
            200
        );
    }
    let mut titles = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({ "page_size": 100 });
        if let Some(cursor) = &cursor {
            body["start_cursor"] = json!(cursor);
        }
        let (_, list, _) = client
            .send(
                reqwest::Method::POST,
                &format!("/v1/data_sources/{source}/query"),
                Some(body),
            )
            .await;
        pages += 1;
        for page in list["results"].as_array().unwrap() {
            titles.push(
                page["properties"]["Name"]["title"][0]["plain_text"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        if list["has_more"] == true {
            cursor = Some(list["next_cursor"].as_str().unwrap().to_string());
        } else {
            assert!(list["next_cursor"].is_null());
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(titles.len(), 250);
    assert_eq!(titles[249], "row-249");
    let (_, found, _) = client
        .send(reqwest::Method::POST, &format!("/v1/data_sources/{source}/query"), Some(json!({ "filter": { "or": [{ "property": "Name", "title": { "equals": "row-007" } }, { "property": "Name", "title": { "equals": "row-100" } }] } })))
        .await;
    assert_eq!(found["results"].as_array().unwrap().len(), 2);
    let (status, _, _) = client
        .send(
            reqwest::Method::POST,
            &format!("/v1/data_sources/{source}/query"),
            Some(json!({ "page_size": 101 })),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn rate_limits_faults_and_outages_answer_as_notion_does() {
    let fake = FakeNotion::start(TOKEN).await;
    let client = Client::new(&fake);
    fake.set_rate_limit(Some(RateLimit {
        per_second: 3.0,
        burst: 2.0,
    }));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, body, headers) = client
            .send(reqwest::Method::GET, "/v1/users/me", None)
            .await;
        if status == 429 {
            assert_eq!(body["code"], "rate_limited");
            assert_eq!(headers["retry-after"], "1");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 429]);
    fake.set_rate_limit(None);
    fake.inject("/v1/users", Fault::Overloaded, 1);
    fake.inject("/v1/users", Fault::Conflict, 1);
    fake.inject("/v1/users", Fault::Status(502), 1);
    let codes: Vec<(u16, String)> = {
        let mut out = Vec::new();
        for _ in 0..4 {
            let (status, body, _) = client
                .send(reqwest::Method::GET, "/v1/users/me", None)
                .await;
            out.push((status, body["code"].as_str().unwrap_or("").to_string()));
        }
        out
    };
    assert_eq!(
        codes,
        [
            (529, "service_overload".to_string()),
            (409, "conflict_error".to_string()),
            (502, "bad_gateway".to_string()),
            (200, String::new()),
        ]
    );
    fake.set_outage(true);
    assert_eq!(
        client
            .send(reqwest::Method::GET, "/v1/users/me", None)
            .await
            .0,
        503
    );
    fake.set_outage(false);
    fake.inject("/v1/users", Fault::Delay(Duration::from_millis(300)), 1);
    let started = std::time::Instant::now();
    assert_eq!(
        client
            .send(reqwest::Method::GET, "/v1/users/me", None)
            .await
            .0,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    fake.set_insert_capability(false);
    let (_, source) = fake.add_database_with_title_property("Board", "Name");
    let (status, body, _) = client
        .send(
            reqwest::Method::POST,
            "/v1/pages",
            Some(json!({ "parent": { "data_source_id": source }, "properties": {} })),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("restricted_resource"))
    );
    let recorded = fake.requests();
    assert!(
        recorded.iter().all(|r| r.status != 0),
        "every request was answered"
    );
}
