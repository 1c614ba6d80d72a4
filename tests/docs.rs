//! The docs stay in step with the code: every CLI subcommand is documented in commands.md, so is
//! every slash command option and the limit it is registered with, every REST API route the
//! router serves (with the permission the OpenAPI document names for it), the README's two
//! set-up commands are the ones `.ci/run` and a user run, and the packaging (Dockerfile, systemd
//! unit) carries the crate's version and sets only variables patchbay reads.

use clap::CommandFactory;
use patchbay::cli::Cli;

#[test]
fn commands_md_documents_every_subcommand() {
    let commands = std::fs::read_to_string("commands.md").unwrap();
    let cli = Cli::command();
    let names: Vec<&str> = cli.get_subcommands().map(clap::Command::get_name).collect();
    assert!(names.contains(&"status"), "{names:?}");
    for name in names {
        assert!(
            commands.contains(&format!("### {name}\n")),
            "commands.md has no section for `patchbay {name}`"
        );
    }
    // The invite's permissions are explained from the one list the URL is built from.
    for (bit, name, why) in patchbay::discord::doctor::PERMISSIONS {
        assert!(
            commands.contains(&format!("| {name} | {why} |")),
            "commands.md does not explain {name} ({}) as the invite asks for it",
            bit.bits()
        );
    }
    assert!(commands.contains(&format!(
        "permissions={}",
        patchbay::discord::doctor::invite_permissions().bits()
    )));
    for endpoint in ["/healthz", "/readyz", "/metrics"] {
        assert!(
            commands.contains(endpoint),
            "commands.md does not list {endpoint}"
        );
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let ci = std::fs::read_to_string(".ci/run").unwrap();
    let test_command = readme
        .lines()
        .find(|line| line.contains("# runs the whole test suite"))
        .and_then(|line| line.split('#').next())
        .map(str::trim)
        .expect("the README names its test command");
    assert!(
        ci.lines().any(|line| line.trim() == test_command),
        ".ci/run does not run `{test_command}`"
    );
    assert!(readme.contains("cargo run -- --config patchbay.example.toml"));
}

#[test]
fn commands_md_documents_every_slash_command_and_option() {
    let commands = std::fs::read_to_string("commands.md").unwrap();
    for command in patchbay::discord::commands::all() {
        let name = &command.name;
        assert!(
            commands.contains(&format!("### /{name}\n")),
            "commands.md has no section for /{name}"
        );
        let section = commands.split(&format!("### /{name}\n")).nth(1).unwrap();
        let section = section.split("\n### ").next().unwrap();
        for sub in &command.subcommands {
            assert!(
                section.contains(&format!("/{name} {}", sub.name)),
                "commands.md does not show /{name} {}",
                sub.name
            );
            for parameter in &sub.parameters {
                assert!(
                    section.contains(&format!("{}:", parameter.name)),
                    "commands.md does not show the {} option of /{name} {}",
                    parameter.name,
                    sub.name
                );
            }
        }
        for parameter in &command.parameters {
            assert!(
                section.contains(&*parameter.name),
                "commands.md does not show the {} option of /{name}",
                parameter.name
            );
        }
    }
}

/// The row of commands.md's option limits table for a registered option (its JSON), if the
/// option has a limit there: text its `max_length`, numbers their range. Fixed choices have none.
fn limit_row(path: &str, option: &serde_json::Value) -> Option<String> {
    const NO_BOUND: f64 = 9_007_199_254_740_991.0;
    let name = option["name"].as_str().unwrap();
    let limit = match option["type"].as_u64().unwrap() {
        3 => format!(
            "at most {} characters",
            option["max_length"]
                .as_u64()
                .expect("every text option has a max_length")
        ),
        4 if option["choices"].as_array().is_none_or(Vec::is_empty) => {
            let min = option["min_value"].as_f64().expect("a minimum");
            let max = option["max_value"].as_f64().expect("a maximum");
            if max >= NO_BOUND {
                format!("a whole number, at least {min}")
            } else {
                format!("a whole number from {min} to {max}")
            }
        }
        _ => return None,
    };
    Some(format!("| `{path} {name}` | {limit} |"))
}

#[test]
fn commands_md_lists_every_option_limit_as_registered() {
    let commands = std::fs::read_to_string("commands.md").unwrap();
    let table: Vec<&str> = commands
        .split("| option | limit |\n|---|---|\n")
        .nth(1)
        .expect("commands.md has the option limits table")
        .lines()
        .take_while(|line| line.starts_with('|'))
        .collect();
    let mut expected = Vec::new();
    for command in patchbay::discord::commands::all() {
        let leaves: Vec<_> = if command.subcommands.is_empty() {
            vec![(format!("/{}", command.name), &command)]
        } else {
            command
                .subcommands
                .iter()
                .map(|sub| (format!("/{} {}", command.name, sub.name), sub))
                .collect()
        };
        for (path, leaf) in leaves {
            for parameter in &leaf.parameters {
                let option = parameter.create_as_slash_command_option().unwrap();
                let option = serde_json::to_value(option).unwrap();
                expected.extend(limit_row(&path, &option));
            }
        }
    }
    assert_eq!(table, expected);
}

#[test]
fn commands_md_documents_every_rest_route_and_its_permission() {
    let commands = std::fs::read_to_string("commands.md").unwrap();
    let section = commands
        .split("\n## REST API\n")
        .nth(1)
        .expect("commands.md has a REST API section");
    let document = patchbay::http::api::openapi_document();
    let routes = patchbay::http::api::routes();
    assert!(routes.len() > 10, "{routes:?}");
    for (method, path) in routes {
        let row = section
            .lines()
            .find(|line| {
                // The path alone, or with its query parameters.
                [
                    format!("| `{method} {path}`"),
                    format!("| `{method} {path}?"),
                ]
                .iter()
                .any(|start| line.starts_with(start.as_str()))
            })
            .unwrap_or_else(|| {
                panic!("commands.md's REST API table has no row for {method} {path}")
            });
        let operation = &document["paths"][path][method.as_str().to_lowercase()];
        match operation["x-permission"].as_str() {
            Some(permission) => assert!(
                row.contains(&format!("| `{permission}` |")),
                "commands.md gives {method} {path} another permission than {permission}: {row}"
            ),
            None => assert!(row.contains("| none |"), "{row}"),
        }
    }
}

#[test]
fn dockerfile_labels_the_image_with_the_crate_version() {
    let dockerfile = std::fs::read_to_string("Dockerfile").unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        dockerfile
            .lines()
            .any(|line| line == format!("ARG VERSION={version}")),
        "the Dockerfile's `ARG VERSION=` is not Cargo.toml's version {version}"
    );
}

