//! The configuration contract: every bad config gives the exact error a user sees (file, line,
//! key, fix), every problem is listed at once, the committed example validates, and the docs
//! (`patchbay.example.toml`, `.env.example`) stay in step with the code.

use std::time::Duration;

use patchbay::config::{self, CheckSpec, Environment, HeaderValue, LogFormat};

const BASE: &str = "[[integration]]\nname = \"api\"\nurl = \"http://127.0.0.1:9/\"\n";

/// Parses `text` as `test.toml` and returns the rendered errors (empty when valid).
fn errors(text: &str, env: &[(&str, &str)]) -> Vec<String> {
    match config::parse(
        text,
        "test.toml",
        None,
        &Environment::from_pairs(env.iter().copied()),
    ) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

fn check(text: &str, expected: &[&str]) {
    assert_eq!(errors(text, &[]), expected, "config:\n{text}");
}

#[test]
fn bad_configs_give_exact_errors() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[defaults]\nintervall = \"30s\"\n",
            &["test.toml:2: defaults.intervall: unknown key (fix: did you mean `interval`?)"],
        ),
        (
            "[bot]\ncolour = 1\n",
            &[
                "test.toml:2: bot.colour: unknown key (fix: remove it; known keys here: guilds, audit_channel, approval_channel, action_confirm_timeout, action_approval_timeout, public_status, command_rate)",
            ],
        ),
        (
            "[storage]\nretention = \"30x\"\n",
            &[
                "test.toml:2: storage.retention: \"30x\" has an unknown unit \"x\"; use ms, s, m, h or d (fix: write it like \"30s\", \"5m\", \"4h\" or \"7d\")",
            ],
        ),
        (
            "[storage]\nretention = \"30\"\n",
            &[
                "test.toml:2: storage.retention: \"30\" has no unit; write 30s, 30m, 30h, 30d or 30ms (fix: write it like \"30s\", \"5m\", \"4h\" or \"7d\")",
            ],
        ),
        (
            &format!("{BASE}{BASE}"),
            &[
                "test.toml:5: integration[1].name: duplicate integration name \"api\" (fix: give each [[integration]] a unique name)",
            ],
        ),
        (
            &format!("{BASE}conditions = [\"status == 200\", \"status = 200\"]\n"),
            &[
                "test.toml:4: integration.api.conditions[1]: \"status = 200\" at column 8: unknown operator \"=\"; expected one of ==, !=, <, <=, >, >=, contains, matches; did you mean ==? (fix: see the condition syntax in patchbay.example.toml)",
            ],
        ),
        (
            &format!("{BASE}headers = {{ Authorization = \"env:PAYMENTS_TOKEN\" }}\n"),
            &[
                "test.toml:4: integration.api.headers.Authorization: environment variable PAYMENTS_TOKEN is not set (fix: set PAYMENTS_TOKEN in the environment or in .env)",
            ],
        ),
        (
            "[[integration]]\nname = \"api\"\nurl = \"payments.example.com/healthz\"\n",
            &[
                "test.toml:3: integration.api.url: \"payments.example.com/healthz\" is not a valid URL: relative URL without a base (fix: write the full URL, like \"https://example.com/healthz\")",
            ],
        ),
        (
            "[[integration]]\nname = \"api\"\nurl = \"ftp://example.com/\"\n",
            &[
                "test.toml:3: integration.api.url: \"ftp://example.com/\" is not an http:// or https:// URL (fix: write the full URL, like \"https://example.com/healthz\")",
            ],
        ),
        (
            "[[integration]]\nname = \"Payments API\"\nurl = \"http://127.0.0.1:9/\"\n",
            &[
                "test.toml:2: integration[0].name: \"Payments API\" is not a valid name (fix: use 1 to 64 characters from a-z, 0-9, - and _)",
            ],
        ),
        (
            "[[integration]]\nurl = \"http://127.0.0.1:9/\"\n",
            &[
                "test.toml:1: integration[0].name: is missing (fix: add name = \"...\" to this [[integration]])",
            ],
        ),
        (
            "[[integration]]\nname = \"api\"\n",
            &[
                "test.toml:1: integration.api.url: is missing (fix: add url = \"https://...\" (http checks need a URL))",
            ],
        ),
        (
            &format!("{BASE}interval = \"30s\"\ntimeout = \"1m\"\n"),
            &[
                "test.toml:5: integration.api.timeout: timeout 1m is longer than the interval 30s (fix: make the timeout at most the interval)",
            ],
        ),
        (
            "[[integration]]\nname = \"meta\"\nurl = \"http://169.254.169.254/latest/meta-data\"\n",
            &[
                "test.toml:3: integration.meta.url: 169.254.169.254 is a link-local or cloud metadata address (fix: set allow_private = true on this integration if you really mean it)",
            ],
        ),
        (
            &format!(
                "{BASE}depends_on = [\"core-netwrk\"]\n[[integration]]\nname = \"core-network\"\nurl = \"http://127.0.0.1:9/\"\n"
            ),
            &[
                "test.toml:4: integration.api.depends_on: unknown integration \"core-netwrk\" (fix: did you mean \"core-network\"?)",
            ],
        ),
        (
            &format!("{BASE}kind = \"notion\"\n"),
            &[
                "test.toml:1: integration.api.token: environment variable NOTION_TOKEN is not set; integration \"api\" needs a Notion token (fix: create an internal integration at notion.so/my-integrations and set NOTION_TOKEN to its secret (in the environment or .env))",
                "test.toml:3: integration.api.url: url does not apply to kind = \"notion\" (fix: remove it: a notion check asks Notion's API who the token belongs to)",
            ],
        ),
        (
            &format!("{BASE}kind = \"retool\"\n"),
            &[
                "test.toml:4: integration.api.kind: kind \"retool\" is not supported by this release (fix: use kind = \"http\" or kind = \"notion\")",
            ],
        ),
        (
            &format!("{BASE}token = \"env:NOTION_TOKEN\"\n"),
            &[
                "test.toml:4: integration.api.token: token applies only to kind = \"notion\" (fix: send a credential with headers = { Authorization = \"env:NAME\" })",
            ],
        ),
        (
            &format!("{BASE}degraded = {{ window = \"5m\" }}\n"),
            &[
                "test.toml:4: integration.api.degraded: sets neither latency_p95 nor error_rate (fix: add latency_p95 = \"500ms\" or error_rate = 0.1)",
            ],
        ),
        (
            &format!("{BASE}failure_threshold = 0\n"),
            &[
                "test.toml:4: integration.api.failure_threshold: 0 is out of range (fix: use a whole number of at least 1)",
            ],
        ),
        (
            &format!("{BASE}max_redirects = -1\n"),
            &[
                "test.toml:4: integration.api.max_redirects: -1 is out of range (fix: use a number from 0 to 20)",
            ],
        ),
        (
            "[defaults]\nmax_redirects = 21\n",
            &[
                "test.toml:2: defaults.max_redirects: 21 is out of range (fix: use a number from 0 to 20)",
            ],
        ),
        (
            "[[grant]]\nrole = \"42\"\npermissions = [\"status.view\", \"sync.runn\"]\n",
            &[
                "test.toml:3: grant[0].permissions[1]: unknown permission \"sync.runn\" (fix: did you mean \"sync.run\"?)",
            ],
        ),
        (
            "[[grant]]\npermissions = [\"audit.view\"]\n",
            &[
                "test.toml:1: grant[0].role: is missing (fix: add role = \"<role id>\" to this [[grant]])",
            ],
        ),
        (
            "[bot]\ncommand_rate = \"10 per minute\"\n",
            &[
                "test.toml:2: bot.command_rate: \"10 per minute\" is not a rate; write it like \"10/m\" (fix: write it like \"10/m\" (a burst of 10, refilled over a minute))",
            ],
        ),
        (
            "[api]\nrate = \"20 a second\"\nbody_limit = 10\nbursts = 4\n",
            &[
                "test.toml:2: api.rate: \"20 a second\" is not a rate; write it like \"10/m\" (fix: write it like \"20/s\" (20 calls a second per key))",
                "test.toml:3: api.body_limit: 10 is out of range (fix: use a whole number of at least 1024)",
                "test.toml:4: api.bursts: unknown key (fix: did you mean `burst`?)",
            ],
        ),
        (
            "[api]\nbody_limit = 999999999\nburst = 0\n",
            &[
                "test.toml:2: api.body_limit: 999999999 bytes is more than the API needs (fix: use at most 16777216 (16 MiB); the default is 65536)",
                "test.toml:3: api.burst: 0 is out of range (fix: use a whole number of at least 1)",
            ],
        ),
        (
            &format!("{BASE}enabled = \"yes\"\n"),
            &["test.toml:4: integration.api.enabled: expected true or false, found a string"],
        ),
        (
            "[bot]\nguilds = [\"12x\"]\naudit_channel = 0\n",
            &[
                "test.toml:2: bot.guilds[0]: \"12x\" is not a Discord ID (fix: copy the ID with Discord's developer mode (a number like \"123456789012345678\"))",
                "test.toml:3: bot.audit_channel: an integer is not a Discord ID (fix: copy the ID with Discord's developer mode (a number like \"123456789012345678\"))",
            ],
        ),
        (
            "[storage]\nurl = \"postgres://localhost/patchbay\"\n",
            &[
                "test.toml:2: storage.url: PostgreSQL is not supported by this release yet (fix: use a sqlite:// URL such as \"sqlite://patchbay.db\")",
            ],
        ),
        (
            "[storage]\nminute_rollup_retention = \"12h\"\n",
            &[
                "test.toml:2: storage.minute_rollup_retention: 12h is too short: the 24-hour chart and /status read a day of one-minute rollups (fix: use at least 1d; the default is 7d)",
            ],
        ),
        (
            "[storage]\nminute_rollup_retention = \"30d\"\nrollup_retention = \"14d\"\n",
            &[
                "test.toml:2: storage.minute_rollup_retention: 30d is longer than rollup_retention (14d), which keeps the one-hour rollups (fix: use at most 14d, or raise rollup_retention)",
            ],
        ),
        // [alerts], its routes and [[maintenance]] windows.
        (
            "[alerts]\nrepeats = \"4h\"\n",
            &["test.toml:2: alerts.repeats: unknown key (fix: did you mean `repeat`?)"],
        ),
        (
            "[alert]\nrepeat = \"4h\"\n",
            &["test.toml:1: alert: unknown key (fix: did you mean `alerts`?)"],
        ),
        (
            "[alerts]\nrepeat = \"30s\"\n",
            &[
                "test.toml:2: alerts.repeat: 30s is shorter than 1m (fix: remind at most once a minute, or write \"0\" for no reminders)",
            ],
        ),
        (
            "[alerts]\ngroup_wait = \"10m\"\n",
            &[
                "test.toml:2: alerts.group_wait: 10m is longer than 5m (fix: wait at most \"5m\", or write \"0\" to send each alert at once)",
            ],
        ),
        (
            "[alerts]\nflap_threshold = 1\n",
            &[
                "test.toml:2: alerts.flap_threshold: 1 is out of range (fix: use a whole number of at least 2)",
            ],
        ),
        (
            "[alerts]\nflap_window = \"30s\"\n",
            &[
                "test.toml:2: alerts.flap_window: 30s is shorter than 1m (fix: count state changes over at least \"1m\")",
            ],
        ),
        (
            "[alerts]\nchannel = \"#alerts\"\n",
            &[
                "test.toml:2: alerts.channel: \"#alerts\" is not a Discord ID (fix: copy the ID with Discord's developer mode (a number like \"123456789012345678\"))",
            ],
        ),
        (
            // The URL pasted where the variable's name belongs is not echoed: it holds a token.
            "[alerts]\nwebhook_env = \"https://discord.com/api/webhooks/1/t0ken\"\n",
            &[
                "test.toml:2: alerts.webhook_env: is not the name of an environment variable (fix: write the variable's name, like \"DISCORD_ALERT_WEBHOOK\", and put the webhook URL in that variable (in .env), never in this file)",
            ],
        ),
        (
            "[alerts]\nwebhook_env = \"OPS_WEBHOOK\"\n",
            &[
                "test.toml:2: alerts.webhook_env: environment variable OPS_WEBHOOK is not set (fix: set OPS_WEBHOOK in the environment or in .env, or remove webhook_env to post as the bot)",
            ],
        ),
        (
            "[alerts.route]\nchannel = \"1\"\n",
            &[
                "test.toml:1: alerts.route: expected an array of tables ([[alerts.route]]), found a table",
            ],
        ),
        (
            "[[alerts.route]]\nmention = [\"1\"]\n",
            &[
                "test.toml:1: alerts.route[0].channel: is missing (fix: add channel = \"<channel id>\" to this [[alerts.route]])",
            ],
        ),
        (
            &format!(
                "{BASE}tags = [\"payments\"]\n[[alerts.route]]\nchannel = \"1\"\nmatch = {{ tags = [\"paymnts\"], severity = \"critcal\", integrations = [\"apii\"] }}\n"
            ),
            &[
                "test.toml:7: alerts.route[0].match.tags[0]: unknown tag \"paymnts\" (fix: did you mean \"payments\"?)",
                "test.toml:7: alerts.route[0].match.severity: unknown severity \"critcal\" (fix: did you mean \"critical\"?)",
                "test.toml:7: alerts.route[0].match.integrations[0]: unknown integration \"apii\" (fix: did you mean \"api\"?)",
            ],
        ),
        (
            "[[alerts.route]]\nchannel = \"1\"\nmatch = { tag = [\"payments\"] }\n",
            &["test.toml:3: alerts.route[0].match.tag: unknown key (fix: did you mean `tags`?)"],
        ),
        (
            &format!(
                "[[alerts.route]]\nchannel = \"1\"\nmention = [{}]\n",
                vec!["\"9\""; 21].join(", ")
            ),
            &[
                "test.toml:3: alerts.route[0].mention: 21 roles; at most 20 may be mentioned (fix: mention one role that the people to notify share)",
            ],
        ),
        (
            &"[[alerts.route]]\nchannel = \"1\"\n".repeat(101),
            &[
                "test.toml:201: alerts.route: more than 100 routes (fix: merge routes to the same channel: one route can match several integrations)",
            ],
        ),
        (
            &format!("{BASE}severity = \"high\"\n"),
            &[
                "test.toml:4: integration.api.severity: unknown severity \"high\" (fix: use \"critical\" or \"warning\")",
            ],
        ),
        (
            &format!("{BASE}channel = -5\n"),
            &[
                "test.toml:4: integration.api.channel: an integer is not a Discord ID (fix: copy the ID with Discord's developer mode (a number like \"123456789012345678\"))",
            ],
        ),
        (
            "[[maintenance]]\nname = \"nightly\"\n",
            &[
                "test.toml:1: maintenance[0].targets: is missing (fix: add targets = [\"integration-name\", \"tag:NAME\"] to this [[maintenance]])",
                "test.toml:1: maintenance[0].start: is missing (fix: add start = \"HH:MM\" (local time, 24-hour clock) to this [[maintenance]])",
                "test.toml:1: maintenance[0].duration: is missing (fix: add duration = \"1h\" (how long the window lasts) to this [[maintenance]])",
            ],
        ),
        (
            &format!(
                "{BASE}tags = [\"payments\"]\n[[maintenance]]\ntargets = [\"apu\", \"tag:payment\", \"tag:\"]\nstart = \"02:00\"\nduration = \"1h\"\n"
            ),
            &[
                "test.toml:6: maintenance[0].targets[0]: unknown integration \"apu\" (fix: did you mean \"api\"?)",
                "test.toml:6: maintenance[0].targets[1]: unknown tag \"payment\" (fix: did you mean \"payments\"?)",
                "test.toml:6: maintenance[0].targets[2]: \"tag:\" names no tag (fix: write the tag after the colon, like \"tag:payments\")",
            ],
        ),
        (
            &format!(
                "{BASE}[[maintenance]]\ntargets = [\"api\"]\nweekdays = [\"mon\", \"fryday\"]\nstart = \"2am\"\nduration = \"8d\"\ntimezone = \"Europe/Berln\"\n"
            ),
            &[
                "test.toml:6: maintenance[0].weekdays[1]: \"fryday\" is not a day of the week (fix: use mon, tue, wed, thu, fri, sat or sun)",
                "test.toml:7: maintenance[0].start: \"2am\" is not a time of day (fix: write it as HH:MM on a 24-hour clock, like \"02:00\")",
                "test.toml:8: maintenance[0].duration: 8d is longer than 7d (fix: keep one window to at most \"7d\"; list weekdays to repeat it)",
                "test.toml:9: maintenance[0].timezone: unknown time zone \"Europe/Berln\" (fix: did you mean \"Europe/Berlin\"?)",
            ],
        ),
        (
            &format!(
                "{BASE}[[maintenance]]\ntargets = []\nweekdays = []\nstart = \"24:00\"\nduration = \"1h\"\ntimezone = \"PST\"\n"
            ),
            &[
                "test.toml:5: maintenance[0].targets: lists no integration or tag (fix: list integration names or tag:NAME, like [\"payments-api\", \"tag:payments\"])",
                "test.toml:6: maintenance[0].weekdays: lists no day (fix: list days like [\"mon\", \"tue\"], or leave weekdays out for every day)",
                "test.toml:7: maintenance[0].start: \"24:00\" is not a time of day (fix: write it as HH:MM on a 24-hour clock, like \"02:00\")",
                "test.toml:9: maintenance[0].timezone: unknown time zone \"PST\" (fix: use an IANA time zone name, like \"Europe/Berlin\", \"America/New_York\" or \"UTC\")",
            ],
        ),
        // TLS: ca_file and conditions on the certificate.
        (
            &format!("{BASE}ca_file = \"no-such-ca.pem\"\n"),
            &[
                "test.toml:4: integration.api.ca_file: cannot read \"no-such-ca.pem\": No such file or directory (os error 2) (fix: point ca_file at a PEM file of CA certificates; a relative path is taken from the config file's directory)",
            ],
        ),
        (
            &format!("{BASE}ca_file = \"Cargo.toml\"\n"),
            &[
                "test.toml:4: integration.api.ca_file: \"Cargo.toml\" holds no PEM certificate (no -----BEGIN CERTIFICATE----- block) (fix: export the CA certificate in PEM form (-----BEGIN CERTIFICATE-----); a DER file converts with: openssl x509 -inform der -in ca.der -out ca.pem)",
            ],
        ),
        (
            &format!("{BASE}tls_verify = false\nca_file = \"Cargo.toml\"\n"),
            &[
                "test.toml:5: integration.api.ca_file: has no effect with tls_verify = false, which trusts any certificate (fix: remove tls_verify = false, so certificates are verified against this CA)",
            ],
        ),
        (
            &format!("{BASE}ca_file = 1\n"),
            &["test.toml:4: integration.api.ca_file: expected a string, found an integer"],
        ),
        (
            &format!("{BASE}conditions = [\"status == 200\", \"cert.expires_in > 14d\"]\n"),
            &[
                "test.toml:4: integration.api.conditions[1]: \"cert.expires_in > 14d\" reads the TLS certificate, but the url is http:// (fix: check the https:// URL, or remove this condition)",
            ],
        ),
        (
            "[[integration]]\nname = \"api\"\nurl = \"https://127.0.0.1:9/\"\nconditions = [\"cert.expire_in > 14d\", \"cert.expires_in > 14\"]\n",
            &[
                "test.toml:4: integration.api.conditions[0]: \"cert.expire_in > 14d\" at column 6: unknown certificate field \"cert.expire_in\"; expected cert.expires_in; did you mean \"cert.expires_in\"? (fix: see the condition syntax in patchbay.example.toml)",
                "test.toml:4: integration.api.conditions[1]: \"cert.expires_in > 14\" at column 19: cert.expires_in compares only with durations; did you mean 14d? (fix: see the condition syntax in patchbay.example.toml)",
            ],
        ),
        (
            "[http\nlisten = 1\n",
            &[
                "test.toml:1: (syntax): unclosed table, expected `]` (fix: fix the TOML syntax at that line)",
            ],
        ),
    ];
    for (text, expected) in cases {
        check(text, expected);
    }
}

