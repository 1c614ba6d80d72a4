//! The fake Notion (`tests/common/fake_notion/`) exercised with plain reqwest, as patchbay's
//! client calls it: the token and version checks and Notion's error object, databases and their
//! data sources, schema changes, pages created, validated, queried with filters and paginated,
//! blocks appended and listed, the rate limit with its `Retry-After`, injected faults, the
//! outage, missing capabilities, and the request log a test reads the client's pace from.

mod common;

use std::time::{Duration, Instant};

use common::fake_notion::{FakeNotion, Fault, RateLimit};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const TOKEN: &str = "secret_selftest";

struct Answer {
    status: u16,
    body: Value,
    headers: HeaderMap,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends a request as patchbay's client does: the token, the version, a JSON body. Each call
/// has a client (and so a connection) of its own; [`call_on`] reuses one.
async fn call(fake: &FakeNotion, method: Method, path: &str, body: Option<Value>) -> Answer {
    call_on(&reqwest::Client::new(), fake, method, path, body).await
}

async fn call_on(
    http: &reqwest::Client,
    fake: &FakeNotion,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let request = http
        .request(method, format!("{}{path}", fake.api_base()))
        .bearer_auth(TOKEN)
        .header("Notion-Version", "2025-09-03");
    send(request, body).await
}

async fn send(request: reqwest::RequestBuilder, body: Option<Value>) -> Answer {
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.expect("the fake answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.expect("a JSON body");
    Answer {
        status,
        body,
        headers,
    }
}

fn text(content: &str) -> Value {
    json!([{ "type": "text", "text": { "content": content } }])
}

fn title(content: &str) -> Value {
    json!({ "Name": { "title": text(content) } })
}

async fn create(fake: &FakeNotion, data_source: &str, properties: Value) -> Answer {
    call(
        fake,
        Method::POST,
        "/v1/pages",
        Some(json!({
            "parent": { "type": "data_source_id", "data_source_id": data_source },
            "properties": properties,
        })),
    )
    .await
}

fn paragraph(content: &str) -> Value {
    json!({ "object": "block", "type": "paragraph", "paragraph": { "rich_text": text(content) } })
}

/// Asserts Notion's error object: the status, the code, the message containing `says`, and a
/// request id that is also the `x-notion-request-id` header.
fn assert_error(answer: &Answer, status: u16, code: &str, says: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["object"], "error");
    assert_eq!(answer.body["status"], status);
    assert_eq!(answer.code(), code, "{}", answer.body);
    assert!(
        answer.message().contains(says),
        "{:?} lacks {says:?}",
        answer.message()
    );
    let id = answer.body["request_id"].as_str().expect("a request_id");
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(answer.header("x-notion-request-id"), Some(id));
}

#[tokio::test]
async fn the_token_and_the_version_are_checked_with_notions_errors() {
    let fake = FakeNotion::start(TOKEN).await;
    let url = format!("{}/v1/users/me", fake.api_base());
    let http = reqwest::Client::new();

    let none = send(http.get(&url).header("Notion-Version", "2025-09-03"), None).await;
    assert_error(&none, 401, "unauthorized", "API token is invalid.");
    let wrong = send(
        http.get(&url)
            .bearer_auth("secret_other")
            .header("Notion-Version", "2025-09-03"),
        None,
    )
    .await;
    assert_error(&wrong, 401, "unauthorized", "API token is invalid.");
    let not_bearer = send(
        http.get(&url)
            .header("Authorization", TOKEN)
            .header("Notion-Version", "2025-09-03"),
        None,
    )
    .await;
    assert_error(&not_bearer, 401, "unauthorized", "API token is invalid.");
    let unversioned = send(http.get(&url).bearer_auth(TOKEN), None).await;
    assert_error(
        &unversioned,
        400,
        "missing_version",
        "Notion-Version header should be defined, instead was `undefined`.",
    );
    let old = send(
        http.get(&url)
            .bearer_auth(TOKEN)
            .header("Notion-Version", "2022-06-28"),
        None,
    )
    .await;
    assert_error(
        &old,
        400,
        "validation_error",
        "Notion-Version header failed validation",
    );
    let bogus = send(
        http.get(&url)
            .bearer_auth(TOKEN)
            .header("Notion-Version", "v1"),
        None,
    )
    .await;
    assert_error(&bogus, 400, "validation_error", "instead was \"v1\"");
    assert!(
        bogus.message().contains("\"2025-09-03\""),
        "{}",
        bogus.message()
    );

    let me = call(&fake, Method::GET, "/v1/users/me", None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["object"], "user");
    assert_eq!(me.body["type"], "bot");
    assert_eq!(me.body["id"], json!(fake.bot_id()));
    assert_eq!(me.body["bot"]["owner"]["type"], "workspace");
    assert!(me.body["name"].is_string());
    assert_eq!(
        me.body["request_id"].as_str(),
        me.header("x-notion-request-id")
    );

    // A wrong token is a configuration the client reports; a missing or malformed header, and
    // every missing or wrong version, is the client's mistake.
    let violations = fake.violations();
    assert_eq!(violations.len(), 5, "{violations:#?}");
    assert!(
        violations[0].contains("no Authorization header"),
        "{violations:#?}"
    );
    assert!(
        violations[1].contains("not `Bearer <token>`"),
        "{violations:#?}"
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401, 400, 400, 400, 200]);
}