/// The names a line sets as `NAME=value` pairs (a Dockerfile's ENV, a unit's Environment=).
fn assigned_names(line: &str) -> Vec<&str> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('=').map(|(name, _)| name))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect()
}

#[test]
fn packaging_sets_only_variables_patchbay_reads() {
    // A renamed variable would leave the container listening on loopback, or the database in
    // the wrong place, without a word.
    let dockerfile = std::fs::read_to_string("Dockerfile").unwrap();
    // The image's environment is the last stage's; the build stage's is cargo's.
    let runtime = dockerfile
        .rsplit("\nFROM ")
        .next()
        .expect("the Dockerfile has stages");
    let mut image = Vec::new();
    let mut in_env = false;
    for line in runtime.lines() {
        if line.starts_with("ENV ") || in_env {
            image.extend(assigned_names(line.trim_start_matches("ENV ")));
            in_env = line.ends_with('\\');
        }
    }
    let unit_file = std::fs::read_to_string("contrib/patchbay.service").unwrap();
    let unit: Vec<&str> = unit_file
        .lines()
        .filter_map(|line| line.strip_prefix("Environment="))
        .flat_map(assigned_names)
        .collect();
    for (what, set, needed) in [
        (
            "Dockerfile",
            &image,
            &["PATCHBAY_CONFIG", "DATABASE_URL", "PATCHBAY_HTTP_LISTEN"][..],
        ),
        (
            "contrib/patchbay.service",
            &unit,
            &["PATCHBAY_CONFIG", "DATABASE_URL"][..],
        ),
    ] {
        for name in needed {
            assert!(set.contains(name), "{what} no longer sets {name}: {set:?}");
        }
        for name in set {
            assert!(
                patchbay::config::ENV_VARS.contains(name),
                "{what} sets {name}, which patchbay does not read"
            );
        }
    }
}