/// A `[[sync]]` job with `body` appended, validated with `NOTION_TOKEN` set.
fn sync_errors(body: &str) -> Vec<String> {
    let text = format!("[[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\n{body}");
    errors(&text, &[("NOTION_TOKEN", "secret_x")])
}

#[test]
fn sync_jobs_are_validated_like_everything_else() {
    let id = "database_id = \"1a2b3c4d5e6f4a8b9c0d112233445566\"\n";
    assert_eq!(sync_errors(id), Vec::<String>::new());
    assert_eq!(
        sync_errors("database_id = \"https://notion.so/x\"\n"),
        [
            "test.toml:4: sync.board.database_id: the link \"https://notion.so/x\" holds no Notion id (32 hexadecimal digits) (fix: paste the database's link (••• → Copy link) or its 32-character id)"
        ]
    );
    assert_eq!(
        sync_errors(""),
        [
            "test.toml:1: sync.board.database_id: is missing (fix: add database_id = \"<the database's link or id>\" to this [[sync]])"
        ]
    );
    assert_eq!(
        sync_errors(&format!("{id}every = \"10s\"\n")),
        [
            "test.toml:5: sync.board.every: every 10s is too often: Notion's quota is shared by every job (fix: sync at most once a minute, e.g. every = \"15m\")"
        ]
    );
    assert_eq!(
        sync_errors(&format!("{id}every = \"soon\"\n")).len(),
        1,
        "a duration that does not parse is one error"
    );
    assert_eq!(
        sync_errors(&format!("{id}token = \"secret_abc\"\n")),
        [
            "test.toml:5: sync.board.token: a token is never written in the config file (fix: name the environment variable that holds it: token = \"env:NOTION_TOKEN\")"
        ]
    );
    assert_eq!(
        sync_errors(&format!("{id}token = \"env:OTHER_TOKEN\"\n")),
        [
            "test.toml:5: sync.board.token: environment variable OTHER_TOKEN is not set; sync job \"board\" needs a Notion token (fix: create an internal integration at notion.so/my-integrations and set OTHER_TOKEN to its secret (in the environment or .env))"
        ]
    );
    // Kinds get a "did you mean"; names must be unique.
    let text = format!(
        "[[sync]]\nname = \"board\"\nkind = \"notion-status-bord\"\n{id}[[sync]]\nname = \"board\"\nkind = \"notion-incident-log\"\n{id}every = \"1h\"\n"
    );
    assert_eq!(
        errors(&text, &[("NOTION_TOKEN", "secret_x")]),
        [
            "test.toml:3: sync.board.kind: unknown sync kind \"notion-status-bord\" (fix: did you mean \"notion-status-board\"?)",
            "test.toml:6: sync[1].name: duplicate sync job name \"board\" (fix: give each [[sync]] a unique name)",
            "test.toml:9: sync.board.every: an incident log is written as incidents change, not on a schedule (fix: remove every from this job)",
        ]
    );
    // Without NOTION_TOKEN the job is an error naming the variable.
    let text = format!("[[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\n{id}");
    assert_eq!(
        errors(&text, &[]),
        [
            "test.toml:1: sync.board.token: environment variable NOTION_TOKEN is not set; sync job \"board\" needs a Notion token (fix: create an internal integration at notion.so/my-integrations and set NOTION_TOKEN to its secret (in the environment or .env))"
        ]
    );
    // A valid job, read into typed settings, and a notion integration sharing the token.
    let text = "[[integration]]\nname = \"notion\"\nkind = \"notion\"\n\n[[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\ndatabase_id = \"https://www.notion.so/acme/Board-1A2B3C4D5E6F4A8B9C0D112233445566?v=0\"\ndata_source = \"Integrations\"\nevery = \"15m\"\n";
    let config = config::parse(
        text,
        "test.toml",
        None,
        &Environment::from_pairs([("NOTION_TOKEN", "secret_x")]),
    )
    .unwrap();
    let job = config.sync_job("board").unwrap();
    assert_eq!(
        job.database_id.as_str(),
        "1a2b3c4d-5e6f-4a8b-9c0d-112233445566"
    );
    assert_eq!(job.data_source.as_deref(), Some("Integrations"));
    assert_eq!(job.every, Some(Duration::from_secs(900)));
    assert_eq!(job.token.variable, "NOTION_TOKEN");
    assert!(!format!("{job:?}").contains("secret_x"), "{job:?}");
    let CheckSpec::Notion(check) = &config.integrations[0].check else {
        panic!("a notion check");
    };
    assert_eq!(check.token.value.expose(), "secret_x");
}

