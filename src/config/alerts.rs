//! Alert settings: `[alerts]` (delivery, reminders, grouping, flapping), its `[[alerts.route]]`
//! routes, and `[[maintenance]]` windows, with the pure decisions the alert pipeline asks of
//! them: where an alert goes ([`AlertsConfig::route_for`]) and whether a window mutes an
//! integration now ([`MaintenanceWindow::active_at`], [`MaintenanceWindow::covers`]).
//!
//! Nothing here knows Discord: channels and roles are [`Snowflake`]s, and the webhook is a URL
//! held as a [`Secret`] (it carries the webhook's token).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use reqwest::Url;

use super::error::{ConfigError, Diagnostics};
use super::raw::Table;
use super::{Environment, Integration};
use crate::duration;
use crate::model::State;
use crate::model::{Severity, Snowflake};
use crate::secret::Secret;
use crate::suggest;

/// The variable the webhook URL is read from when `webhook_env` does not name another.
pub const DEFAULT_WEBHOOK_ENV: &str = "DISCORD_ALERT_WEBHOOK";

pub(super) const ALERTS_KEYS: &[&str] = &[
    "channel",
    "repeat",
    "group_wait",
    "send_resolved",
    "webhook_env",
    "flap_threshold",
    "flap_window",
    "route",
];
pub(super) const ROUTE_KEYS: &[&str] = &["match", "channel", "mention"];
pub(super) const MATCH_KEYS: &[&str] = &["tags", "severity", "integrations"];
pub(super) const MAINTENANCE_KEYS: &[&str] = &[
    "name", "targets", "weekdays", "start", "duration", "timezone",
];

/// Reminders more often than this would be noise; `"0"` turns them off instead.
const MIN_REPEAT: Duration = Duration::from_secs(60);
/// Holding a first alert back longer than this delays the news more than grouping helps.
const MAX_GROUP_WAIT: Duration = Duration::from_secs(300);
/// A shorter flapping window cannot hold enough checks to tell flapping from one outage.
const MIN_FLAP_WINDOW: Duration = Duration::from_secs(60);
/// With fewer, one outage and its recovery would already count as flapping.
const MIN_FLAP_THRESHOLD: u32 = 2;
/// Roles one route may mention: an alert that pages more than this is a routing problem.
const MAX_MENTIONS: usize = 20;
/// Routes are tried in order for every alert; more than this is a config to restructure.
const MAX_ROUTES: usize = 100;
/// The longest maintenance window; it also bounds how far back `active_at` looks.
const MAX_WINDOW: Duration = Duration::from_secs(7 * 86_400);

impl Integration {
    /// The severity of an alert about this integration entering `state`: its own `severity` if
    /// set (for DOWN and DEGRADED alike), else [`Severity::of_state`]. `None` when the state
    /// raises no alert.
    pub fn alert_severity(&self, state: State) -> Option<Severity> {
        Severity::of_state(state).map(|default| self.severity.unwrap_or(default))
    }
}

/// `[alerts]`: how state changes become Discord messages.
///
/// Without any channel (no integration `channel`, no matching route, no default `channel`) an
/// alert is only logged (`patchbay::alert` target); that is not a config error, so a headless
/// install needs no `[alerts]` at all.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// The channel for alerts no route claims; `None` leaves them logged only.
    pub channel: Option<Snowflake>,
    /// How often an open, unacknowledged alert is repeated; `None` (`repeat = "0"`) sends no
    /// reminders.
    pub repeat: Option<Duration>,
    /// How long the first alert of a burst waits for others to share its message; zero sends
    /// each alert at once.
    pub group_wait: Duration,
    /// Whether a recovery (back to UP) is announced too.
    pub send_resolved: bool,
    /// The name of the variable the webhook URL is read from (`webhook_env`, by default
    /// `DISCORD_ALERT_WEBHOOK`), for log lines that say which webhook is in use.
    pub webhook_env: String,
    /// The Discord webhook URL to deliver through instead of the bot, read from the
    /// environment. A secret: the URL carries the webhook's token.
    pub webhook: Option<Secret>,
    /// More state changes than this within `flap_window` mark an integration flapping.
    pub flap_threshold: u32,
    /// The window state changes are counted over for flapping.
    pub flap_window: Duration,
    /// `[[alerts.route]]` in file order; the first that matches wins.
    pub routes: Vec<AlertRoute>,
}

