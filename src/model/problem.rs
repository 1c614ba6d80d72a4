//! A problem with how patchbay is set up that only the outside world can show: a channel the
//! bot cannot post in, a role that does not exist, a Notion database not shared with the
//! integration. Found by `patchbay check --online`, and logged as warnings by `patchbay run`
//! at start.

use std::fmt;

/// One problem: the config key or variable it concerns, what is wrong, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The config key (`alerts.route[0].channel`) or environment variable (`DISCORD_TOKEN`).
    pub key: String,
    /// What is wrong, naming the id or name concerned.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl Problem {
    /// A problem with `key`.
    pub fn new(
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// `key: message (fix: fix)`, as `patchbay check` prints a config error.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (fix: {})", self.key, self.message, self.fix)
    }
}