#[test]
fn every_problem_is_listed_in_file_order() {
    let text = "[defaults]\ninterval = \"soon\"\n[storage]\nretension = \"1d\"\n[[integration]]\nname = \"a\"\nurl = \"nope\"\nconditions = [\"stauts == 200\"]\n";
    let found = errors(text, &[("PATCHBAY_LOG_FORMAT", "xml")]);
    let lines: Vec<&str> = found
        .iter()
        .map(|e| e.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "test.toml:2",
            "test.toml:4",
            "test.toml:7",
            "test.toml:8",
            "environment"
        ],
        "{found:#?}"
    );
    assert_eq!(
        found[4],
        "environment: PATCHBAY_LOG_FORMAT: \"xml\" is not a log format (fix: use pretty or json)"
    );
}

#[test]
fn ids_are_accepted_as_strings_or_integers() {
    let config = config::parse(
        "[bot]\nguilds = [\"123456789012345678\", 876543210987654321]\naudit_channel = \"42\"\n",
        "test.toml",
        None,
        &Environment::default(),
    )
    .unwrap();
    assert_eq!(
        config.bot.guilds,
        [
            patchbay::model::Snowflake(123_456_789_012_345_678),
            patchbay::model::Snowflake(876_543_210_987_654_321)
        ]
    );
    assert_eq!(
        config.bot.audit_channel,
        Some(patchbay::model::Snowflake(42))
    );
}