impl Default for AlertsConfig {
    /// The settings without an `[alerts]` table: no channel, reminders every 4 hours, bursts
    /// gathered for 10 seconds, recoveries announced, flapping at more than 6 changes in 30
    /// minutes, no routes, no webhook.
    fn default() -> Self {
        AlertsConfig {
            channel: None,
            repeat: Some(Duration::from_secs(4 * 3600)),
            group_wait: Duration::from_secs(10),
            send_resolved: true,
            webhook_env: DEFAULT_WEBHOOK_ENV.to_string(),
            webhook: None,
            flap_threshold: 6,
            flap_window: Duration::from_secs(30 * 60),
            routes: Vec::new(),
        }
    }
}

impl AlertsConfig {
    /// Where an alert of `severity` about `integration` goes: the integration's own `channel`
    /// (with no mentions: it overrides routing entirely), else the first route that matches,
    /// else the default `channel` (no mentions), else `None` (the alert is only logged).
    pub fn route_for(&self, integration: &Integration, severity: Severity) -> Option<RouteTarget> {
        if let Some(channel) = integration.channel {
            return Some(RouteTarget {
                channel,
                mention: Vec::new(),
            });
        }
        if let Some(route) = self
            .routes
            .iter()
            .find(|route| route.matches(integration, severity))
        {
            return Some(RouteTarget {
                channel: route.channel,
                mention: route.mention.clone(),
            });
        }
        self.channel.map(|channel| RouteTarget {
            channel,
            mention: Vec::new(),
        })
    }
}

/// One `[[alerts.route]]`. Every condition written must hold; a route with no `match` (or an
/// empty one) takes every alert, which is how a catch-all route with mentions is written.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRoute {
    /// Tags the integration must *all* carry (empty: any integration).
    pub tags: Vec<String>,
    /// The alert's severity, if the route is for one only.
    pub severity: Option<Severity>,
    /// Integration names, *any* of which matches (empty: any integration).
    pub integrations: Vec<String>,
    /// Where matching alerts go.
    pub channel: Snowflake,
    /// Roles mentioned when an alert opens and on each reminder.
    pub mention: Vec<Snowflake>,
}

impl AlertRoute {
    /// Whether this route takes an alert of `severity` about `integration`.
    pub fn matches(&self, integration: &Integration, severity: Severity) -> bool {
        self.severity.is_none_or(|wanted| wanted == severity)
            && self.tags.iter().all(|tag| integration.tags.contains(tag))
            && (self.integrations.is_empty() || self.integrations.contains(&integration.name))
    }
}

/// Where one alert is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    /// The channel to post in.
    pub channel: Snowflake,
    /// Roles to mention (empty: none).
    pub mention: Vec<Snowflake>,
}

/// One `[[maintenance]]` window: alerts about its targets are held back while it is active.
///
/// The window opens on each listed weekday at `start`, local time in `timezone`, and lasts
/// `duration` of elapsed time (so a 1h window across a DST change is still one real hour, and a
/// window may run past midnight into the next day: the weekday is the day it *starts*). A start
/// time that occurs twice (autumn) opens at its first occurrence; a start time that does not
/// exist (02:30 on a spring-forward day in Europe/Berlin) opens when the clocks jump, at 03:00
/// local, and still lasts its whole duration.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceWindow {
    /// An optional label for logs and messages.
    pub name: Option<String>,
    /// The integrations and tags covered.
    pub targets: Vec<MaintenanceTarget>,
    /// The days the window opens on, Monday first; all seven when `weekdays` is not written.
    pub weekdays: Vec<Weekday>,
    /// The local time it opens.
    pub start: NaiveTime,
    /// How long it lasts (at most 7 days).
    pub duration: Duration,
    /// The time zone `start` and `weekdays` are read in (UTC by default).
    pub timezone: Tz,
}

/// What a maintenance window covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceTarget {
    /// One integration, by name.
    Integration(String),
    /// Every integration carrying the tag (written `tag:NAME`).
    Tag(String),
}

impl fmt::Display for MaintenanceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaintenanceTarget::Integration(name) => f.write_str(name),
            MaintenanceTarget::Tag(tag) => write!(f, "tag:{tag}"),
        }
    }
}

impl MaintenanceWindow {
    /// Whether the window covers `integration` (by name or by one of its tags).
    pub fn covers(&self, integration: &Integration) -> bool {
        self.targets.iter().any(|target| match target {
            MaintenanceTarget::Integration(name) => *name == integration.name,
            MaintenanceTarget::Tag(tag) => integration.tags.contains(tag),
        })
    }

    /// Whether the window is open at `at`.
    pub fn active_at(&self, at: DateTime<Utc>) -> bool {
        self.covering_end(at).is_some()
    }