#[tokio::test]
async fn a_database_lists_its_data_sources_and_a_data_source_its_schema() {
    let fake = FakeNotion::start(TOKEN).await;
    let (database, source) = fake.add_database_with_title_property("Status board", "Service");
    let second = fake.add_data_source(&database, "Archive");

    let undashed = database.replace('-', "");
    for id in [database.as_str(), undashed.as_str()] {
        let db = call(&fake, Method::GET, &format!("/v1/databases/{id}"), None).await;
        assert_eq!(db.status, 200, "{}", db.body);
        assert_eq!(db.body["object"], "database");
        assert_eq!(db.body["id"], json!(database));
        assert_eq!(db.body["title"][0]["plain_text"], "Status board");
        assert_eq!(db.body["title"][0]["type"], "text");
        assert!(db.body["url"].as_str().unwrap().ends_with(&undashed));
        assert_eq!(
            db.body["data_sources"],
            json!([{ "id": source, "name": "Status board" }, { "id": second, "name": "Archive" }])
        );
        assert!(
            db.body.get("properties").is_none(),
            "2025-09-03 keeps the schema on the data source"
        );
    }

    let ds = call(
        &fake,
        Method::GET,
        &format!("/v1/data_sources/{source}"),
        None,
    )
    .await;
    assert_eq!(ds.status, 200, "{}", ds.body);
    assert_eq!(ds.body["object"], "data_source");
    assert_eq!(ds.body["id"], json!(source));
    assert_eq!(
        ds.body["parent"],
        json!({ "type": "database_id", "database_id": database })
    );
    assert_eq!(ds.body["title"][0]["plain_text"], "Status board");
    assert_eq!(
        ds.body["properties"]["Service"],
        json!({ "id": "title", "name": "Service", "type": "title", "title": {}, "description": null })
    );
    assert_eq!(ds.body["properties"].as_object().unwrap().len(), 1);
    assert_eq!(fake.schema(&source)["properties"], ds.body["properties"]);
    let other = call(
        &fake,
        Method::GET,
        &format!("/v1/data_sources/{second}"),
        None,
    )
    .await;
    assert_eq!(other.body["properties"]["Name"]["type"], "title");
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn what_is_not_shared_is_not_found_and_a_malformed_id_is_refused() {
    let fake = FakeNotion::start(TOKEN).await;
    let (database, source) = fake.add_database("Board");
    let private = fake.add_unshared_database();

    let hidden = call(
        &fake,
        Method::GET,
        &format!("/v1/databases/{private}"),
        None,
    )
    .await;
    assert_error(
        &hidden,
        404,
        "object_not_found",
        &format!(
            "Could not find database with ID: {private}. Make sure the relevant pages and \
             databases are shared with your integration."
        ),
    );
    // A data source id is not a database id, nor the other way round.
    let swapped = call(&fake, Method::GET, &format!("/v1/databases/{source}"), None).await;
    assert_error(&swapped, 404, "object_not_found", "Could not find database");
    let swapped = call(
        &fake,
        Method::GET,
        &format!("/v1/data_sources/{database}"),
        None,
    )
    .await;
    assert_error(
        &swapped,
        404,
        "object_not_found",
        "Could not find data_source",
    );
    // Taking access away hides the data source and its pages.
    let page = create(&fake, &source, title("row")).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    fake.set_shared(&database, false);
    let gone = call(
        &fake,
        Method::GET,
        &format!("/v1/data_sources/{source}"),
        None,
    )
    .await;
    assert_error(&gone, 404, "object_not_found", "Could not find data_source");
    let gone = call(&fake, Method::GET, &format!("/v1/pages/{page}"), None).await;
    assert_error(&gone, 404, "object_not_found", "Could not find page");
    assert!(
        fake.violations().is_empty(),
        "not finding things is no violation"
    );

    let malformed = call(&fake, Method::GET, "/v1/databases/not-an-id", None).await;
    assert_error(
        &malformed,
        400,
        "validation_error",
        "path.database_id should be a valid uuid",
    );
    let unknown = call(
        &fake,
        Method::POST,
        &format!("/v1/databases/{database}/query"),
        Some(json!({})),
    )
    .await;
    assert_error(&unknown, 400, "invalid_request_url", "Invalid request URL.");
    let broken = reqwest::Client::new()
        .post(format!("{}/v1/pages", fake.api_base()))
        .bearer_auth(TOKEN)
        .header("Notion-Version", "2025-09-03")
        .header("content-type", "application/json")
        .body("{not json");
    assert_error(
        &send(broken, None).await,
        400,
        "invalid_json",
        "Error parsing JSON body.",
    );
    assert_eq!(fake.violations().len(), 3, "{:#?}", fake.violations());
}

#[tokio::test]
async fn a_schema_patch_adds_properties_and_a_retype_is_a_violation() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database("Board");
    let path = format!("/v1/data_sources/{source}");

    let added = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "properties": {
            "Status": { "select": { "options": [{ "name": "Up", "color": "green" }, { "name": "Down" }] } },
            "Tags": { "multi_select": {} },
            "Latency": { "number": { "format": "number_with_commas" } },
            "Note": { "type": "rich_text", "rich_text": {} },
            "Checked": { "date": {} },
        }})),
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["object"], "data_source");
    let properties = &added.body["properties"];
    assert_eq!(properties.as_object().unwrap().len(), 6);
    assert_eq!(
        properties["Latency"]["number"],
        json!({ "format": "number_with_commas" })
    );
    assert_eq!(properties["Note"]["rich_text"], json!({}));
    assert_eq!(properties["Tags"]["multi_select"], json!({ "options": [] }));
    let options = properties["Status"]["select"]["options"]
        .as_array()
        .unwrap();
    assert_eq!(options.len(), 2);
    assert_eq!(options[0]["name"], "Up");
    assert_eq!(options[0]["color"], "green");
    assert!(options[1]["id"].is_string() && options[1]["color"].is_string());
    let status_id = properties["Status"]["id"].as_str().unwrap().to_string();
    assert_ne!(status_id, "title");
    assert_eq!(fake.schema(&source)["properties"], *properties);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());

    // Adding an option the way Notion wants it: every existing option again, plus the new one.
    let more = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "properties": { "Status": { "select": { "options": [
            { "name": "Up" }, { "name": "Down" }, { "name": "Degraded" }
        ] } } } })),
    )
    .await;
    let options = more.body["properties"]["Status"]["select"]["options"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(options.len(), 3);
    assert_eq!(
        options[0]["color"], "green",
        "existing options keep their color"
    );
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    // A color change of an existing option is refused, as Notion refuses it.
    let recolor = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "properties": { "Status": { "select": { "options": [
            { "name": "Up", "color": "red" }, { "name": "Down" }, { "name": "Degraded" }
        ] } } } })),
    )
    .await;
    assert_error(
        &recolor,
        400,
        "validation_error",
        "Cannot update color of select with name: Up",
    );
    // Leaving options out deletes them: a violation, and the values that used them go too.
    let row = create(
        &fake,
        &source,
        json!({ "Name": { "title": text("a") }, "Status": { "select": { "name": "Down" } } }),
    )
    .await;
    assert_eq!(row.status, 200, "{}", row.body);
    let before = fake.violations().len();
    let fewer = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "properties": { "Status": { "select": { "options": [{ "name": "Degraded" }] } } } })),
    )
    .await;
    assert_eq!(fewer.status, 200, "{}", fewer.body);
    let violations = fake.violations();
    assert_eq!(violations.len(), before + 1, "{violations:#?}");
    assert!(
        violations[before].contains("\"Up\", \"Down\""),
        "{violations:#?}"
    );
    assert_eq!(fake.pages(&source)[0].prop_text("Status"), None);

    // Re-typing, renaming and deleting are done (Notion does them) and listed.
    let mut changes = json!({ "Note": { "name": "Notes" }, "Checked": null });
    changes[&status_id] = json!({ "number": {} });
    let retyped = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "properties": changes })),
    )
    .await;
    assert_eq!(retyped.status, 200, "{}", retyped.body);
    assert_eq!(retyped.body["properties"]["Status"]["type"], "number");
    assert_eq!(retyped.body["properties"]["Notes"]["type"], "rich_text");
    assert!(retyped.body["properties"].get("Checked").is_none());
    let violations = fake.violations()[before + 1..].to_vec();
    assert_eq!(violations.len(), 3, "{violations:#?}");
    assert!(
        violations
            .iter()
            .any(|v| v.contains("re-typed property \"Status\" from select to number")),
        "{violations:#?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("renamed property \"Note\" to \"Notes\"")),
        "{violations:#?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("deleted property \"Checked\"")),
        "{violations:#?}"
    );

    // The title property keeps its type; a second one cannot be made; a type alone is no schema.
    for (properties, says) in [
        (
            json!({ "Name": { "rich_text": {} } }),
            "Cannot change the type of the title property",
        ),
        (
            json!({ "Other": { "title": {} } }),
            "Cannot create a second title property",
        ),
        (
            json!({ "Due": { "type": "date" } }),
            "body.properties.Due.date should be defined",
        ),
        (
            json!({ "Missing": { "name": "X" } }),
            "Missing is not a property that exists.",
        ),
        (
            json!({ "Bad": { "select": { "options": [{ "name": "a,b" }] } } }),
            "commas not allowed",
        ),
    ] {
        let refused = call(
            &fake,
            Method::PATCH,
            &path,
            Some(json!({ "properties": properties })),
        )
        .await;
        assert_error(&refused, 400, "validation_error", says);
    }
}