#[test]
fn defaults_then_file_then_environment() {
    let text = format!(
        "[defaults]\ninterval = \"1m\"\ntimeout = \"5s\"\n[storage]\nurl = \"sqlite://file.db\"\n{BASE}"
    );
    let env = Environment::from_pairs([
        ("DATABASE_URL", "sqlite://from-env.db"),
        ("PATCHBAY_HTTP_LISTEN", "0.0.0.0:9090"),
        ("PATCHBAY_LOG_FORMAT", "json"),
        ("DISCORD_TOKEN", "very-secret-token"),
    ]);
    let config = config::parse(&text, "test.toml", None, &env).unwrap();
    assert_eq!(config.storage.url, "sqlite://from-env.db");
    assert_eq!(config.http.listen.to_string(), "0.0.0.0:9090");
    assert_eq!(config.log.format, LogFormat::Json);
    let api = &config.integrations[0];
    assert_eq!(api.interval, Duration::from_secs(60));
    assert_eq!(api.timeout, Duration::from_secs(5));
    // Untouched defaults.
    assert_eq!((api.failure_threshold, api.success_threshold), (3, 2));
    assert_eq!(config.scheduler.concurrency, 512);
    assert_eq!(config.storage.retention, Duration::from_secs(30 * 86_400));
    // The token is held, but never printed.
    assert_eq!(
        config.bot.token.as_ref().unwrap().expose(),
        "very-secret-token"
    );
    assert!(!format!("{config:?}").contains("very-secret-token"));
}

