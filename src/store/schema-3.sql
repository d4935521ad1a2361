-- natter schema, version 3: messages that live (edits, deletes, replies,
-- reactions, mentions) and search (PROTOCOL-2 sections 3 and 4). Run once on
-- a database at version 2, inside the transaction that sets
-- PRAGMA user_version = 3 (see src/store/sqlite.rs), so a database is either
-- wholly at version 3 or still wholly at version 2. Never edited once
-- released; a later version adds a new file.

-- What a message is now. Added columns rewrite no row (defaults are
-- constants), so this part is instant on a million messages.
-- `author`: who may edit or delete it (`a:KEY` or `g:ID`); '' for messages
-- stored before version 3, which so nobody can edit (an op can still
-- delete them).
ALTER TABLE messages ADD COLUMN author TEXT NOT NULL DEFAULT '';
-- The message it answers, as it was when answered; `reply_text` becomes
-- NULL when that message is deleted.
ALTER TABLE messages ADD COLUMN reply_seq  INTEGER NULL;
ALTER TABLE messages ADD COLUMN reply_from TEXT    NULL;
ALTER TABLE messages ADD COLUMN reply_text TEXT    NULL;
-- The mentioned nicks separated by single spaces (a nick has none); NULL
-- for none.
ALTER TABLE messages ADD COLUMN mentions  TEXT    NULL;
ALTER TABLE messages ADD COLUMN edited_ts INTEGER NULL;
-- A deleted message keeps its row (its seq, sender and time are still
-- history) with text '' and no image.
ALTER TABLE messages ADD COLUMN deleted   INTEGER NOT NULL DEFAULT 0;
-- The message's id in the search index: FTS5 addresses documents by an
-- integer, and `messages` is keyed (room, seq). Given in insertion order
-- (the largest so far plus one), so the index's rowid order is newest
-- first, which lets a search walk the index backwards and stop after
-- `limit` hits instead of sorting every hit.
ALTER TABLE messages ADD COLUMN fts_id    INTEGER NULL;

-- Existing messages get ids in time order; within a room in seq order
-- whatever the clock did (by the running maximum of the room's ts, ties
-- by seq), since a one-room search pages by seq.
UPDATE messages SET fts_id = ordered.n
FROM (
    SELECT room, seq, row_number() OVER (ORDER BY t, room, seq) AS n
    FROM (
        SELECT room, seq,
               max(ts) OVER (PARTITION BY room ORDER BY seq) AS t
        FROM messages
    )
) AS ordered
WHERE messages.room = ordered.room AND messages.seq = ordered.seq;

