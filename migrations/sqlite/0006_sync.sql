-- Sync jobs: what patchbay keeps up to date in Notion (issue: Notion syncs).

-- Every run of a [[sync]] job, whoever started it: the scheduler, a Discord member, the command
-- line or an API key (an actor as the audit log stores one). A run is 'running' until it ends
-- 'ok' or 'failed'; a run whose process died keeps 'running' until the next run of its job
-- takes the lease over and marks it 'abandoned'. Counts are rows of the job's data source.
CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    dry_run INTEGER NOT NULL DEFAULT 0,
    started_at_ms INTEGER NOT NULL,
    finished_at_ms INTEGER,
    outcome TEXT NOT NULL DEFAULT 'running',
    total INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    error_kind TEXT,
    error TEXT,
    -- Where the run's live progress shows (a link to its Discord reply), for "already running".
    progress_link TEXT
);
CREATE INDEX sync_runs_by_job ON sync_runs (job, id);

-- One run per job at a time, across processes: the run holding a job's lease, the process
-- holding it (`host/boot id/pid`), and when the lease lapses unless renewed.
CREATE TABLE sync_leases (
    job TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL,
    holder TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);

-- The Notion page patchbay keeps for each row of a data source (an integration on a status
-- board, an incident in an incident log), and a hash of the values last written to it, so an
-- unchanged row costs nothing. Lost (a fresh database, a restored backup), rows are found
-- again by their title before anything is created.
CREATE TABLE notion_pages (
    data_source_id TEXT NOT NULL,
    row_key TEXT NOT NULL,
    page_id TEXT NOT NULL,
    content_hash TEXT,
    written_at_ms INTEGER NOT NULL,
    PRIMARY KEY (data_source_id, row_key)
);

-- How far each incident-log job has written the incident timelines (`incident_events`, which
-- the alert pipeline writes in the same transaction as the change): the last event written to
-- Notion, and, while an append is on its way, the last event it carries. An append whose
-- answer was lost (a timeout, a crash) leaves `sending_through` set, and the next attempt reads
-- the page back before appending, so an entry is neither repeated nor skipped.
CREATE TABLE notion_log_cursors (
    job TEXT PRIMARY KEY,
    after_event BIGINT NOT NULL,
    sending_through BIGINT
);

-- What a job learnt of its database the last time it checked: the data source it writes to,
-- that source's title property, and the database's link. A run within the hour after a check
-- skips resolving and reading the schema, so a steady status board costs only its query
-- pages; a write Notion refuses forgets it, and the next run checks again.
CREATE TABLE notion_targets (
    job TEXT PRIMARY KEY,
    database_id TEXT NOT NULL,
    data_source_setting TEXT NOT NULL,
    data_source_id TEXT NOT NULL,
    title_property TEXT NOT NULL,
    database_url TEXT,
    checked_at_ms BIGINT NOT NULL
);