#[test]
fn minute_rollups_have_a_retention_of_their_own() {
    let retentions = |storage: &str| {
        let config = config::parse(
            &format!("[storage]\n{storage}{BASE}"),
            "test.toml",
            None,
            &Environment::default(),
        )
        .unwrap();
        (
            config.storage.minute_rollup_retention,
            config.storage.rollup_retention,
        )
    };
    let days = |n: u64| Duration::from_secs(n * 86_400);
    assert_eq!(retentions(""), (days(7), days(365)), "the defaults");
    assert_eq!(
        retentions("minute_rollup_retention = \"1d\"\n"),
        (days(1), days(365))
    );
    assert_eq!(
        retentions("minute_rollup_retention = \"90d\"\nrollup_retention = \"90d\"\n"),
        (days(90), days(90)),
        "as long as the hourly ones at most"
    );
    // A config that kept every rollup less than a week keeps loading: unset, the minute
    // rollups' retention follows the shorter one.
    assert_eq!(
        retentions("rollup_retention = \"3d\"\n"),
        (days(3), days(3))
    );
}

#[test]
fn env_header_values_are_secrets() {
    let text = format!(
        "{BASE}headers = {{ Authorization = \"env:PAYMENTS_TOKEN\", Accept = \"application/json\" }}\n"
    );
    let env = Environment::from_pairs([("PAYMENTS_TOKEN", "Bearer s3cr3t")]);
    let config = config::parse(&text, "test.toml", None, &env).unwrap();
    let CheckSpec::Http(http) = &config.integrations[0].check else {
        panic!("an http check")
    };
    let auth = http
        .headers
        .iter()
        .find(|(name, _)| name == "Authorization")
        .map(|(_, value)| value)
        .unwrap();
    assert!(matches!(auth, HeaderValue::Env { variable, .. } if variable == "PAYMENTS_TOKEN"));
    assert_eq!(auth.expose(), "Bearer s3cr3t");
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("env:PAYMENTS_TOKEN"));
}

