//! `patchbay check --online`'s checks of Notion and Retool (the Discord ones live in the
//! Discord front, the only module that speaks to Discord): each sync job's database is shared
//! with its integration, and each action's workflow URL answers. Every problem names its config
//! key and what to do.

use crate::config::Config;
use crate::model::Problem;
use crate::notion::Notion;
use crate::retool::Retool;

/// Each `[[sync]]` job's database, read as a run reads it (the database, then its data
/// source) with the job's token: a database not shared with the integration, a wrong token or
/// an ambiguous data source is a problem.
pub async fn check_notion(config: &Config, notion: &Notion) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, job) in config.sync.iter().enumerate() {
        let client = notion.client(&job.token);
        if let Err(err) = client
            .resolve(&job.database_id, job.data_source.as_deref())
            .await
        {
            problems.push(Problem::new(
                format!("sync[{index}].database"),
                format!(
                    "sync job {:?} cannot read Notion database {}: {err}",
                    job.name, job.database_id
                ),
                err.what_to_do(&job.token.variable),
            ));
        }
    }
    problems
}

/// Each `[[action]]`'s workflow URL answers a request that does not start it
/// ([`Retool::reachable`]).
pub async fn check_retool(config: &Config, retool: &Retool) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, action) in config.actions.iter().enumerate() {
        if let Err(why) = retool.reachable(action).await {
            problems.push(Problem::new(
                format!("action[{index}].url"),
                format!(
                    "the workflow of action {:?} does not answer at {}: {why}",
                    action.name,
                    action.url.origin().ascii_serialization()
                ),
                "check the URL (Retool: the workflow's Webhook trigger, Copy URL) and that this \
                 machine reaches it",
            ));
        }
    }
    problems
}