    /// When the window that is open at `at` closes, or `None` if it is closed at `at`.
    /// Back-to-back or overlapping openings (a daily 24h window) read as one, up to a week.
    pub fn active_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut end = self.covering_end(at)?;
        let limit = at + TimeDelta::days(7);
        while end < limit {
            match self.covering_end(end) {
                Some(next) if next > end => end = next,
                _ => break,
            }
        }
        Some(end)
    }

    /// The latest end among the openings that contain `at`.
    fn covering_end(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let length = TimeDelta::from_std(self.duration).ok()?;
        let today = at.with_timezone(&self.timezone).date_naive();
        // An opening that contains `at` started at most `duration` ago; its local start date is
        // at most that many days back, plus one for the time of day and one for a DST shift.
        let days_back = self.duration.as_secs() / 86_400 + 2;
        (0..=days_back)
            .filter_map(|back| today.checked_sub_days(Days::new(back)))
            .filter(|date| self.weekdays.contains(&date.weekday()))
            .filter_map(|date| self.opens_on(date))
            .map(|start| (start, start + length))
            .filter(|(start, end)| *start <= at && at < *end)
            .map(|(_, end)| end)
            .max()
    }

    /// The instant the window opens on local `date` (see the type's docs for DST days).
    fn opens_on(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let local = date.and_time(self.start);
        // `earliest` takes the first of a repeated time and is `None` only inside a gap; then
        // the first minute after the gap is when the clocks jumped. Gaps are at most a day.
        (0..=24 * 60)
            .find_map(|minutes| {
                self.timezone
                    .from_local_datetime(&(local + TimeDelta::minutes(minutes)))
                    .earliest()
            })
            .map(|start| start.with_timezone(&Utc))
    }
}

/// The integration names and tags of the file, so routes and windows can be checked against
/// them. Read from the raw tables, so an integration with an unrelated error still counts and
/// its mistakes are not reported twice.
/// Sets rather than lists: a file may hold 10,000 integrations.
pub(super) struct KnownTargets {
    names: BTreeSet<String>,
    tags: BTreeSet<String>,
}

impl KnownTargets {
    pub(super) fn of(root: &Table<'_, '_>) -> Self {
        // Type errors here were (or will be) reported by the integration reader.
        let mut quiet = Diagnostics::new("", "");
        let mut known = KnownTargets {
            names: BTreeSet::new(),
            tags: BTreeSet::new(),
        };
        for (table, _) in root.tables(&mut quiet, "integration") {
            if let Some((name, _)) = table.string(&mut quiet, "name") {
                known.names.insert(name);
            }
            for (tag, _) in table.strings(&mut quiet, "tags").unwrap_or_default() {
                known.tags.insert(tag);
            }
        }
        known
    }

    /// Reports `name` at `at` unless an integration has it.
    fn check_name(&self, d: &mut Diagnostics, key: String, name: &str, at: usize) -> bool {
        if self.names.contains(name) {
            return true;
        }
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let fix = match suggest::closest(name, &names) {
            Some(close) => format!("did you mean {close:?}?"),
            None => "name an integration defined in this file".into(),
        };
        d.error(
            Some(at),
            key,
            format!("unknown integration {name:?}"),
            Some(fix),
        );
        false
    }

    /// Reports `tag` at `at` unless an integration carries it.
    fn check_tag(&self, d: &mut Diagnostics, key: String, tag: &str, at: usize) -> bool {
        if self.tags.contains(tag) {
            return true;
        }
        let tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        let fix = match suggest::closest(tag, &tags) {
            Some(close) => format!("did you mean {close:?}?"),
            None => "name a tag that an integration carries (tags = [...])".into(),
        };
        d.error(Some(at), key, format!("unknown tag {tag:?}"), Some(fix));
        false
    }
}

/// Reads a `critical`/`warning` value, suggesting the closer one on a typo.
pub(super) fn read_severity(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    key: &str,
) -> Option<Severity> {
    let (text, at) = table.string(d, key)?;
    match text.parse() {
        Ok(severity) => Some(severity),
        Err(message) => {
            let names = Severity::ALL.map(Severity::as_str);
            let fix = match suggest::closest(&text, &names) {
                Some(close) => format!("did you mean \"{close}\"?"),
                None => "use \"critical\" or \"warning\"".into(),
            };
            d.error(Some(at), table.key(key), message, Some(fix));
            None
        }
    }
}