#[test]
fn the_example_config_validates() {
    let config = config::load(
        std::path::Path::new("patchbay.example.toml"),
        true,
        &Environment::default(),
    )
    .unwrap();
    assert_eq!(config.integrations.len(), 2);
    assert!(config.integrations.iter().any(|i| !i.enabled));
    // Headless as shipped: no alert channel, no routes, so alerts are only logged.
    assert_eq!(config.alerts.channel, None);
    assert!(config.alerts.routes.is_empty());
    assert_eq!(config.maintenance.len(), 1);
    assert_eq!(config.maintenance[0].timezone.name(), "Europe/Berlin");
}

#[test]
fn alerts_and_maintenance_load() {
    use patchbay::config::MaintenanceTarget;
    use patchbay::model::{Severity, Snowflake};
    let text = format!(
        "{BASE}tags = [\"payments\", \"prod\"]\nseverity = \"warning\"\nchannel = 7\n\
         [alerts]\nchannel = \"111\"\nrepeat = \"0\"\ngroup_wait = \"0\"\nsend_resolved = false\n\
         flap_threshold = 3\nflap_window = \"10m\"\n\
         [[alerts.route]]\nmatch = {{ tags = [\"payments\"], severity = \"critical\", integrations = [\"api\"] }}\n\
         channel = \"222\"\nmention = [\"333\", 444]\n\
         [[maintenance]]\nname = \"nightly-db\"\ntargets = [\"api\", \"tag:prod\"]\nweekdays = [\"tue\", \"mon\", \"monday\"]\n\
         start = \"23:30\"\nduration = \"90m\"\ntimezone = \"America/New_York\"\n"
    );
    let config = config::parse(&text, "test.toml", None, &Environment::default()).unwrap();
    let api = &config.integrations[0];
    assert_eq!(api.severity, Some(Severity::Warning));
    assert_eq!(api.channel, Some(Snowflake(7)));
    let alerts = &config.alerts;
    assert_eq!(alerts.channel, Some(Snowflake(111)));
    assert_eq!(alerts.repeat, None);
    assert_eq!(alerts.group_wait, Duration::ZERO);
    assert!(!alerts.send_resolved);
    assert_eq!(
        (alerts.flap_threshold, alerts.flap_window),
        (3, Duration::from_secs(600))
    );
    let route = &alerts.routes[0];
    assert_eq!(route.tags, ["payments"]);
    assert_eq!(route.severity, Some(Severity::Critical));
    assert_eq!(route.integrations, ["api"]);
    assert_eq!(route.channel, Snowflake(222));
    assert_eq!(route.mention, [Snowflake(333), Snowflake(444)]);
    let window = &config.maintenance[0];
    assert_eq!(window.name.as_deref(), Some("nightly-db"));
    assert_eq!(
        window.targets,
        [
            MaintenanceTarget::Integration("api".into()),
            MaintenanceTarget::Tag("prod".into())
        ]
    );
    assert_eq!(
        window.weekdays,
        [chrono::Weekday::Mon, chrono::Weekday::Tue]
    );
    assert_eq!(window.duration, Duration::from_secs(90 * 60));
    // Monday 2026-03-02 23:30 in New York (UTC-5) is 04:30 UTC on Tuesday; 90 minutes later the
    // window closes.
    let at = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert!(window.active_at(at("2026-03-03T05:59:00Z")));
    assert!(!window.active_at(at("2026-03-03T06:00:00Z")));
    assert!(window.covers(api));

    // Without [alerts], the documented defaults.
    let defaults = config::parse("", "test.toml", None, &Environment::default()).unwrap();
    let alerts = &defaults.alerts;
    assert_eq!(alerts.channel, None);
    assert_eq!(alerts.repeat, Some(Duration::from_secs(4 * 3600)));
    assert_eq!(alerts.group_wait, Duration::from_secs(10));
    assert!(alerts.send_resolved);
    assert_eq!(
        (alerts.flap_threshold, alerts.flap_window),
        (6, Duration::from_secs(1800))
    );
    assert!(alerts.webhook.is_none() && alerts.routes.is_empty());
    assert!(defaults.maintenance.is_empty());
}