#[tokio::test]
async fn page_values_are_validated_like_notion() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database("Board");
    fake.set_property(
        &source,
        "Status",
        json!({ "select": { "options": [{ "name": "Up" }] } }),
    );
    fake.set_property(&source, "Count", json!({ "number": {} }));
    fake.set_property(&source, "Note", json!({ "rich_text": {} }));
    fake.set_property(&source, "Due", json!({ "date": {} }));
    fake.set_property(&source, "Stage", json!({ "status": {} }));

    let cases = [
        (
            json!({ "Name": { "title": text("x") }, "Nope": { "rich_text": text("y") } }),
            "Nope is not a property that exists.",
        ),
        (
            json!({ "Count": { "rich_text": text("5") }, "Ghost": { "number": 1 } }),
            "Count is expected to be number. Ghost is not a property that exists.",
        ),
        (
            json!({ "Count": { "number": "5" } }),
            "body failed validation: body.properties.Count.number should be a number or `null`, instead was `\"5\"`.",
        ),
        (
            json!({ "Name": { "title": text(&"x".repeat(2001)) } }),
            "body failed validation: body.properties.Name.title[0].text.content.length should be ≤ `2000`, instead was `2001`.",
        ),
        // 1,001 emoji are 1,001 characters but 2,002 UTF-16 units, which is what Notion counts.
        (
            json!({ "Note": { "rich_text": text(&"😀".repeat(1001)) } }),
            "body.properties.Note.rich_text[0].text.content.length should be ≤ `2000`, instead was `2002`.",
        ),
        (
            json!({ "Note": { "rich_text": (0..101).map(|_| text("a")[0].clone()).collect::<Vec<_>>() } }),
            "body.properties.Note.rich_text.length should be ≤ `100`, instead was `101`.",
        ),
        (
            json!({ "Due": { "date": { "start": "tomorrow" } } }),
            "body.properties.Due.date.start should be a valid ISO 8601 date string",
        ),
        (
            json!({ "Status": { "select": { "name": "a,b" } } }),
            "Invalid select option, commas not allowed: a,b",
        ),
        (
            json!({ "Stage": { "status": { "name": "Blocked" } } }),
            "Status option \"Blocked\" does not exist",
        ),
        (
            json!({ "Name": { "title": text("x"), "rich_text": [] } }),
            "body failed validation: body.properties.Name.",
        ),
    ];
    for (i, (properties, says)) in cases.iter().enumerate() {
        let refused = create(&fake, &source, properties.clone()).await;
        assert_error(&refused, 400, "validation_error", says);
        assert_eq!(fake.violations().len(), i + 1, "each refusal is listed");
    }
    let unknown_field = call(
        &fake,
        Method::POST,
        "/v1/pages",
        Some(json!({ "parent": { "data_source_id": source }, "properties": {}, "colour": "red" })),
    )
    .await;
    assert_error(
        &unknown_field,
        400,
        "validation_error",
        "body.colour should be not present",
    );
    assert!(
        fake.pages(&source).is_empty(),
        "nothing refused was created"
    );
    assert_eq!(
        fake.schema(&source)["properties"]["Status"]["select"]["options"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "no option was added by a refused request"
    );

    // Exactly 2,000 units pass; so do dates, numbers, and a parent without `type`.
    let ok = call(
        &fake,
        Method::POST,
        "/v1/pages",
        Some(json!({
            "parent": { "data_source_id": source },
            "properties": {
                "Name": { "title": text(&"😀".repeat(1000)) },
                "Count": { "number": 12.5 },
                "Due": { "date": { "start": "2026-03-01T10:00:00Z" } },
            },
        })),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let page = &fake.pages(&source)[0];
    assert_eq!(page.prop_text("Count").as_deref(), Some("12.5"));
    assert_eq!(
        page.prop_text("Due").as_deref(),
        Some("2026-03-01T10:00:00.000+00:00")
    );
    assert_eq!(
        page.prop_text("Stage").as_deref(),
        Some("Not started"),
        "the default status"
    );
    assert_eq!(page.title().encode_utf16().count(), 2000);
}

#[tokio::test]
async fn select_options_are_created_as_notion_creates_them() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database("Board");
    fake.set_property(&source, "Status", json!({ "select": {} }));
    fake.set_property(&source, "Tags", json!({ "multi_select": {} }));

    let made = create(
        &fake,
        &source,
        json!({
            "Name": { "title": text("svc") },
            "Status": { "select": { "name": "Down" } },
            "Tags": { "multi_select": [{ "name": "core" }, { "name": "edge" }, { "name": "core" }] },
        }),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let schema = fake.schema(&source);
    let status = schema["properties"]["Status"]["select"]["options"]
        .as_array()
        .unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0]["name"], "Down");
    let tags: Vec<&str> = schema["properties"]["Tags"]["multi_select"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["core", "edge"]);
    // The page answer carries the option with the id and color the schema gave it.
    let value = &made.body["properties"]["Status"];
    assert_eq!(value["type"], "select");
    assert_eq!(value["select"]["id"], status[0]["id"]);
    assert_eq!(value["select"]["name"], "Down");
    assert_eq!(
        made.body["properties"]["Tags"]["multi_select"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Written again, the same option is used, not a second one.
    create(
        &fake,
        &source,
        json!({ "Status": { "select": { "name": "Down" } } }),
    )
    .await;
    assert_eq!(
        fake.schema(&source)["properties"]["Status"]["select"]["options"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let page = &fake.pages(&source)[0];
    assert_eq!(page.prop_text("Status").as_deref(), Some("Down"));
    assert_eq!(page.prop_text("Tags").as_deref(), Some("core, edge, core"));
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn a_page_is_returned_with_every_property_as_notion_writes_it() {
    let fake = FakeNotion::start(TOKEN).await;
    let (database, source) = fake.add_database("Board");
    fake.set_property(&source, "Note", json!({ "rich_text": {} }));
    fake.set_property(&source, "Count", json!({ "number": {} }));
    fake.set_property(&source, "Tags", json!({ "multi_select": {} }));
    fake.set_property(&source, "Done", json!({ "checkbox": {} }));

    let page = create(&fake, &source, title("Hello, world")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert_eq!(body["object"], "page");
    assert_eq!(
        body["parent"],
        json!({ "type": "data_source_id", "data_source_id": source, "database_id": database })
    );
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(
        body["url"],
        json!(format!(
            "https://www.notion.so/Hello-world-{}",
            id.replace('-', "")
        ))
    );
    assert_eq!(body["in_trash"], false);
    assert_eq!(body["archived"], false);
    assert!(
        body["created_time"].as_str().unwrap().ends_with(":00.000Z"),
        "to the minute"
    );
    assert_eq!(body["created_by"]["id"], json!(fake.bot_id()));
    assert_eq!(
        body["properties"]["Name"],
        json!({ "id": "title", "type": "title", "title": [{
            "type": "text",
            "text": { "content": "Hello, world", "link": null },
            "annotations": { "bold": false, "italic": false, "strikethrough": false,
                             "underline": false, "code": false, "color": "default" },
            "plain_text": "Hello, world",
            "href": null,
        }] })
    );
    assert_eq!(body["properties"]["Note"]["rich_text"], json!([]));
    assert_eq!(body["properties"]["Count"]["number"], Value::Null);
    assert_eq!(body["properties"]["Tags"]["multi_select"], json!([]));
    assert_eq!(body["properties"]["Done"]["checkbox"], false);

    // Update, read back, trash.
    let updated = call(
        &fake,
        Method::PATCH,
        &format!("/v1/pages/{id}"),
        Some(json!({ "properties": { "Count": { "number": 3 }, "Note": { "rich_text": text("n") } } })),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["properties"]["Count"]["number"], 3);
    assert_eq!(
        updated.body["properties"]["Name"]["title"][0]["plain_text"],
        "Hello, world"
    );
    let read = call(
        &fake,
        Method::GET,
        &format!("/v1/pages/{}", id.replace('-', "")),
        None,
    )
    .await;
    assert_eq!(read.body["properties"], updated.body["properties"]);
    let wrong = call(
        &fake,
        Method::PATCH,
        &format!("/v1/pages/{id}"),
        Some(json!({ "properties": { "Count": { "checkbox": true } } })),
    )
    .await;
    assert_error(
        &wrong,
        400,
        "validation_error",
        "Count is expected to be number.",
    );
    let trashed = call(
        &fake,
        Method::PATCH,
        &format!("/v1/pages/{id}"),
        Some(json!({ "in_trash": true })),
    )
    .await;
    assert_eq!(trashed.body["in_trash"], true);
    let edit = call(
        &fake,
        Method::PATCH,
        &format!("/v1/pages/{id}"),
        Some(json!({ "properties": { "Count": { "number": 4 } } })),
    )
    .await;
    assert_error(
        &edit,
        400,
        "validation_error",
        "Can't edit block that is archived.",
    );
    let page = fake.page(&id).unwrap();
    assert!(page.in_trash);
    assert_eq!(page.prop_text("Count").as_deref(), Some("3"));
    assert_eq!(page.prop_text("Note").as_deref(), Some("n"));
}

#[tokio::test]
async fn queries_filter_and_paginate_250_pages_with_stable_cursors() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database("Board");
    fake.set_property(&source, "Team", json!({ "rich_text": {} }));
    let mut ids = Vec::new();
    for i in 0..250 {
        let team = if i % 2 == 0 { "even" } else { "odd" };
        let made = create(
            &fake,
            &source,
            json!({ "Name": { "title": text(&format!("svc-{i:03}")) }, "Team": { "rich_text": text(team) } }),
        )
        .await;
        assert_eq!(made.status, 200, "{}", made.body);
        ids.push(made.body["id"].as_str().unwrap().to_string());
    }
    let path = format!("/v1/data_sources/{source}/query");

    // Everything, 100 at a time, in creation order; a page created between two calls is met at
    // the end, not twice and not skipped.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({ "page_size": 100 });
        if let Some(cursor) = &cursor {
            body["start_cursor"] = json!(cursor);
        }
        let list = call(&fake, Method::POST, &path, Some(body)).await;
        assert_eq!(list.status, 200, "{}", list.body);
        assert_eq!(list.body["object"], "list");
        assert_eq!(list.body["type"], "page_or_data_source");
        assert_eq!(list.body["page_or_data_source"], json!({}));
        assert!(list.body["request_id"].is_string());
        pages += 1;
        for page in list.body["results"].as_array().unwrap() {
            assert_eq!(page["object"], "page");
            seen.push(page["id"].as_str().unwrap().to_string());
        }
        if pages == 1 {
            let late = create(&fake, &source, title("late")).await;
            ids.push(late.body["id"].as_str().unwrap().to_string());
        }
        match (
            list.body["has_more"].as_bool(),
            list.body["next_cursor"].as_str(),
        ) {
            (Some(true), Some(next)) => cursor = Some(next.to_string()),
            (Some(false), None) => break,
            other => panic!("has_more and next_cursor disagree: {other:?}"),
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);

    // The default page size is 100.
    let default = call(&fake, Method::POST, &path, None).await;
    assert_eq!(default.body["results"].as_array().unwrap().len(), 100);

    // Filters: equals on the title, on rich text, `or`, `and`.
    let filtered = |filter: Value| {
        let fake = &fake;
        let path = path.clone();
        async move {
            let list = call(fake, Method::POST, &path, Some(json!({ "filter": filter }))).await;
            assert_eq!(list.status, 200, "{}", list.body);
            list.body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    p["properties"]["Name"]["title"][0]["plain_text"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        filtered(json!({ "property": "Name", "title": { "equals": "svc-042" } })).await,
        ["svc-042"]
    );
    assert_eq!(
        filtered(json!({ "or": [
            { "property": "Name", "title": { "equals": "svc-001" } },
            { "property": "Name", "title": { "equals": "svc-002" } },
            { "property": "Name", "title": { "equals": "nope" } },
        ]}))
        .await,
        ["svc-001", "svc-002"]
    );
    assert_eq!(
        filtered(json!({ "and": [
            { "property": "Team", "rich_text": { "equals": "odd" } },
            { "or": [
                { "property": "Name", "title": { "equals": "svc-001" } },
                { "property": "Name", "title": { "equals": "svc-002" } },
            ]},
        ]}))
        .await,
        ["svc-001"]
    );
    assert_eq!(
        filtered(json!({ "property": "Team", "rich_text": { "equals": "odd" } }))
            .await
            .len(),
        100
    );
    assert!(
        filtered(json!({ "property": "Name", "title": { "equals": "SVC-042" } }))
            .await
            .is_empty()
    );
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());

    // What Notion refuses.
    for (body, says) in [
        (
            json!({ "page_size": 101 }),
            "body.page_size should be ≤ `100`, instead was `101`.",
        ),
        (json!({ "start_cursor": "svc-001" }), "body.start_cursor"),
        (
            json!({ "filter": { "property": "Owner", "title": { "equals": "x" } } }),
            "Could not find property with name or id: Owner",
        ),
        (
            json!({ "filter": { "property": "Name", "number": { "equals": 1 } } }),
            "does not match filter number",
        ),
        (
            json!({ "filter": { "property": "Name", "title": { "is": "x" } } }),
            "body.filter.title.is should be not present",
        ),
        (json!({ "limit": 5 }), "body.limit should be not present"),
    ] {
        let refused = call(&fake, Method::POST, &path, Some(body)).await;
        assert_error(&refused, 400, "validation_error", says);
    }
    assert_eq!(fake.violations().len(), 6, "{:#?}", fake.violations());
}

#[tokio::test]
async fn blocks_are_appended_in_order_and_listed_in_pages() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database("Incidents");
    let made = call(
        &fake,
        Method::POST,
        "/v1/pages",
        Some(json!({
            "parent": { "type": "data_source_id", "data_source_id": source },
            "properties": title("[DOWN] api"),
            "children": [
                { "object": "block", "type": "callout", "callout": {
                    "rich_text": text("api is down"), "icon": { "type": "emoji", "emoji": "🔴" } } },
                { "type": "heading_2", "heading_2": { "rich_text": text("Timeline") } },
            ],
        })),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let page = made.body["id"].as_str().unwrap().to_string();
    let path = format!("/v1/blocks/{page}/children");

    let appended = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "children": [
            { "object": "block", "type": "bulleted_list_item", "bulleted_list_item": { "rich_text": text("Opened") } },
            paragraph("Resolved"),
        ]})),
    )
    .await;
    assert_eq!(appended.status, 200, "{}", appended.body);
    assert_eq!(appended.body["object"], "list");
    assert_eq!(appended.body["type"], "block");
    let results = appended.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["object"], "block");
    assert_eq!(results[0]["type"], "bulleted_list_item");
    assert_eq!(
        results[0]["parent"],
        json!({ "type": "page_id", "page_id": page })
    );
    assert_eq!(
        results[0]["bulleted_list_item"]["rich_text"][0]["plain_text"],
        "Opened"
    );
    assert_eq!(results[0]["bulleted_list_item"]["color"], "default");
    assert_eq!(results[1]["has_children"], false);

    let blocks = fake.wait_children(&page, 4).await;
    let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["callout", "heading_2", "bulleted_list_item", "paragraph"]
    );
    assert_eq!(blocks[0]["callout"]["icon"]["emoji"], "🔴");
    assert_eq!(blocks[1]["heading_2"]["is_toggleable"], false);

    // Listed two at a time.
    let first = call(&fake, Method::GET, &format!("{path}?page_size=2"), None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["has_more"], true);
    let next = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = call(
        &fake,
        Method::GET,
        &format!("{path}?page_size=2&start_cursor={next}"),
        None,
    )
    .await;
    assert_eq!(second.body["has_more"], false);
    assert_eq!(second.body["next_cursor"], Value::Null);
    let listed: Vec<Value> = first.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second.body["results"].as_array().unwrap())
        .cloned()
        .collect();
    assert_eq!(listed, blocks);

    // Nested children (two levels in one request) hang under their block.
    let nested = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "children": [{ "type": "toggle", "toggle": {
            "rich_text": text("Details"),
            "children": [paragraph("inside")],
        } }] })),
    )
    .await;
    assert_eq!(nested.status, 200, "{}", nested.body);
    let toggle = nested.body["results"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(nested.body["results"][0]["has_children"], true);
    let inside = fake.children(&toggle);
    assert_eq!(inside.len(), 1);
    assert_eq!(
        inside[0]["parent"],
        json!({ "type": "block_id", "block_id": toggle })
    );
    assert_eq!(fake.children(&page).len(), 5);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn block_limits_are_notions() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database("Incidents");
    let page = create(&fake, &source, title("p")).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/blocks/{page}/children");

    let many: Vec<Value> = (0..101).map(|i| paragraph(&i.to_string())).collect();
    let refused = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "children": many })),
    )
    .await;
    assert_error(
        &refused,
        400,
        "validation_error",
        "body failed validation: body.children.length should be ≤ `100`, instead was `101`.",
    );
    let with_page = call(
        &fake,
        Method::POST,
        "/v1/pages",
        Some(json!({ "parent": { "data_source_id": source }, "properties": title("q"), "children": many })),
    )
    .await;
    assert_error(
        &with_page,
        400,
        "validation_error",
        "body.children.length should be ≤ `100`",
    );
    let long = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "children": [paragraph("ok"), paragraph(&"x".repeat(2001))] })),
    )
    .await;
    assert_error(
        &long,
        400,
        "validation_error",
        "body.children[1].paragraph.rich_text[0].text.content.length should be ≤ `2000`, instead was `2001`.",
    );
    let deep = call(
        &fake,
        Method::PATCH,
        &path,
        Some(
            json!({ "children": [{ "toggle": { "rich_text": [], "children": [
            { "toggle": { "rich_text": [], "children": [paragraph("too deep")] } }
        ] } }] }),
        ),
    )
    .await;
    assert_error(
        &deep,
        400,
        "validation_error",
        "body.children[0].toggle.children[0].toggle.children should be not present",
    );
    let old_key = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "children": [{ "paragraph": { "text": text("2021 wording") } }] })),
    )
    .await;
    assert_error(
        &old_key,
        400,
        "validation_error",
        "body.children[0].paragraph.text should be not present",
    );
    let image = call(
        &fake,
        Method::PATCH,
        &path,
        Some(json!({ "children": [{ "image": { "external": { "url": "https://x" } } }] })),
    )
    .await;
    assert_eq!(image.status, 400);
    assert!(
        fake.children(&page).is_empty(),
        "nothing refused was appended"
    );
    assert_eq!(fake.pages(&source).len(), 1);
    let violations = fake.violations();
    assert_eq!(violations.len(), 6, "{violations:#?}");
    assert!(
        violations[5].contains("the fake cannot serve"),
        "{violations:#?}"
    );
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_and_holds_every_route() {
    let fake = FakeNotion::start(TOKEN).await;
    // One client, so one connection: what a client that ignored Retry-After would send on.
    let http = reqwest::Client::new();
    fake.set_rate_limit(Some(RateLimit {
        per_second: 3.0,
        burst: 4.0,
    }));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(call_on(&http, &fake, Method::GET, "/v1/users/me", None).await);
    }
    let codes: Vec<u16> = statuses.iter().map(|a| a.status).collect();
    assert_eq!(codes, [200, 200, 200, 200, 429]);
    let limited = &statuses[4];
    assert_error(limited, 429, "rate_limited", "You have been rate limited.");
    assert_eq!(limited.header("retry-after"), Some("1"), "whole seconds");
    assert_eq!(fake.violations().len(), 1, "{:#?}", fake.violations());
    assert!(fake.violations()[0].contains("over the rate limit"));

    // Another route inside the Retry-After window: Notion's limit is per integration.
    let (_, source) = fake.add_database("Board");
    let early = call_on(
        &http,
        &fake,
        Method::GET,
        &format!("/v1/data_sources/{source}"),
        None,
    )
    .await;
    assert_error(&early, 429, "rate_limited", "rate limited");
    let violations = fake.violations();
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert!(
        violations[1].contains("Retry-After said 1 s"),
        "{violations:#?}"
    );

    // Waiting out Retry-After (what a client must do) lets the next request through.
    let said = limited
        .header("retry-after")
        .unwrap()
        .parse::<u64>()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(said)).await;
    let after = call_on(
        &http,
        &fake,
        Method::GET,
        &format!("/v1/data_sources/{source}"),
        None,
    )
    .await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(fake.violations().len(), 2);

    // The pace helpers: 7 requests, 5 of them within the first moments.
    assert_eq!(fake.requests().len(), 7);
    assert!(fake.max_in_window(Duration::from_millis(500)) >= 5);
    assert_eq!(fake.max_in_window(Duration::from_secs(60)), 7);
    assert!(fake.max_rate_over(Duration::from_secs(1)) >= 5.0);
    let average = fake.requests_per_second_average();
    assert!(average > 3.0 && average < 7.0, "{average}");
}

