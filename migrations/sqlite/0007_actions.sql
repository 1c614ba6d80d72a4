-- Actions: the Retool workflows members run from Discord and keys from the REST API.

-- Every request to run an [[action]], from the request to its outcome. `state` moves
-- confirming -> awaiting_approval -> ready -> running -> succeeded | started | failed, or ends
-- cancelled, rejected, expired or refused; each move is one conditional UPDATE, so two presses
-- of one button (or a press and the expiry) cannot both win. `request_id` is the id the
-- workflow receives and the audit log names. `reached_retool` marks a run the workflow may
-- have acted on: the cooldown counts from those.
CREATE TABLE action_runs (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    guild_id BIGINT,
    channel_id BIGINT,
    state TEXT NOT NULL,
    needs_approval INTEGER NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    approver_kind TEXT,
    approver_id TEXT,
    approver_name TEXT,
    decided_at_ms BIGINT,
    started_at_ms BIGINT,
    finished_at_ms BIGINT,
    reached_retool INTEGER NOT NULL DEFAULT 0,
    response_status INTEGER,
    response TEXT,
    retool_run_id TEXT,
    error_kind TEXT,
    error TEXT,
    -- The approval message in Discord, and the state it shows, so a change (a decision, the
    -- expiry, the outcome) is edited into it even when it happened while Discord was away.
    approval_channel_id BIGINT,
    approval_message_id BIGINT,
    approval_shown TEXT
);
CREATE INDEX action_runs_by_action ON action_runs (action, id);
CREATE INDEX action_runs_by_state ON action_runs (state, expires_at_ms);

-- One run per action at a time, across processes: the run holding the action's lease, the
-- process holding it (`host/boot id/pid`), and when the lease lapses (the action's timeout
-- and a margin: a run never outlives it).
CREATE TABLE action_leases (
    action TEXT PRIMARY KEY,
    run_id BIGINT NOT NULL,
    holder TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