#[test]
fn the_alert_webhook_comes_from_the_environment_and_never_prints() {
    let hook = "http://127.0.0.1:4000/api/webhooks/1/s3cr3t-t0ken";
    // DISCORD_ALERT_WEBHOOK is read without any [alerts] table.
    let config = config::parse(
        "",
        "test.toml",
        None,
        &Environment::from_pairs([("DISCORD_ALERT_WEBHOOK", hook)]),
    )
    .unwrap();
    assert_eq!(config.alerts.webhook_env, "DISCORD_ALERT_WEBHOOK");
    assert_eq!(config.alerts.webhook.as_ref().unwrap().expose(), hook);
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");

    // webhook_env names another variable, which then wins.
    let config = config::parse(
        "[alerts]\nwebhook_env = \"OPS_HOOK\"\n",
        "test.toml",
        None,
        &Environment::from_pairs([
            ("OPS_HOOK", hook),
            (
                "DISCORD_ALERT_WEBHOOK",
                "https://discord.com/api/webhooks/2/other",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(config.alerts.webhook_env, "OPS_HOOK");
    assert_eq!(config.alerts.webhook.as_ref().unwrap().expose(), hook);

    // Bad URLs are reported without their value.
    let fix = "(fix: copy the URL from Discord (channel settings, Integrations, Webhooks, Copy Webhook URL); it looks like https://discord.com/api/webhooks/ID/TOKEN)";
    let cases = [
        (
            "https://example.com/hooks/s3cr3t",
            "is not a Discord webhook URL (its path has no /webhooks/)",
        ),
        (
            "ftp://example.com/webhooks/s3cr3t",
            "is not an http:// or https:// URL",
        ),
        (
            "discord.com/api/webhooks/1/s3cr3t",
            "is not a valid URL: relative URL without a base",
        ),
    ];
    for (value, message) in cases {
        assert_eq!(
            errors("", &[("DISCORD_ALERT_WEBHOOK", value)]),
            [format!(
                "environment: DISCORD_ALERT_WEBHOOK: {message} {fix}"
            )],
            "{value}"
        );
    }
}

#[test]
fn a_missing_default_file_means_defaults_but_a_named_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("patchbay.toml");
    let defaults = config::load(&missing, false, &Environment::default()).unwrap();
    assert!(defaults.integrations.is_empty());
    assert_eq!(defaults.http.listen.to_string(), "127.0.0.1:8080");
    let err = config::load(&missing, true, &Environment::default()).unwrap_err();
    assert!(
        err.0[0].message.starts_with("cannot read the config file"),
        "{err}"
    );
}

#[test]
fn the_example_documents_every_key() {
    let example = std::fs::read_to_string("patchbay.example.toml").unwrap();
    for (table, keys) in config::KEYS {
        for key in *keys {
            let documented = if table.is_empty() {
                example.contains(&format!("[{key}]")) || example.contains(&format!("[[{key}]]"))
            } else {
                // A key is set (`key = ...`) or, for an array of tables, opened as a header.
                example.contains(&format!("{key} ="))
                    || example.contains(&format!("[[{table}.{key}]]"))
            };
            assert!(
                documented,
                "patchbay.example.toml does not show `{table}.{key}`"
            );
        }
    }
    // The first line that sets each key (possibly commented out) has a comment right above it.
    let lines: Vec<&str> = example.lines().collect();
    for (table, keys) in config::KEYS {
        if table.is_empty() || table.contains('.') {
            continue; // Tables are headers, and inline-table keys are explained with their key.
        }
        for key in *keys {
            let first = lines
                .iter()
                .position(|line| {
                    let line = line.trim_start_matches("# ");
                    line.starts_with(&format!("{key} =")) || line == format!("[[{table}.{key}]]")
                })
                .unwrap_or_else(|| panic!("`{table}.{key}` is never set in the example"));
            assert!(
                first > 0 && lines[first - 1].starts_with('#'),
                "`{table}.{key}` (line {}) has no comment above it",
                first + 1
            );
        }
    }
}

#[test]
fn env_example_documents_every_variable_and_nothing_else() {
    let example = std::fs::read_to_string(".env.example").unwrap();
    let mut documented: Vec<&str> = example
        .lines()
        .map(|line| line.trim_start_matches('#').trim())
        .filter_map(|line| line.split_once('='))
        .map(|(name, _)| name.trim())
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    documented.sort_unstable();
    documented.dedup();
    let mut known: Vec<&str> = config::ENV_VARS.to_vec();
    known.sort_unstable();
    assert_eq!(
        documented, known,
        ".env.example and config::ENV_VARS differ"
    );
    // Each variable carries a comment line right above it.
    let lines: Vec<&str> = example.lines().collect();
    for variable in config::ENV_VARS {
        let at = lines
            .iter()
            .position(|line| {
                line.trim_start_matches('#')
                    .trim()
                    .starts_with(&format!("{variable}="))
            })
            .unwrap();
        assert!(
            at > 0 && lines[at - 1].starts_with("# "),
            "{variable} has no comment above it"
        );
    }
}

#[test]
fn grants_and_bot_settings_load() {
    use patchbay::access::{GrantSource, Permission};
    let config = config::parse(
        "[bot]\npublic_status = false\ncommand_rate = \"5/s\"\n[[grant]]\nrole = 42\npermissions = [\"sync.run\", \"audit.view\"]\n",
        "test.toml",
        None,
        &Environment::default(),
    )
    .unwrap();
    assert!(!config.bot.public_status);
    assert_eq!(config.bot.command_rate.burst, 5);
    assert_eq!(
        config.bot.command_rate.refill_every(),
        Duration::from_millis(200)
    );
    let granted: Vec<Permission> = config.grants.iter().map(|g| g.permission).collect();
    assert_eq!(granted, [Permission::SyncRun, Permission::AuditView]);
    assert!(
        config
            .grants
            .iter()
            .all(|g| g.role == patchbay::model::Snowflake(42) && g.source == GrantSource::Config)
    );
    // The defaults: status is public, 10 commands a minute (one every 6 s).
    let defaults = config::parse("", "test.toml", None, &Environment::default()).unwrap();
    assert!(defaults.bot.public_status);
    assert_eq!(
        defaults.bot.command_rate.refill_every(),
        Duration::from_secs(6)
    );
    assert!(defaults.grants.is_empty());
}

/// The errors of one `[[action]]` named `act` with `extra` lines, `RETOOL_KEY` set.
fn action_errors(extra: &str) -> Vec<String> {
    let text = format!(
        "[[action]]\nname = \"act\"\nkind = \"retool-workflow\"\ndescription = \"Does it\"\n\
         url = \"https://api.retool.com/v1/workflows/abc/startTrigger\"\n{extra}"
    );
    errors(&text, &[("RETOOL_KEY", "retool_wk_x")])
}

#[test]
fn actions_are_validated_like_everything_else() {
    let key = "api_key = \"env:RETOOL_KEY\"\n";
    assert_eq!(action_errors(key), Vec::<String>::new());
    let config = config::parse(
        &format!(
            "[[action]]\nname = \"act\"\nkind = \"retool-workflow\"\ndescription = \"d\"\n\
             url = \"https://x.example/t\"\n{key}roles = [\"444\", \"apikey:retool\"]\n\
             params = [{{ name = \"n\", type = \"integer\", min = 1, max = 3, required = true }}]\n"
        ),
        "test.toml",
        None,
        &Environment::from_pairs([("RETOOL_KEY", "retool_wk_x")]),
    )
    .unwrap();
    let action = &config.actions[0];
    assert!(action.confirm, "confirm is on unless turned off");
    assert!(!action.approval);
    assert_eq!(action.timeout, Duration::from_secs(120));
    assert_eq!(action.api_key.variable, "RETOOL_KEY");
    assert!(
        !format!("{action:?}").contains("retool_wk_x"),
        "the key is never printed"
    );
    assert_eq!(
        action.roles,
        [
            config::ActionRole::Role(patchbay::model::Snowflake(444)),
            config::ActionRole::ApiKey("retool".into())
        ]
    );
    for (extra, expected) in [
        (
            "",
            "test.toml:1: action.act.api_key: is missing (fix: add api_key = \"env:MY_SECRET\" naming the variable that holds it)",
        ),
        (
            "api_key = \"retool_wk_abc\"\n",
            "test.toml:6: action.act.api_key: an api_key is never written in the config file (fix: name the environment variable that holds it: api_key = \"env:MY_SECRET\")",
        ),
        (
            "api_key = \"env:OTHER\"\n",
            "test.toml:6: action.act.api_key: environment variable OTHER is not set; action \"act\" needs its workflow API key (fix: copy the API key from the workflow's webhook trigger in Retool into OTHER (in the environment or .env))",
        ),
        (
            &format!("{key}timeout = \"20m\"\n"),
            "test.toml:7: action.act.timeout: timeout 20m is out of range (fix: use 1s to 14m; Retool answers a synchronous trigger within 120s)",
        ),
        (
            &format!("{key}roles = [\"ops\"]\n"),
            "test.toml:7: action.act.roles[0]: \"ops\" is neither a role ID nor apikey:<name> (fix: copy the role's ID with Discord's developer mode, or write \"apikey:<name>\")",
        ),
        (
            &format!("{key}params = [{{ name = \"n\", type = \"integr\" }}]\n"),
            "test.toml:7: action.act.params[0].type: unknown parameter type \"integr\" (fix: did you mean \"integer\"?)",
        ),
        (
            &format!("{key}params = [{{ name = \"n\", type = \"integer\", min = 5, max = 1 }}]\n"),
            "test.toml:7: action.act.params[0].max: max 1 is below min 5 (fix: swap them)",
        ),
        (
            &format!("{key}params = [{{ name = \"n\", type = \"string\", choices = [\"a\"] }}]\n"),
            "test.toml:7: action.act.params[0].choices: a string parameter has no choices (fix: remove choices, or change the type)",
        ),
        (
            &format!("{key}params = [{{ name = \"n\", type = \"choice\" }}]\n"),
            "test.toml:7: action.act.params[0].choices: is missing (fix: add choices = [\"a\", \"b\"] to this choice parameter)",
        ),
        (
            &format!("{key}params = [{{ name = \"N\", type = \"boolean\" }}]\n"),
            "test.toml:7: action.act.params[0].name: \"N\" is not a valid parameter name (fix: use 1 to 32 characters from a-z, 0-9 and _)",
        ),
    ] {
        assert_eq!(action_errors(extra), [expected], "{extra}");
    }
    // A key in the URL is refused: it would sit in logs.
    let text = format!(
        "[[action]]\nname = \"act\"\nkind = \"retool-workflow\"\ndescription = \"d\"\n\
         url = \"https://api.retool.com/v1/workflows/abc/startTrigger?workflowApiKey=k\"\n{key}"
    );
    assert_eq!(
        errors(&text, &[("RETOOL_KEY", "x")]),
        [
            "test.toml:5: action.act.url: the URL carries the workflow API key (fix: remove ?workflowApiKey=... from the URL and set api_key = \"env:VAR\" instead)"
        ]
    );
}

#[test]
fn the_api_table_has_defaults_and_reads_its_rate_and_burst() {
    let parse = |text: &str| {
        config::parse(text, "test.toml", None, &Environment::default())
            .unwrap()
            .api
    };
    let default = parse("");
    assert_eq!(default.rate.burst, 40);
    assert_eq!(default.rate.refill_every(), Duration::from_millis(50));
    assert_eq!(default.body_limit, 65_536);
    // A rate alone: a burst of twice its count, refilled at its speed.
    let rate = parse("[api]\nrate = \"2/s\"\n");
    assert_eq!(rate.rate.burst, 4);
    assert_eq!(rate.rate.refill_every(), Duration::from_millis(500));
    let both = parse("[api]\nrate = \"60/m\"\nburst = 3\nbody_limit = 2048\n");
    assert_eq!(both.rate.burst, 3);
    assert_eq!(both.rate.refill_every(), Duration::from_secs(1));
    assert_eq!(both.body_limit, 2048);
}