#[tokio::test]
async fn injected_faults_answer_with_notions_codes_and_change_nothing() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database("Board");
    fake.inject("/v1/pages", Fault::Conflict, 1);
    fake.inject("/v1/pages", Fault::Status(500), 1);
    fake.inject("/v1/pages", Fault::Status(502), 1);
    fake.inject("/v1/pages", Fault::Status(503), 1);
    fake.inject("/v1/pages", Fault::Status(504), 1);
    for (status, code) in [
        (409, "conflict_error"),
        (500, "internal_server_error"),
        (502, "bad_gateway"),
        (503, "service_unavailable"),
        (504, "gateway_timeout"),
    ] {
        let answer = create(&fake, &source, title("x")).await;
        assert_error(&answer, status, code, "");
        assert_eq!(answer.header("retry-after"), None);
    }
    assert!(fake.pages(&source).is_empty(), "a fault serves nothing");
    let made = create(&fake, &source, title("x")).await;
    assert_eq!(made.status, 200, "faults used up: {}", made.body);

    // A fault for one method leaves the others alone.
    fake.inject("PATCH /v1/pages/", Fault::Conflict, 1);
    let page = create(&fake, &source, title("y")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let id = page.body["id"].as_str().unwrap().to_string();
    let patched = call(
        &fake,
        Method::PATCH,
        &format!("/v1/pages/{id}"),
        Some(json!({ "properties": title("z") })),
    )
    .await;
    assert_error(
        &patched,
        409,
        "conflict_error",
        "Conflict occurred while saving.",
    );
    assert_eq!(
        fake.page(&id).unwrap().title(),
        "y",
        "a conflict changes nothing"
    );

    // A 429 says when to come back, in whole seconds, and holds every route until then.
    // One client: the request after the 429 goes out on the connection it came back on.
    let http = reqwest::Client::new();
    fake.inject(
        "GET /v1/users/me",
        Fault::RateLimited {
            retry_after_secs: 2,
        },
        1,
    );
    let limited = call_on(&http, &fake, Method::GET, "/v1/users/me", None).await;
    assert_error(&limited, 429, "rate_limited", "You have been rate limited.");
    assert_eq!(limited.header("retry-after"), Some("2"));
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let early = call_on(
        &http,
        &fake,
        Method::POST,
        "/v1/pages",
        Some(json!({ "parent": { "data_source_id": source }, "properties": title("w") })),
    )
    .await;
    assert_error(&early, 429, "rate_limited", "");
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0].contains("POST /v1/pages: sent") && violations[0].contains("said 2 s"),
        "{violations:#?}"
    );
    assert_eq!(fake.pages(&source).len(), 2);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [409, 500, 502, 503, 504, 200, 200, 409, 429, 429]);
    assert_eq!(fake.count("PATCH", "/v1/pages/"), 1);

    // 529 `service_overload` says when too.
    let other = FakeNotion::start(TOKEN).await;
    other.inject("/v1/users/me", Fault::Overloaded, 1);
    let overloaded = call(&other, Method::GET, "/v1/users/me", None).await;
    assert_error(&overloaded, 529, "service_overload", "");
    assert_eq!(overloaded.header("retry-after"), Some("1"));
    assert!(other.violations().is_empty(), "{:#?}", other.violations());
}

