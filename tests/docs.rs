//! The docs stay in step with the code: every CLI subcommand is documented in commands.md, and
//! the README's two set-up commands are the ones `.ci/run` and a user run.

use clap::CommandFactory;
use patchbay::cli::Cli;

#[test]
fn commands_md_documents_every_subcommand() {
    let commands = std::fs::read_to_string("commands.md").unwrap();
    let cli = Cli::command();
    let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
    assert!(names.contains(&"status"), "{names:?}");
    for name in names {
        assert!(
            commands.contains(&format!("### {name}\n")),
            "commands.md has no section for `patchbay {name}`"
        );
    }
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
