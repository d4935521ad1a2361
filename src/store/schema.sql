-- natter schema, version 1. Run once, inside the transaction that sets
-- PRAGMA user_version = 1 (see src/store/sqlite.rs), so a database is either
-- wholly at version 1 or untouched. Later versions add a new migration file;
-- this one is never edited once released.

-- One row per room message. The key (room, seq) is the only index history
-- needs: every query names one room and a seq range. WITHOUT ROWID stores the
-- rows in that key's order, so a page is one contiguous b-tree walk.
CREATE TABLE messages (
    room     TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    ts       INTEGER NOT NULL,
    sender   TEXT    NOT NULL,
    text     TEXT    NOT NULL,
    action   INTEGER NOT NULL,
    -- An image message names its image; its type and size are kept here
    -- too, so history is read without touching the images table.
    image_id   TEXT    NULL,
    image_mime TEXT    NULL,
    image_size INTEGER NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;

-- Image bytes, served at /media/ID. Written in the same transaction as the
-- message that carries the image. A rowid table on purpose: SQLite advises
-- against WITHOUT ROWID for rows this large (up to --max-image bytes).
CREATE TABLE images (
    id   TEXT PRIMARY KEY,
    mime TEXT NOT NULL,
    data BLOB NOT NULL
);

-- Facts about the database itself; 'store_id' is made once with it.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT
);