#[tokio::test]
async fn a_delay_a_hang_and_a_dropped_connection() {
    let fake = FakeNotion::start(TOKEN).await;
    fake.inject("/v1/users/me", Fault::Delay(Duration::from_millis(300)), 1);
    let sent = Instant::now();
    let slow = call(&fake, Method::GET, "/v1/users/me", None).await;
    assert_eq!(slow.status, 200);
    assert!(
        sent.elapsed() >= Duration::from_millis(300),
        "{:?}",
        sent.elapsed()
    );

    fake.inject("/v1/users/me", Fault::Hang, 1);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let hung = client
        .get(format!("{}/v1/users/me", fake.api_base()))
        .bearer_auth(TOKEN)
        .header("Notion-Version", "2025-09-03")
        .send()
        .await
        .expect_err("no answer");
    assert!(hung.is_timeout(), "{hung:?}");

    fake.inject("/v1/users/me", Fault::Drop, 1);
    let dropped = reqwest::Client::new()
        .get(format!("{}/v1/users/me", fake.api_base()))
        .bearer_auth(TOKEN)
        .header("Notion-Version", "2025-09-03")
        .send()
        .await
        .expect_err("the connection is closed without an answer");
    assert!(
        !dropped.is_timeout() && dropped.status().is_none(),
        "{dropped:?}"
    );

    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [200, 0, 0],
        "neither the hang nor the drop answered"
    );
    let after = call(&fake, Method::GET, "/v1/users/me", None).await;
    assert_eq!(after.status, 200);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn an_outage_and_a_missing_capability() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database("Board");
    let page = create(&fake, &source, title("p")).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();

    fake.set_outage(true);
    for path in [
        "/v1/users/me".to_string(),
        format!("/v1/data_sources/{source}"),
    ] {
        let down = call(&fake, Method::GET, &path, None).await;
        assert_error(&down, 503, "service_unavailable", "Notion is unavailable");
    }
    let down = create(&fake, &source, title("q")).await;
    assert_eq!(down.status, 503);
    fake.set_outage(false);
    assert_eq!(
        call(&fake, Method::GET, "/v1/users/me", None).await.status,
        200
    );
    assert_eq!(fake.pages(&source).len(), 1);

    fake.set_insert_capability(false);
    let no_insert = create(&fake, &source, title("q")).await;
    assert_error(
        &no_insert,
        403,
        "restricted_resource",
        "Insufficient permissions for this endpoint.",
    );
    let no_append = call(
        &fake,
        Method::PATCH,
        &format!("/v1/blocks/{page}/children"),
        Some(json!({ "children": [paragraph("x")] })),
    )
    .await;
    assert_error(
        &no_append,
        403,
        "restricted_resource",
        "Insufficient permissions",
    );
    let reads = call(
        &fake,
        Method::POST,
        &format!("/v1/data_sources/{source}/query"),
        None,
    )
    .await;
    assert_eq!(reads.status, 200, "reading needs no insert capability");
    let updates = call(
        &fake,
        Method::PATCH,
        &format!("/v1/pages/{page}"),
        Some(json!({ "properties": title("renamed") })),
    )
    .await;
    assert_eq!(updates.status, 200, "{}", updates.body);
    fake.set_update_capability(false);
    let no_update = call(
        &fake,
        Method::PATCH,
        &format!("/v1/pages/{page}"),
        Some(json!({ "properties": title("again") })),
    )
    .await;
    assert_error(
        &no_update,
        403,
        "restricted_resource",
        "Insufficient permissions",
    );
    fake.set_insert_capability(true);
    fake.set_update_capability(true);
    assert_eq!(create(&fake, &source, title("q")).await.status, 200);
    assert_eq!(fake.pages(&source).len(), 2);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn a_database_parent_works_only_with_one_data_source() {
    let fake = FakeNotion::start(TOKEN).await;
    let (database, source) = fake.add_database("Board");
    let by_database = call(
        &fake,
        Method::POST,
        "/v1/pages",
        Some(json!({ "parent": { "database_id": database }, "properties": title("a") })),
    )
    .await;
    assert_eq!(by_database.status, 200, "{}", by_database.body);
    assert_eq!(by_database.body["parent"]["data_source_id"], json!(source));
    let second = fake.add_data_source(&database, "Archive");
    let ambiguous = call(
        &fake,
        Method::POST,
        "/v1/pages",
        Some(json!({ "parent": { "type": "database_id", "database_id": database }, "properties": title("b") })),
    )
    .await;
    assert_error(
        &ambiguous,
        400,
        "validation_error",
        "more than one data source",
    );
    let into_second = create(&fake, &second, title("c")).await;
    assert_eq!(into_second.status, 200);
    assert_eq!(fake.pages(&source).len(), 1);
    assert_eq!(fake.pages(&second).len(), 1);
    let mismatched = call(
        &fake,
        Method::POST,
        "/v1/pages",
        Some(json!({ "parent": { "type": "page_id", "data_source_id": source }, "properties": title("d") })),
    )
    .await;
    assert_error(
        &mismatched,
        400,
        "validation_error",
        "body.parent.page_id should be defined",
    );
}

