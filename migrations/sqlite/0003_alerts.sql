-- Alerts: incidents, the messages (notices) that tell about them, the outbox that delivers
-- those messages, and silences. Portable SQL: BIGINT ids and times in milliseconds, booleans
-- as BOOLEAN, partial indexes (SQLite and PostgreSQL both have them).

-- One alert message in a channel: a single incident, or a burst of incidents opened on the
-- same route within `group_wait`. `message_id` is set once Discord confirmed the post, so
-- later changes edit that message instead of posting a new one.
CREATE TABLE notices (
    id                INTEGER PRIMARY KEY,
    -- Where it goes; NULL when no channel is configured for it (the notice is only logged).
    channel_id        BIGINT,
    -- Role ids mentioned on open and on reminders, as a JSON array of strings.
    mention           TEXT    NOT NULL,
    message_channel   BIGINT,
    message_id        BIGINT,
    opened_at_ms      BIGINT  NOT NULL,
    resolved_at_ms    BIGINT,
    acked_by          BIGINT,
    acked_name        TEXT,
    acked_at_ms       BIGINT,
    silenced_until_ms BIGINT,
    -- When the last reminder went out (the open time before the first).
    reminded_at_ms    BIGINT  NOT NULL,
    -- A notice about an integration that changes state too often to notify each change.
    flapping          BOOLEAN NOT NULL
);
CREATE INDEX notices_open ON notices (channel_id, opened_at_ms) WHERE resolved_at_ms IS NULL;

-- One outage or degradation of one integration, from the transition that opened it to the
-- one that resolved it. `notice_id` is NULL while it is recorded but not notified, and
-- `suppressed` says why (`silence`, `maintenance`, `dependency`, `flapping`).
CREATE TABLE incidents (
    id             INTEGER PRIMARY KEY,
    integration    TEXT    NOT NULL,
    notice_id      BIGINT,
    severity       TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    opened_at_ms   BIGINT  NOT NULL,
    resolved_at_ms BIGINT,
    -- The incident of a dependency that was DOWN when this one opened.
    parent_id      BIGINT,
    suppressed     TEXT
);
CREATE INDEX incidents_open ON incidents (integration) WHERE resolved_at_ms IS NULL;
CREATE INDEX incidents_by_notice ON incidents (notice_id);

-- Each incident's timeline: opened, changed, acknowledged, silenced, resolved.
CREATE TABLE incident_events (
    id          INTEGER PRIMARY KEY,
    incident_id BIGINT  NOT NULL,
    at_ms       BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    detail      TEXT    NOT NULL
);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id, id);

-- Deliveries owed to Discord, written in the same transaction as the change that causes them.
-- `kind` is `post` (the notice's message), `edit` (show the notice's current state) or `reply`
-- (`text` under the message: reminders, "resolved after 12m"). A row is done only when Discord
-- confirmed it; rows of one notice are delivered in id order.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY,
    notice_id     BIGINT  NOT NULL,
    kind          TEXT    NOT NULL,
    text          TEXT,
    mention       TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL,
    not_before_ms BIGINT  NOT NULL,
    attempts      INTEGER NOT NULL,
    last_error    TEXT,
    done_at_ms    BIGINT
);
CREATE INDEX outbox_pending ON outbox (notice_id, id) WHERE done_at_ms IS NULL;

-- Silences from `/alerts silence` and the Silence button: `target` is an integration name or
-- `tag:NAME`.
CREATE TABLE silences (
    id            INTEGER PRIMARY KEY,
    target        TEXT    NOT NULL,
    until_ms      BIGINT  NOT NULL,
    reason        TEXT    NOT NULL,
    created_by    BIGINT  NOT NULL,
    created_name  TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL,
    removed_at_ms BIGINT
);

-- The last transition the alert pipeline turned into incidents, so after a crash it resumes
-- from the next one: none is skipped, none is handled twice.
CREATE TABLE alert_cursor (
    id            INTEGER PRIMARY KEY,
    transition_id BIGINT  NOT NULL
);
-- A database from before alerts existed starts after its newest transition, so its history is
-- not replayed as alerts.
INSERT INTO alert_cursor (id, transition_id) SELECT 1, COALESCE(MAX(id), 0) FROM transitions;
