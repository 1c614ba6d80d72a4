-- Access control and the audit log (the Discord front and, later, the REST API).
-- Discord IDs are stored as BIGINT: snowflakes are 64-bit but stay below 2^63 for centuries.

-- Grants made with `/perms grant`, per guild. Grants from `[[grant]]` in the config are not
-- stored here: they are read from the config at every start, so removing one from the file
-- removes it everywhere, and they cannot be revoked from Discord.
CREATE TABLE grants (
    guild_id      BIGINT NOT NULL,
    role_id       BIGINT NOT NULL,
    permission    TEXT   NOT NULL,
    granted_by    BIGINT NOT NULL,
    granted_at_ms BIGINT NOT NULL,
    PRIMARY KEY (guild_id, role_id, permission)
);

-- Every invocation of a command or button, whatever its outcome (autocomplete is not
-- recorded). `actor_kind` is `discord` (actor_id is the user id) or, later, `api_key`.
-- `options` is a JSON object with the values of secret options already redacted.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at_ms       BIGINT  NOT NULL,
    guild_id    BIGINT,
    channel_id  BIGINT,
    actor_kind  TEXT    NOT NULL,
    actor_id    TEXT    NOT NULL,
    actor_name  TEXT    NOT NULL,
    command     TEXT    NOT NULL,
    options     TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    latency_ms  DOUBLE PRECISION NOT NULL,
    error_kind  TEXT
);
-- `/audit` reads the newest entries, optionally by user, command or outcome; retention deletes
-- by time.
CREATE INDEX audit_log_by_time ON audit_log (at_ms);
CREATE INDEX audit_log_by_actor ON audit_log (actor_id, at_ms);
