-- pragmas/default.sql — the preset spawnd uses unless told otherwise: WAL, synchronous=NORMAL.
-- Safe against a crash of any process (handler, server); the last commits before a power loss or kernel crash
-- may be lost, but the file is never corrupted. See pragmas/README.md for the trade-offs.

-- @on-create
-- Settings stored in the database file itself. Run only when the file is new or not yet in WAL mode.
PRAGMA page_size = 4096;        -- bytes per page; 4096 matches the OS page and SSD block size (SQLite's default, made explicit). Only takes effect before the first table is created.
PRAGMA auto_vacuum = NONE;      -- never shrink the file; freed pages are reused by later inserts, so commits do no extra page moves.
PRAGMA journal_mode = WAL;      -- write-ahead log: readers never block the writer nor the writer readers, and a commit appends to one file instead of rewriting pages. Persists in the file.

-- @per-connection
-- Settings that live in one connection. Run at every open, in one sqlite3_exec.
PRAGMA busy_timeout = 5000;     -- wait up to 5000 ms for a lock before SQLITE_BUSY; first, so the statements below already wait.
PRAGMA synchronous = NORMAL;    -- in WAL: fsync the WAL only at checkpoints (spawnd's, every --checkpoint-interval), not at every commit. Durable across process crashes; the commits since the last checkpoint can be lost on power loss.
PRAGMA foreign_keys = ON;       -- enforce REFERENCES constraints (SQLite leaves them off for backwards compatibility).
PRAGMA temp_store = MEMORY;     -- temporary tables and sort/index scratch space in RAM, not in temp files.
PRAGMA cache_size = -8192;      -- page cache of at most 8192 KiB (negative = KiB); allocated lazily, so a short CGI process pays only for what it touches.
PRAGMA mmap_size = 134217728;   -- read up to 128 MiB of the file through mmap: a fresh process reads pages straight from the OS page cache instead of copying them in with read().
PRAGMA wal_autocheckpoint = 0; -- a handler's commit never checkpoints by page count: spawnd keeps a connection open and checkpoints off its event loop (a poll every --checkpoint-interval), so no request pays for it; only past 3/4 of --wal-max-bytes does a committing handler checkpoint itself (SPAWND_WAL_MAX_BYTES). Run without spawnd, nothing checkpoints while other connections stay open: run `sqlite3 FILE 'PRAGMA wal_checkpoint(TRUNCATE)'` (pragmas/README.md).
PRAGMA journal_size_limit = 67108864; -- 64 MiB: the writer that restarts the WAL after a full checkpoint cuts the -wal file back to this size when it is larger (e.g. left by a program that ran without spawnd); under spawnd the -wal stays under --wal-max-bytes (16 MiB), see pragmas/README.md.