CREATE UNIQUE INDEX messages_by_fts_id ON messages (fts_id);
-- FindWhat::LastBy: a room's latest messages by an author.
CREATE INDEX messages_by_author ON messages (room, author, seq);
-- FindWhat::LastOf and `from:` searches: by sender nick, compared as
-- `Nick::key` does (ASCII lowercase, which is what SQLite's lower() does).
CREATE INDEX messages_by_sender ON messages (room, lower(sender), seq);
-- A delete clears the quote of replies to the deleted message.
CREATE INDEX messages_by_reply ON messages (room, reply_seq)
    WHERE reply_seq IS NOT NULL;
-- A delete removes the image's bytes unless another message shows them
-- (ids are random today, but the images table allows one to be shared).
CREATE INDEX messages_by_image ON messages (image_id)
    WHERE image_id IS NOT NULL;

-- Edits, deletes and reactions: entries of a room's history with their own
-- seq (shared with messages: a room's seqs have no gap and no repeat).
-- `by`/`author`: the nick and identity of who made the change. Per kind:
-- edit: `text` is the new text (NULL once the target is deleted: a
-- deleted message's words leave the store); delete: `of_sender` is the
-- deleted message's sender; react: `emoji` and `react_on`.
CREATE TABLE amends (
    room      TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    target    INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    "by"      TEXT    NOT NULL,
    author    TEXT    NOT NULL,
    kind      TEXT    NOT NULL,   -- 'edit', 'delete' or 'react'
    text      TEXT    NULL,
    of_sender TEXT    NULL,
    emoji     TEXT    NULL,
    react_on  INTEGER NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;

-- A delete finds its target's edit entries.
CREATE INDEX amends_by_target ON amends (room, target);

-- The reactions a message has now, one row per (emoji, person). `seq` is
-- the react entry that put it there (reactors are listed in its order);
-- `emoji_seq` is when the emoji last appeared on the message (emoji are
-- listed in its order: a new emoji goes last, and keeps its place while
-- anyone still has it, as a list that appends and removes would).
CREATE TABLE reactions (
    room      TEXT    NOT NULL,
    target    INTEGER NOT NULL,
    emoji     TEXT    NOT NULL,
    author    TEXT    NOT NULL,
    nick      TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    emoji_seq INTEGER NOT NULL,
    PRIMARY KEY (room, target, emoji, author)
) WITHOUT ROWID;

-- How far the search index goes: every message with an `fts_id` up to
-- `upto` is in it (unless deleted), none after. Messages are indexed in
-- batches, not in the transaction that stores them: FTS5 writes a new
-- index segment per transaction, about ten pages, so indexing one message
-- per commit made every chat commit several times dearer
-- (docs/BENCHMARKS.md, "Search"). The store indexes what is pending a few
-- hundred at a time, and always before it searches.
CREATE TABLE search_progress (upto INTEGER NOT NULL);
INSERT INTO search_progress (upto) VALUES (0);

-- The search index's documents: the text of every message not deleted.
-- The index is "external content": it keeps no copy of the text, and
-- reads it from here for snippets. A view rather than `messages` itself,
-- so that the index and its content agree exactly (a deleted message is in
-- neither), which FTS5's full integrity-check verifies.
CREATE VIEW messages_text AS
    SELECT fts_id, text FROM messages
    WHERE deleted = 0 AND fts_id <= (SELECT upto FROM search_progress);

-- Case- and accent-insensitive words ('remove_diacritics 2' folds every
-- accent, also those Unicode composes differently); letters, digits and
-- private-use characters are word characters, everything else separates.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text,
    content = 'messages_text',
    content_rowid = 'fts_id',
    tokenize = 'unicode61 remove_diacritics 2',
    -- The last word of a query also matches as a prefix. Without these
    -- indexes FTS5 merges the postings of every word with that prefix
    -- before it can return the first hit: 35-160 ms for `the*` or `t*` in a
    -- million messages. With an index per prefix length of 2 to 4
    -- characters the prefix is one list, walked newest first and stopped
    -- at `limit`, like a word (docs/BENCHMARKS.md, "Search").
    prefix = '2 3 4'
);

-- The index's words, in order: a query's last word, also a prefix, is
-- spelled out into the words that start with it (`deploy` into `deploy`,
-- `deployed`, `deployment`), which FTS5 walks newest first and stops at
-- `limit`; a prefix query would first merge every one of their postings.
CREATE VIRTUAL TABLE messages_vocab USING fts5vocab (messages_fts, 'row');

-- Changes to messages already in the index are kept in step by triggers
-- rather than by the store's statements, so nothing that changes one (the
-- store, a migration, a hand edit in a sqlite3 shell) can leave the index
-- behind. Messages not indexed yet need nothing: the next batch indexes
-- them as they are then. An external content index's 'delete' needs the
-- old text exactly as it was indexed: the update trigger has it as
-- `old.text`. (An `fts_id` never changes once given.)
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, deleted ON messages
WHEN old.fts_id <= (SELECT upto FROM search_progress) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text)
        SELECT 'delete', old.fts_id, old.text WHERE old.deleted = 0;
    INSERT INTO messages_fts (rowid, text)
        SELECT new.fts_id, new.text WHERE new.deleted = 0;
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.deleted = 0 AND old.fts_id <= (SELECT upto FROM search_progress) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text)
        VALUES ('delete', old.fts_id, old.text);
END;

-- Index the messages stored before version 3.
UPDATE search_progress SET upto = (SELECT ifnull(max(fts_id), 0) FROM messages);
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
