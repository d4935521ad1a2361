-- natter schema, version 4: the words a search's last word is spelled out
-- into (PROTOCOL-2 section 4: the last word also matches as a prefix). Run
-- once on a database at version 3, inside the transaction that sets
-- PRAGMA user_version = 4 (see src/store/sqlite.rs). Never edited once
-- released; a later version adds a new file.

-- Version 3 listed the index's words through `messages_vocab`, an
-- fts5vocab table; but that table counts every posting of each word it
-- lists, 35 ms for a word in most of a million messages (the index walk
-- itself took 0.4 ms; docs/BENCHMARKS.md, "Search"). So the words are kept
-- here as well: added as messages are indexed or edited, removed when no
-- message has them any more. They are FTS5's own tokens: each text is
-- tokenized by `words_scratch`, an index with the same tokenizer that is
-- emptied at once, and its words are read from `words_scratch_vocab`
-- (small). `messages_vocab` stays, for the fill below and for checks by
-- hand.
CREATE TABLE search_words (word TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE VIRTUAL TABLE words_scratch USING fts5 (
    text,
    content = '',
    detail = none,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE words_scratch_vocab USING fts5vocab (words_scratch, 'row');

-- The triggers of version 3 again, and `search_words` follows them: the
-- new text's words are added, and those of the old text that no message
-- has any more are removed (a lookup of one word in the index stops at its
-- first posting). Messages not indexed yet need nothing: their batch adds
-- their words (src/store/sqlite.rs, `index_pending`).
DROP TRIGGER messages_fts_update;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, deleted ON messages
WHEN old.fts_id <= (SELECT upto FROM search_progress) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text)
        SELECT 'delete', old.fts_id, old.text WHERE old.deleted = 0;
    INSERT INTO messages_fts (rowid, text)
        SELECT new.fts_id, new.text WHERE new.deleted = 0;
    INSERT INTO words_scratch (rowid, text)
        SELECT 1, new.text WHERE new.deleted = 0;
    INSERT OR IGNORE INTO search_words (word) SELECT term FROM words_scratch_vocab;
    INSERT INTO words_scratch (words_scratch) VALUES ('delete-all');
    INSERT INTO words_scratch (rowid, text)
        SELECT 1, old.text WHERE old.deleted = 0;
    DELETE FROM search_words
        WHERE word IN (SELECT term FROM words_scratch_vocab)
        AND NOT EXISTS (SELECT 1 FROM messages_fts
                        WHERE messages_fts MATCH '"' || replace(word, '"', '""') || '"');
    INSERT INTO words_scratch (words_scratch) VALUES ('delete-all');
END;

DROP TRIGGER messages_fts_delete;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.deleted = 0 AND old.fts_id <= (SELECT upto FROM search_progress) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text)
        VALUES ('delete', old.fts_id, old.text);
    INSERT INTO words_scratch (rowid, text) VALUES (1, old.text);
    DELETE FROM search_words
        WHERE word IN (SELECT term FROM words_scratch_vocab)
        AND NOT EXISTS (SELECT 1 FROM messages_fts
                        WHERE messages_fts MATCH '"' || replace(word, '"', '""') || '"');
    INSERT INTO words_scratch (words_scratch) VALUES ('delete-all');
END;

-- The words of what is indexed already.
INSERT INTO search_words (word) SELECT term FROM messages_vocab;
