-- REST API keys (issue 11: a REST API for Retool dashboards). A key is shown once, when
-- `patchbay apikey create` makes it; only its SHA-256 is kept (`key_hash`, lower-case hex), so
-- the database cannot give a key away. A revoked key keeps its row (`revoked_at_ms`) so the
-- audit log's `apikey:<name>` entries still have a key to refer to; a name is unique among the
-- keys that are not revoked, so `retool` can be made again after it was revoked.
CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY,
    name          TEXT   NOT NULL,
    key_hash      TEXT   NOT NULL,
    -- Permission names, comma-separated, in the order given (`status.view,sync.run`).
    permissions   TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- Who made it, as the audit log stores an actor.
    created_kind  TEXT   NOT NULL,
    created_id    TEXT   NOT NULL,
    created_name  TEXT   NOT NULL,
    -- Written at most once a minute per key, not on every request.
    last_used_ms  BIGINT,
    revoked_at_ms BIGINT
);
CREATE UNIQUE INDEX api_keys_by_hash ON api_keys (key_hash);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at_ms IS NULL;
