-- natter schema, version 2: accounts and moderation (PROTOCOL-2 sections 1
-- and 2). Run once on a database at version 1, inside the transaction that
-- sets PRAGMA user_version = 2 (see src/store/sqlite.rs), so a database is
-- either wholly at version 2 or still wholly at version 1. Never edited once
-- released; a later version adds a new file.

-- The account the sender was logged in as; NULL for a guest, and for every
-- message stored before version 2. (Adding a column rewrites no row: a
-- million-message history migrates at once.)
ALTER TABLE messages ADD COLUMN account TEXT NULL;

-- One row per registered account. Keyed by the lowercase name (nicks are
-- case-insensitive, ASCII only), so Alice and alice are one account; `name`
-- keeps the spelling it was registered with. `phc` is the password's Argon2id
-- hash as a PHC string; the password itself is never stored.
CREATE TABLE accounts (
    key     TEXT    PRIMARY KEY,
    name    TEXT    NOT NULL,
    phc     TEXT    NOT NULL,
    created INTEGER NOT NULL   -- ms since the Unix epoch
) WITHOUT ROWID;

-- Login tokens, by the SHA-256 of the token (hex): a stolen database gives
-- no one a working token. `account_key` is the account's lowercase name.
-- Expired rows are harmless (the hub ignores them) and go when their account
-- revokes its tokens or is deleted.
CREATE TABLE tokens (
    hash        TEXT    PRIMARY KEY,
    account_key TEXT    NOT NULL,
    expires     INTEGER NOT NULL   -- ms since the Unix epoch
) WITHOUT ROWID;

-- A password change or `natter accounts del` removes every token of one
-- account: this keeps that from scanning the table.
CREATE INDEX tokens_by_account ON tokens (account_key);

-- A room's settings, for rooms that have any (a room that never had an owner,
-- a topic or a list entry has no row). Room names are stored as the hub
-- spells them (RoomName: always lowercase).
CREATE TABLE rooms (
    room        TEXT    PRIMARY KEY,
    owner       TEXT    NULL,      -- the owning account; NULL for a guest's room
    topic       TEXT    NOT NULL,  -- '' for none
    invite_only INTEGER NOT NULL   -- 0 or 1
) WITHOUT ROWID;

-- Each room's op, ban, mute and invite lists, one row per entry. `kind` is
-- 'op', 'ban', 'mute' or 'invite'; `subject` names whom it concerns: an
-- account's lowercase name, or 'ip:ADDR' for a guest's ban or mute. `nick` is
-- the name as spelled when the entry was made, `by` who made it. `reason`
-- (bans) and `until` (timed mutes, ms since the epoch) may be NULL.
CREATE TABLE room_entries (
    room    TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    nick    TEXT    NOT NULL,
    "by"    TEXT    NOT NULL,      -- quoted: BY is an SQL keyword
    reason  TEXT    NULL,
    until   INTEGER NULL,
    ts      INTEGER NOT NULL,      -- when it was made, ms since the epoch
    PRIMARY KEY (room, kind, subject)
) WITHOUT ROWID;
