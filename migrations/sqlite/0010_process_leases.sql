-- The processes holding this database (issue 12: backup and restore). `patchbay run` holds a
-- row while it runs, and `patchbay restore` while it replaces the file, so a restore can refuse
-- while a bot runs on the database and name it, and a bot cannot start on a database that is
-- being replaced. Numbered 0010: 0009 is the rollups' clustering, made on another branch.
--
-- `holder` names the process as the other leases do (`host/boot id/pid`); `role` is `run` or
-- `restore`. A row is renewed every 10 s and lapses at `expires_at_ms`, so a process that died
-- on another host stops counting 30 s later; one that died on this host stops counting at once
-- (its pid is gone). A clean stop deletes its row. One row per hold, not per holder: two
-- starts in one process (the tests' in-process restarts) never share a row.
CREATE TABLE process_leases (
    id            INTEGER PRIMARY KEY,
    holder        TEXT   NOT NULL,
    role          TEXT   NOT NULL,
    started_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
