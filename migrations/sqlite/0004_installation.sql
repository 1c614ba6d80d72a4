-- This installation's own random token, drawn once when the database is created (or first
-- migrated). Alert posts carry it in their idempotency key (Discord's `nonce`) with the outbox
-- row's id and creation time, so a fresh or restored database, whose row ids start again, never
-- sends a key another database sent: within Discord's nonce window that would return the other
-- message instead of posting. Six hex characters: the key must stay within 25 characters.
CREATE TABLE installation (
    id    INTEGER PRIMARY KEY,
    token TEXT    NOT NULL
);
INSERT INTO installation (id, token) VALUES (1, lower(hex(randomblob(3))));
