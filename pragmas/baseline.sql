-- pragmas/baseline.sql — SQLite's own defaults, rollback journal: the "before" of the benchmark's before/after.
-- Every value below is what a connection gets when nobody sets anything, written out so that it is visible and can
-- be read back, with ONE deliberate exception: busy_timeout (see its line). See pragmas/README.md.

-- @on-create
-- Settings stored in the database file itself. Run only when the file is new or in another journal mode.
PRAGMA page_size = 4096;        -- SQLite's default page size; only takes effect before the first table is created.
PRAGMA auto_vacuum = NONE;      -- SQLite's default: the file never shrinks by itself.
PRAGMA journal_mode = DELETE;   -- SQLite's default rollback journal: a writer locks out readers while it commits, and each commit creates, fsyncs and deletes a -journal file. Also turns a WAL file back into a rollback-journal file.

-- @per-connection
-- Settings that live in one connection. Run at every open, in one sqlite3_exec.
PRAGMA busy_timeout = 5000;     -- NOT SQLite's default (0, fail at once): without it the benchmark would measure SQLITE_BUSY errors (503s) instead of throughput. Kept equal to default.sql so that only the journal and sync settings differ.
PRAGMA synchronous = FULL;      -- SQLite's default: fsync the journal and the database at every commit.
PRAGMA foreign_keys = OFF;      -- SQLite's default: REFERENCES constraints are parsed but not enforced.
PRAGMA temp_store = DEFAULT;    -- SQLite's default (compile-time choice; files on Debian): temp tables and sort scratch may go to temp files.
PRAGMA cache_size = -2000;      -- SQLite's default: page cache of at most 2000 KiB.
PRAGMA mmap_size = 0;           -- SQLite's default: no memory-mapped I/O, every page is copied in with read().
PRAGMA wal_autocheckpoint = 1000; -- SQLite's default; has no effect in rollback-journal mode, set for completeness.
PRAGMA journal_size_limit = -1; -- SQLite's default: no limit on a leftover journal (none is left in DELETE mode).