/// Reads `[alerts]` and its routes, and the webhook URL from the environment.
pub(super) fn read_alerts(
    root: &Table<'_, '_>,
    d: &mut Diagnostics,
    env: &Environment,
    known: &KnownTargets,
) -> AlertsConfig {
    let mut alerts = AlertsConfig::default();
    // The variable named in the file, and where, when `webhook_env` is written.
    let mut named: Option<usize> = None;
    if let Some(table) = root.table(d, "alerts") {
        table.check_keys(d, ALERTS_KEYS);
        alerts.channel = table.snowflake(d, "channel");
        if let Some((repeat, at)) = table.duration_or_zero(d, "repeat") {
            if repeat.is_zero() {
                alerts.repeat = None;
            } else if repeat < MIN_REPEAT {
                d.error(
                    Some(at),
                    table.key("repeat"),
                    format!("{} is shorter than 1m", duration::compact(repeat)),
                    Some("remind at most once a minute, or write \"0\" for no reminders".into()),
                );
            } else {
                alerts.repeat = Some(repeat);
            }
        }
        if let Some((wait, at)) = table.duration_or_zero(d, "group_wait") {
            if wait > MAX_GROUP_WAIT {
                d.error(
                    Some(at),
                    table.key("group_wait"),
                    format!("{} is longer than 5m", duration::compact(wait)),
                    Some("wait at most \"5m\", or write \"0\" to send each alert at once".into()),
                );
            } else {
                alerts.group_wait = wait;
            }
        }
        if let Some(send) = table.boolean(d, "send_resolved") {
            alerts.send_resolved = send;
        }
        if let Some((variable, at)) = table.string(d, "webhook_env") {
            if valid_variable(&variable) {
                alerts.webhook_env = variable;
                named = Some(at);
            } else {
                // Never echo the value: the usual mistake is pasting the URL (and its token).
                d.error(
                    Some(at),
                    table.key("webhook_env"),
                    "is not the name of an environment variable",
                    Some(format!(
                        "write the variable's name, like \"{DEFAULT_WEBHOOK_ENV}\", and put the webhook URL in that variable (in .env), never in this file"
                    )),
                );
            }
        }
        if let Some(threshold) = table.at_least(d, "flap_threshold", MIN_FLAP_THRESHOLD) {
            alerts.flap_threshold = threshold;
        }
        if let Some((window, at)) = table.duration(d, "flap_window") {
            if window < MIN_FLAP_WINDOW {
                d.error(
                    Some(at),
                    table.key("flap_window"),
                    format!("{} is shorter than 1m", duration::compact(window)),
                    Some("count state changes over at least \"1m\"".into()),
                );
            } else {
                alerts.flap_window = window;
            }
        }
        for (index, (route, start)) in table.tables(d, "route").into_iter().enumerate() {
            if index == MAX_ROUTES {
                d.error(
                    Some(start),
                    table.key("route"),
                    format!("more than {MAX_ROUTES} routes"),
                    Some("merge routes to the same channel: one route can match several integrations".into()),
                );
            }
            if let Some(route) = read_route(&route, start, d, known) {
                alerts.routes.push(route);
            }
        }
    }
    alerts.webhook = read_webhook(&alerts.webhook_env, named, d, env);
    alerts
}

fn read_route(
    route: &Table<'_, '_>,
    start: usize,
    d: &mut Diagnostics,
    known: &KnownTargets,
) -> Option<AlertRoute> {
    let errors_before = d.errors.len();
    route.check_keys(d, ROUTE_KEYS);
    let channel = route.snowflake(d, "channel");
    route.require(
        d,
        "channel",
        start,
        "add channel = \"<channel id>\" to this [[alerts.route]]",
    );
    let mention = route.snowflakes(d, "mention").unwrap_or_default();
    if mention.len() > MAX_MENTIONS {
        d.error(
            route.get("mention").map(|value| value.span().start),
            route.key("mention"),
            format!(
                "{} roles; at most {MAX_MENTIONS} may be mentioned",
                mention.len()
            ),
            Some("mention one role that the people to notify share".into()),
        );
    }
    let mut tags = Vec::new();
    let mut severity = None;
    let mut integrations = Vec::new();
    if let Some(rule) = route.table(d, "match") {
        rule.check_keys(d, MATCH_KEYS);
        for (index, (tag, at)) in rule
            .strings(d, "tags")
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            if known.check_tag(d, format!("{}[{index}]", rule.key("tags")), &tag, at) {
                tags.push(tag);
            }
        }
        severity = read_severity(&rule, d, "severity");
        for (index, (name, at)) in rule
            .strings(d, "integrations")
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            if known.check_name(
                d,
                format!("{}[{index}]", rule.key("integrations")),
                &name,
                at,
            ) {
                integrations.push(name);
            }
        }
    }
    if d.errors.len() > errors_before {
        return None;
    }
    Some(AlertRoute {
        tags,
        severity,
        integrations,
        channel: channel?,
        mention,
    })
}

