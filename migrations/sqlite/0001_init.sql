-- patchbay's first schema. Never edit a migration once it has shipped: add a new one.
--
-- Times are stored as integers (Unix milliseconds for events, Unix seconds for rollup buckets):
-- the same types work in SQLite and PostgreSQL, compare cheaply and index well.

-- Raw check results, one row per check, kept for [storage].retention (30 days by default).
CREATE TABLE check_results (
    id          INTEGER PRIMARY KEY,
    integration TEXT    NOT NULL,
    at_ms       BIGINT  NOT NULL,
    success     BOOLEAN NOT NULL,
    latency_ms  DOUBLE PRECISION NOT NULL,
    status      INTEGER,
    error_kind  TEXT,
    message     TEXT
);
-- Per-integration history reads ("the last N results", window seeding) and retention deletes.
CREATE INDEX check_results_by_integration ON check_results (integration, at_ms);
CREATE INDEX check_results_by_time ON check_results (at_ms);

-- One-minute (resolution 60) and one-hour (resolution 3600) rollups of the results, kept for
-- [storage].rollup_retention (a year by default). The h0..h13 columns count latencies per bucket
-- (upper bounds in ms: 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, +inf) so
-- that rollups merge with plain addition and p50/p95 are estimated from any range of them.
CREATE TABLE rollups (
    integration TEXT    NOT NULL,
    resolution  INTEGER NOT NULL,
    bucket      BIGINT  NOT NULL,
    count       BIGINT  NOT NULL,
    failures    BIGINT  NOT NULL,
    latency_sum DOUBLE PRECISION NOT NULL,
    latency_min DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL,
    h0 BIGINT NOT NULL, h1 BIGINT NOT NULL, h2 BIGINT NOT NULL, h3 BIGINT NOT NULL,
    h4 BIGINT NOT NULL, h5 BIGINT NOT NULL, h6 BIGINT NOT NULL, h7 BIGINT NOT NULL,
    h8 BIGINT NOT NULL, h9 BIGINT NOT NULL, h10 BIGINT NOT NULL, h11 BIGINT NOT NULL,
    h12 BIGINT NOT NULL, h13 BIGINT NOT NULL,
    PRIMARY KEY (resolution, bucket, integration)
);
CREATE INDEX rollups_by_integration ON rollups (integration, resolution, bucket);

-- The state machine's state per integration, so a restart continues where it stopped.
CREATE TABLE integration_states (
    integration           TEXT    PRIMARY KEY,
    state                 TEXT    NOT NULL,
    since_ms              BIGINT  NOT NULL,
    consecutive_failures  INTEGER NOT NULL,
    consecutive_successes INTEGER NOT NULL,
    last_at_ms            BIGINT,
    last_success          BOOLEAN,
    last_latency_ms       DOUBLE PRECISION,
    last_message          TEXT
);

-- Every state transition with its reason. The alert pipeline reads these; it is written in the
-- same transaction as the state it leads to, so a transition is never announced twice.
CREATE TABLE transitions (
    id          INTEGER PRIMARY KEY,
    integration TEXT    NOT NULL,
    from_state  TEXT    NOT NULL,
    to_state    TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    at_ms       BIGINT  NOT NULL
);
CREATE INDEX transitions_by_integration ON transitions (integration, at_ms);