#[tokio::test]
async fn waiting_sees_what_arrives_meanwhile_and_the_log_keeps_everything() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database("Board");
    let base = fake.api_base();
    let writer = {
        let source = source.clone();
        tokio::spawn(async move {
            for i in 0..3 {
                let answer = reqwest::Client::new()
                    .post(format!("{base}/v1/pages"))
                    .bearer_auth(TOKEN)
                    .header("Notion-Version", "2025-09-03")
                    .json(&json!({ "parent": { "data_source_id": source }, "properties": title(&format!("p{i}")) }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 200);
            }
        })
    };
    let pages = fake.wait_pages(&source, 3).await;
    let titles: Vec<String> = pages
        .iter()
        .map(common::fake_notion::FakePage::title)
        .collect();
    assert_eq!(titles, ["p0", "p1", "p2"]);
    assert_eq!(pages.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 1, 2]);
    writer.await.unwrap();
    let posts = fake.wait_answered("POST", "/v1/pages", 3).await;
    assert_eq!(posts.len(), 3);
    assert!(posts.iter().all(|r| r.status == 200));
    assert_eq!(
        posts[1].body.as_ref().unwrap()["properties"]["Name"]["title"][0]["text"]["content"],
        "p1"
    );
    assert!(posts[0].at <= posts[1].at && posts[1].at <= posts[2].at);
    assert_eq!(fake.count("POST", "/v1/pages"), 3);
    assert_eq!(fake.count("", "/v1/"), 3);
    let found = fake
        .wait_for("a page titled p1", |f| {
            f.pages(&source).into_iter().find(|p| p.title() == "p1")
        })
        .await;
    assert_eq!(found.id, pages[1].id);
    let same = fake
        .wait_page(&pages[1].id, "page p1", |p| p.title() == "p1")
        .await;
    assert_eq!(same.data_source, source);
    let second = fake
        .wait_request("the second create", |r| {
            r.method == "POST"
                && r.body
                    .as_ref()
                    .is_some_and(|b| b.to_string().contains("p1"))
        })
        .await;
    assert_eq!(second.request_id, posts[1].request_id);
    assert_eq!(fake.wait_requests(3).await.len(), 3);
    // A page a person made is found by the API like any other.
    let by_hand = fake.add_page(&source, title("by hand"));
    let query = call(
        &fake,
        Method::POST,
        &format!("/v1/data_sources/{source}/query"),
        Some(json!({ "filter": { "property": "Name", "title": { "equals": "by hand" } } })),
    )
    .await;
    assert_eq!(query.body["results"][0]["id"], json!(by_hand));
}

#[tokio::test]
async fn a_request_already_on_its_way_when_a_429_goes_out_is_no_violation() {
    let fake = FakeNotion::start(TOKEN).await;
    let (_, source) = fake.add_database("Board");
    fake.inject(
        "GET /v1/users/me",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    );
    let http = reqwest::Client::new();
    // Two requests at once, on two connections: the one that is not limited was on its way.
    let other_path = format!("/v1/data_sources/{source}");
    let (limited, other) = tokio::join!(
        call_on(&http, &fake, Method::GET, "/v1/users/me", None),
        call(&fake, Method::GET, &other_path, None),
    );
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(other.status, 200, "{}", other.body);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    // Going again at once on the connection the 429 came back on is not waiting it out.
    let again = call_on(&http, &fake, Method::GET, "/v1/users/me", None).await;
    assert_error(&again, 429, "rate_limited", "");
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0].starts_with("GET /v1/users/me: sent"),
        "{violations:#?}"
    );
}
