//! Every slash command, one file per group; [`all`] is the list poise registers.

mod alerts;
mod audit;
mod help;
mod perms;
mod status;

use super::{CommandError, Data};

/// Every command patchbay registers.
pub fn all() -> Vec<poise::Command<Data, CommandError>> {
    vec![
        status::status(),
        alerts::alerts(),
        perms::perms(),
        audit::audit(),
        help::help(),
    ]
}