/// Environment variable names as shells accept them.
fn valid_variable(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads the webhook URL from `variable`. A variable the file names (`named` is where) must be
/// set; the default one is read only if it is. A bad URL is reported without its value.
fn read_webhook(
    variable: &str,
    named: Option<usize>,
    d: &mut Diagnostics,
    env: &Environment,
) -> Option<Secret> {
    let Some(url) = env.get(variable) else {
        if named.is_some() {
            d.error(
                named,
                "alerts.webhook_env",
                format!("environment variable {variable} is not set"),
                Some(format!(
                    "set {variable} in the environment or in .env, or remove webhook_env to post as the bot"
                )),
            );
        }
        return None;
    };
    let problem = match Url::parse(url) {
        Err(err) => Some(format!("is not a valid URL: {err}")),
        Ok(url) if !matches!(url.scheme(), "http" | "https") || url.host().is_none() => {
            Some("is not an http:// or https:// URL".to_string())
        }
        Ok(url) if !url.path().contains("/webhooks/") => {
            Some("is not a Discord webhook URL (its path has no /webhooks/)".to_string())
        }
        Ok(_) => None,
    };
    match problem {
        None => Some(Secret::new(url)),
        Some(message) => {
            d.errors.push(ConfigError {
                file: "environment".into(),
                line: None,
                key: variable.to_string(),
                message,
                fix: Some(
                    "copy the URL from Discord (channel settings, Integrations, Webhooks, Copy Webhook URL); it looks like https://discord.com/api/webhooks/ID/TOKEN"
                        .into(),
                ),
            });
            None
        }
    }
}

/// Reads every `[[maintenance]]` window; a window with any error is left out.
pub(super) fn read_maintenance(
    root: &Table<'_, '_>,
    d: &mut Diagnostics,
    known: &KnownTargets,
) -> Vec<MaintenanceWindow> {
    let mut windows = Vec::new();
    for (table, start) in root.tables(d, "maintenance") {
        let errors_before = d.errors.len();
        table.check_keys(d, MAINTENANCE_KEYS);
        let name = table.string(d, "name").map(|(name, _)| name);
        let targets = read_targets(&table, start, d, known);
        let weekdays = read_weekdays(&table, d);
        let opens = table.string(d, "start").and_then(|(text, at)| {
            let time = parse_clock(&text);
            if time.is_none() {
                d.error(
                    Some(at),
                    table.key("start"),
                    format!("{text:?} is not a time of day"),
                    Some("write it as HH:MM on a 24-hour clock, like \"02:00\"".into()),
                );
            }
            time
        });
        table.require(
            d,
            "start",
            start,
            "add start = \"HH:MM\" (local time, 24-hour clock) to this [[maintenance]]",
        );
        let length = table.duration(d, "duration").and_then(|(length, at)| {
            if length > MAX_WINDOW {
                d.error(
                    Some(at),
                    table.key("duration"),
                    format!("{} is longer than 7d", duration::compact(length)),
                    Some("keep one window to at most \"7d\"; list weekdays to repeat it".into()),
                );
                return None;
            }
            Some(length)
        });
        table.require(
            d,
            "duration",
            start,
            "add duration = \"1h\" (how long the window lasts) to this [[maintenance]]",
        );
        let timezone = match table.string(d, "timezone") {
            Some((text, at)) => read_timezone(&table, d, &text, at),
            None => Some(Tz::UTC),
        };
        if d.errors.len() > errors_before {
            continue;
        }
        if let (Some(start), Some(duration), Some(timezone)) = (opens, length, timezone) {
            windows.push(MaintenanceWindow {
                name,
                targets,
                weekdays,
                start,
                duration,
                timezone,
            });
        }
    }
    windows
}

fn read_targets(
    table: &Table<'_, '_>,
    start: usize,
    d: &mut Diagnostics,
    known: &KnownTargets,
) -> Vec<MaintenanceTarget> {
    let fix = "add targets = [\"integration-name\", \"tag:NAME\"] to this [[maintenance]]";
    table.require(d, "targets", start, fix);
    let Some(items) = table.strings(d, "targets") else {
        return Vec::new();
    };
    if items.is_empty() {
        d.error(
            table.get("targets").map(|value| value.span().start),
            table.key("targets"),
            "lists no integration or tag",
            Some(
                "list integration names or tag:NAME, like [\"payments-api\", \"tag:payments\"]"
                    .into(),
            ),
        );
    }
    let mut targets = Vec::new();
    for (index, (target, at)) in items.into_iter().enumerate() {
        let key = format!("{}[{index}]", table.key("targets"));
        match target.strip_prefix("tag:") {
            Some("") => d.error(
                Some(at),
                key,
                "\"tag:\" names no tag",
                Some("write the tag after the colon, like \"tag:payments\"".into()),
            ),
            Some(tag) => {
                if known.check_tag(d, key, tag, at) {
                    targets.push(MaintenanceTarget::Tag(tag.to_string()));
                }
            }
            None => {
                if known.check_name(d, key, &target, at) {
                    targets.push(MaintenanceTarget::Integration(target));
                }
            }
        }
    }
    targets
}

/// The weekdays listed, Monday first without repeats; all seven when the key is absent.
fn read_weekdays(table: &Table<'_, '_>, d: &mut Diagnostics) -> Vec<Weekday> {
    const EVERY_DAY: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let Some(items) = table.strings(d, "weekdays") else {
        return EVERY_DAY.to_vec();
    };
    if items.is_empty() {
        d.error(
            table.get("weekdays").map(|value| value.span().start),
            table.key("weekdays"),
            "lists no day",
            Some("list days like [\"mon\", \"tue\"], or leave weekdays out for every day".into()),
        );
    }
    let mut listed = Vec::new();
    for (index, (text, at)) in items.into_iter().enumerate() {
        match text.parse::<Weekday>() {
            Ok(day) => listed.push(day),
            Err(_) => d.error(
                Some(at),
                format!("{}[{index}]", table.key("weekdays")),
                format!("{text:?} is not a day of the week"),
                Some("use mon, tue, wed, thu, fri, sat or sun".into()),
            ),
        }
    }
    EVERY_DAY
        .into_iter()
        .filter(|day| listed.contains(day))
        .collect()
}

/// `HH:MM` on a 24-hour clock, exactly two digits each.
fn parse_clock(text: &str) -> Option<NaiveTime> {
    let (hours, minutes) = text.split_once(':')?;
    let two_digits = |part: &str| {
        (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    NaiveTime::from_hms_opt(two_digits(hours)?, two_digits(minutes)?, 0)
}

fn read_timezone(table: &Table<'_, '_>, d: &mut Diagnostics, text: &str, at: usize) -> Option<Tz> {
    if let Ok(timezone) = text.parse::<Tz>() {
        return Some(timezone);
    }
    // Suggest only region names: a close abbreviation ("EST" for "PST") would be wrong advice.
    let regions: Vec<&str> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|timezone| timezone.name())
        .filter(|name| name.contains('/'))
        .collect();
    let fix = match suggest::closest(text, &regions) {
        Some(close) => format!("did you mean \"{close}\"?"),
        None => {
            "use an IANA time zone name, like \"Europe/Berlin\", \"America/New_York\" or \"UTC\""
                .into()
        }
    };
    d.error(
        Some(at),
        table.key("timezone"),
        format!("unknown time zone {text:?}"),
        Some(fix),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, parse};

    fn config(text: &str) -> Config {
        match parse(text, "test.toml", None, &Environment::default()) {
            Ok(config) => config,
            Err(errors) => panic!("the test config is invalid:\n{errors}"),
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A window made of `keys`, over an integration named `api`.
    fn window(keys: &str) -> MaintenanceWindow {
        config(&format!(
            "[[integration]]\nname = \"api\"\nurl = \"http://127.0.0.1:9/\"\n[[maintenance]]\ntargets = [\"api\"]\n{keys}"
        ))
        .maintenance
        .remove(0)
    }

    const INTEGRATIONS: &str = "\
[[integration]]
name = \"pay\"
url = \"http://127.0.0.1:9/\"
tags = [\"payments\", \"prod\"]
[[integration]]
name = \"pay-staging\"
url = \"http://127.0.0.1:9/\"
tags = [\"payments\"]
[[integration]]
name = \"own\"
url = \"http://127.0.0.1:9/\"
tags = [\"payments\", \"prod\"]
channel = \"900\"
severity = \"warning\"
";

    #[test]
    fn routes_in_order_of_precedence() {
        let config = config(&format!(
            "{INTEGRATIONS}
[alerts]
channel = \"100\"
[[alerts.route]]
match = {{ tags = [\"payments\", \"prod\"], severity = \"critical\" }}
channel = \"200\"
mention = [\"201\", 202]
[[alerts.route]]
match = {{ integrations = [\"pay\", \"own\"] }}
channel = \"300\"
"
        ));
        let alerts = &config.alerts;
        let [pay, staging, own] = [0, 1, 2].map(|i| &config.integrations[i]);
        let target = |channel, mention: &[u64]| {
            Some(RouteTarget {
                channel: Snowflake(channel),
                mention: mention.iter().copied().map(Snowflake).collect(),
            })
        };
        // All of the route's tags and its severity: the first route, with its mentions.
        assert_eq!(
            alerts.route_for(pay, Severity::Critical),
            target(200, &[201, 202])
        );
        // Same integration, other severity: the first route fails, the second matches by name.
        assert_eq!(alerts.route_for(pay, Severity::Warning), target(300, &[]));
        // Only one of the two tags, and not named: the default channel.
        assert_eq!(
            alerts.route_for(staging, Severity::Critical),
            target(100, &[])
        );
        // The integration's own channel beats every route.
        assert_eq!(alerts.route_for(own, Severity::Critical), target(900, &[]));
        // Nowhere to send: logged only.
        let bare = AlertsConfig::default();
        assert_eq!(bare.route_for(staging, Severity::Critical), None);
    }

    #[test]
    fn a_route_without_match_takes_everything() {
        let config = config(&format!(
            "{INTEGRATIONS}[[alerts.route]]\nchannel = \"5\"\nmention = [\"6\"]\n"
        ));
        for integration in &config.integrations[..2] {
            for severity in Severity::ALL {
                assert_eq!(
                    config.alerts.route_for(integration, severity),
                    Some(RouteTarget {
                        channel: Snowflake(5),
                        mention: vec![Snowflake(6)]
                    })
                );
            }
        }
    }

    #[test]
    fn severity_defaults_by_state_and_the_override_applies_to_both() {
        let config = config(INTEGRATIONS);
        let (pay, own) = (&config.integrations[0], &config.integrations[2]);
        assert_eq!(pay.alert_severity(State::Down), Some(Severity::Critical));
        assert_eq!(pay.alert_severity(State::Degraded), Some(Severity::Warning));
        assert_eq!(own.alert_severity(State::Down), Some(Severity::Warning));
        assert_eq!(own.alert_severity(State::Degraded), Some(Severity::Warning));
        for state in [State::Up, State::Unknown, State::Paused] {
            assert_eq!(own.alert_severity(state), None);
        }
        assert_eq!(Severity::Critical.to_string(), "critical");
        assert_eq!("warning".parse(), Ok(Severity::Warning));
        assert!("Critical".parse::<Severity>().is_err());
    }

    #[test]
    fn windows_cover_names_and_tags() {
        let config = config(&format!(
            "{INTEGRATIONS}[[maintenance]]\ntargets = [\"pay-staging\", \"tag:prod\"]\nstart = \"02:00\"\nduration = \"1h\"\n"
        ));
        let window = &config.maintenance[0];
        let covered: Vec<&str> = config
            .integrations
            .iter()
            .filter(|i| window.covers(i))
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(covered, ["pay", "pay-staging", "own"]);
        let by_name = MaintenanceWindow {
            targets: vec![MaintenanceTarget::Integration("pay-staging".into())],
            ..window.clone()
        };
        assert!(!by_name.covers(&config.integrations[0]));
        assert!(by_name.covers(&config.integrations[1]));
        assert_eq!(window.targets[1].to_string(), "tag:prod");
    }

    #[test]
    fn a_window_is_active_from_start_for_its_duration() {
        let window = window("start = \"02:00\"\nduration = \"1h\"\n");
        assert_eq!(window.weekdays.len(), 7);
        assert_eq!(window.timezone, Tz::UTC);
        let cases = [
            ("2026-03-04T01:59:59Z", false),
            ("2026-03-04T02:00:00Z", true),
            ("2026-03-04T02:59:59Z", true),
            ("2026-03-04T03:00:00Z", false),
        ];
        for (at, active) in cases {
            assert_eq!(window.active_at(utc(at)), active, "{at}");
        }
        assert_eq!(
            window.active_until(utc("2026-03-04T02:30:00Z")),
            Some(utc("2026-03-04T03:00:00Z"))
        );
        assert_eq!(window.active_until(utc("2026-03-04T03:00:00Z")), None);
    }

    #[test]
    fn a_window_crosses_midnight_from_its_weekday() {
        // 2026-03-02 is a Monday.
        let window = window("weekdays = [\"mon\"]\nstart = \"23:30\"\nduration = \"1h\"\n");
        let cases = [
            ("2026-03-02T23:29:00Z", false),
            ("2026-03-02T23:45:00Z", true),
            ("2026-03-03T00:15:00Z", true), // Tuesday, still Monday's window.
            ("2026-03-03T00:30:00Z", false),
            ("2026-03-03T23:45:00Z", false), // Tuesday's would-be window: not listed.
            ("2026-03-01T23:45:00Z", false), // Sunday.
            ("2026-03-09T23:45:00Z", true),  // The next Monday.
        ];
        for (at, active) in cases {
            assert_eq!(window.active_at(utc(at)), active, "{at}");
        }
    }

    #[test]
    fn a_window_follows_its_time_zone_across_dst() {
        // Europe/Berlin: UTC+1 in winter, UTC+2 from 2026-03-29 02:00 (clocks jump to 03:00)
        // until 2026-10-25 03:00 (clocks go back to 02:00).
        let window = window("start = \"02:00\"\nduration = \"1h\"\ntimezone = \"Europe/Berlin\"\n");
        let cases = [
            // A winter day: 02:00 CET is 01:00 UTC.
            ("2026-03-28T00:59:00Z", false),
            ("2026-03-28T01:00:00Z", true),
            ("2026-03-28T01:59:00Z", true),
            ("2026-03-28T02:00:00Z", false),
            // Spring forward: 02:00 does not exist, so the window opens at the jump (03:00
            // CEST = 01:00 UTC) and lasts one real hour.
            ("2026-03-29T00:59:00Z", false),
            ("2026-03-29T01:00:00Z", true),
            ("2026-03-29T01:59:00Z", true),
            ("2026-03-29T02:00:00Z", false),
            // A summer day: 02:00 CEST is 00:00 UTC.
            ("2026-03-30T00:00:00Z", true),
            ("2026-03-30T01:00:00Z", false),
            // Fall back: 02:00 happens twice (00:00 UTC and 01:00 UTC); the first counts.
            ("2026-10-25T00:00:00Z", true),
            ("2026-10-25T00:59:00Z", true),
            ("2026-10-25T01:00:00Z", false),
        ];
        for (at, active) in cases {
            assert_eq!(window.active_at(utc(at)), active, "{at}");
        }
    }

    #[test]
    fn a_start_inside_the_gap_opens_when_the_clocks_jump() {
        let window = window("start = \"02:30\"\nduration = \"1h\"\ntimezone = \"Europe/Berlin\"\n");
        // 03:00 CEST (01:00 UTC) to 04:00 CEST.
        assert!(!window.active_at(utc("2026-03-29T00:59:00Z")));
        assert_eq!(
            window.active_until(utc("2026-03-29T01:00:00Z")),
            Some(utc("2026-03-29T02:00:00Z"))
        );
        // The day before: 02:30 CET is 01:30 UTC.
        assert!(window.active_at(utc("2026-03-28T01:30:00Z")));
        assert!(!window.active_at(utc("2026-03-28T01:29:00Z")));
    }

    #[test]
    fn back_to_back_openings_read_as_one() {
        let window =
            window("start = \"00:00\"\nduration = \"1d\"\nweekdays = [\"sat\", \"sun\"]\n");
        // 2026-03-07 is a Saturday: the weekend window ends Monday 00:00.
        assert_eq!(
            window.active_until(utc("2026-03-07T12:00:00Z")),
            Some(utc("2026-03-09T00:00:00Z"))
        );
        assert!(!window.active_at(utc("2026-03-09T00:00:00Z")));
    }

    #[test]
    fn long_windows_are_found_days_later() {
        let window = window("weekdays = [\"fri\"]\nstart = \"18:00\"\nduration = \"3d\"\n");
        // Friday 2026-03-06 18:00 to Monday 18:00.
        assert!(window.active_at(utc("2026-03-09T17:59:00Z")));
        assert!(!window.active_at(utc("2026-03-09T18:00:00Z")));
        assert!(!window.active_at(utc("2026-03-06T17:59:00Z")));
    }

    #[test]
    fn clock_times_are_exact() {
        assert_eq!(parse_clock("02:00"), NaiveTime::from_hms_opt(2, 0, 0));
        assert_eq!(parse_clock("23:59"), NaiveTime::from_hms_opt(23, 59, 0));
        for bad in ["2:00", "24:00", "12:60", "12:5", "12-00", "noon", "+1:00"] {
            assert_eq!(parse_clock(bad), None, "{bad}");
        }
    }
}
