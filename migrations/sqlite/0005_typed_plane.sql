-- The control plane answers in values and every kind of actor can act (issue: one control
-- plane, two fronts). Three changes, each keeping what older rows say.

-- 1. Each audit entry says why: the permission the call needed (NULL for what everyone may
-- run) and, when it was allowed, what allowed it (`owner`, `administrator`, `public`,
-- `role:<id>:config`, `role:<id>:command`, `scope`, `local`). Older entries have neither.
ALTER TABLE audit_log ADD COLUMN permission TEXT;
ALTER TABLE audit_log ADD COLUMN allowed_by TEXT;

-- 2. Who acknowledged a notice and who made a silence can be any actor (a Discord user, an API
-- key, the scheduler, the command line), stored as the audit log stores them: a kind, an id
-- (what filters match) and the name people read. `acked_by` and `created_by` keep the Discord
-- user id for Discord actors and are 0 for the others; older rows were all Discord users.
ALTER TABLE notices ADD COLUMN acked_kind TEXT;
ALTER TABLE notices ADD COLUMN acked_id TEXT;
UPDATE notices SET acked_kind = 'discord', acked_id = CAST(acked_by AS TEXT)
    WHERE acked_by IS NOT NULL;
ALTER TABLE silences ADD COLUMN created_kind TEXT NOT NULL DEFAULT 'discord';
ALTER TABLE silences ADD COLUMN created_id TEXT;
UPDATE silences SET created_id = CAST(created_by AS TEXT);

-- 3. A reply under an alert message is stored as what it says (`resolved`, `reminder`,
-- `stable`), not as text: the front that delivers it renders it, like posts and edits, so no
-- Discord markup is written by the domain. Older reply rows are read by their text.
ALTER TABLE outbox ADD COLUMN reply TEXT;
UPDATE outbox SET reply = CASE
        WHEN text LIKE '%Resolved after%' THEN 'resolved'
        WHEN text LIKE '%Stable again%' THEN 'stable'
        ELSE 'reminder'
    END
    WHERE kind = 'reply';
