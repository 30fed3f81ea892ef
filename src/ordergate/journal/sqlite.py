"""The embedded journal: one SQLite file in WAL mode.

ALWAYS commits every append; BATCH buffers appends and commits them in one transaction
on flush(); both run with `synchronous=FULL` so a commit is on disk when it returns. NONE
buffers like BATCH with `synchronous=OFF` (the OS decides when bytes reach the disk).

One writer at a time: a writer holds an exclusive lock on `<journal>.lock` until it closes,
and a second one is refused when it opens. Readers (`reader=True`) do not take it.

A missing journal file is created only where no other journal left its files (its `-wal`,
head file, manifest, snapshot files): beside them it would be a journal deleted or moved
away, started again empty, its positions and decided intents forgotten. Opening refuses it,
naming them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import itertools
import os
import shlex
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from ordergate.journal import snapfiles
from ordergate.journal.attestation import state_digest
from ordergate.journal.base import Durability, JournalError, RawRow
from ordergate.journal.chain import (
    DEFAULT_BATCH_LIMIT,
    KEEP_SNAPSHOTS,
    ChainJournal,
    JournalDamaged,
    genesis,
)
from ordergate.journal.headfile import HEAD_SUFFIX
from ordergate.journal.migrations import (
    SQLITE_SCHEMA_VERSION,
    apply_sqlite,
    require_current,
    sqlite_schema_version,
)

WAL_CHECKPOINT_PAGES = 8192  # 32 MiB of 4 KiB pages
_CHECKPOINT_BYTES = WAL_CHECKPOINT_PAGES * 4096
_BACKSTOP_BYTES = 2 * _CHECKPOINT_BYTES
"""SQLite's own checkpoint (in the committing call), should the background ones fall behind
the estimate of what the WAL holds."""
PAGE_SIZE = 16384
"""Page size of a journal this creates. A commit writes each page it touched to the WAL as a
frame; with 16 KiB pages a batch's commit writes fewer frames than with SQLite's default
4 KiB (its last, partly filled page is rewritten once, not up to four times), which made a
batch's commit ~30 % cheaper on this disk. A journal keeps the size it was created with."""
_ROW_OVERHEAD_BYTES = 200  # a record's stored fields beside its payload, and the row's cell
_COMMIT_OVERHEAD_BYTES = 3 * 4096  # pages a commit rewrites besides new ones (leaf, parents)
PROBE_BUSY_TIMEOUT_MS = 100
"""How long the writability probe waits for another connection's write lock: a checkpoint
takes far less, and a probe must not stall the writer's thread the way a commit may."""
_BUSY_TIMEOUT_MS = 10_000  # the connection's own (its `timeout=10.0`)
_INSERT = ("INSERT INTO journal_records (seq, kind, run_id, recorded_at_ns, payload, prev_hash, "
           "hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
_INSERT_ROWS = 128
"""Rows per INSERT statement in a batch's write: one statement with many rows costs sqlite3 a
bind and a step per statement instead of per row (128 x 7 parameters stays within the 999
variables the oldest SQLite builds allow)."""
_SELECT = ("SELECT seq, kind, run_id, recorded_at_ns, payload, prev_hash, hash "
           "FROM journal_records")


class SqliteJournal(ChainJournal):
    def __init__(self, path: str, *, url: str, durability: Durability, run_id: str,
                 create: bool, reader: bool = False,
                 batch_limit: int = DEFAULT_BATCH_LIMIT) -> None:
        self._path = path
        # A reader keeps synchronous=FULL whatever durability it asks for: the last connection
        # to close copies the WAL into the database file and deletes it, and without fsyncs a
        # power cut could then lose records the writer had made durable.
        sync = "OFF" if durability is Durability.NONE and not reader else "FULL"
        existed = os.path.exists(path)
        if not existed and not create:
            left = _leftovers(path)
            if left:
                raise JournalError(f"{path}: no journal file here, but files of a journal "
                                   f"here are left: {', '.join(left)}; the journal file was "
                                   "deleted or moved away: restore it from a backup or replica")
            raise JournalError(f"{path}: no journal file here; check the path")
        if existed and not create and os.path.isfile(path) and os.path.getsize(path) == 0:
            # opening it would write a SQLite header into it: a reader changes nothing
            raise JournalError(f"{path}: the file is empty, not a journal; check the path")
        try:
            if not existed and os.path.dirname(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as exc:
            raise JournalError(f"{path}: cannot open the journal: {exc}") from exc
        # Readers neither take nor wait for the writer's lock: status and verify must work
        # while a gateway runs.
        self._writer_lock = None if reader else _lock_writer(path)
        if not existed:
            # Taken first: a gateway still running on the deleted file is named as the writer.
            left = _leftovers(path)
            if left:
                self._release_writer_lock()
                raise JournalError(_refuse_anew(path, left))
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=_BUSY_TIMEOUT_MS / 1000)
        except (OSError, sqlite3.Error) as exc:
            self._release_writer_lock()
            raise JournalError(f"{path}: cannot open the journal: {exc}") from exc
        self._conn = conn
        try:
            last_seq, last_hash = self._prepare(sync, create)
            stat = os.stat(path)
        except (OSError, sqlite3.Error) as exc:
            conn.close()
            self._release_writer_lock()
            if _damage(exc):
                raise JournalDamaged(f"{path}: cannot open the journal: the file is damaged: "
                                     f"{exc}") from exc
            raise JournalError(f"{path}: cannot open the journal: {exc}") from exc
        except JournalError:
            conn.close()
            self._release_writer_lock()
            raise
        self._identity = (stat.st_dev, stat.st_ino)
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_failure = ""
        self._sync = sync
        self._wal_bytes = 0  # an estimate of what the WAL holds since the last checkpoint
        self._snapshot_dir = snapfiles.directory_for(path)
        super().__init__(url=url, durability=durability, run_id=run_id, last_seq=last_seq,
                         last_hash=last_hash, batch_limit=batch_limit)
        if not reader:
            try:  # what a snapshot write that failed, or was killed, left behind
                snapfiles.remove_unfinished(self._snapshot_dir)
            except OSError as exc:
                self._log.warning("journal.unfinished_snapshots_not_removed",
                                  path=str(self._snapshot_dir), error=exc.strerror or str(exc))

    def _prepare(self, sync: str, create: bool) -> tuple[int, str]:
        conn = self._conn
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:  # a new file
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"{self._path}: cannot switch the file to WAL mode "
                               f"(journal_mode is {mode})")
        conn.execute(f"PRAGMA synchronous={sync}")
        # A checkpoint costs fsyncs whatever it copies; at the default (every 1000 pages) they
        # were one fsync in seven of a busy run. Every commit still syncs the WAL, so durability
        # is unchanged; the WAL only grows larger (WAL_CHECKPOINT_PAGES) between checkpoints.
        # The checkpoint runs in a thread on a connection of its own, started after the
        # commit that filled the WAL (`_write`), so commits go on meanwhile (it used to stall
        # the commit that filled the WAL for 40-100 ms). It is started only that often: an
        # earlier background connection that checkpointed continually made every
        # single-intent HTTP request ~40 % slower on this disk. SQLite's own checkpoint stays
        # as a backstop, at twice the size.
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        conn.execute(f"PRAGMA wal_autocheckpoint={_BACKSTOP_BYTES // page_size}")
        version = sqlite_schema_version(conn)
        if version is None:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise JournalError(f"{self._path}: this SQLite file is not an ordergate journal")
            if create:
                apply_sqlite(conn, self._path)
                version = sqlite_schema_version(conn)
        require_current(version, SQLITE_SCHEMA_VERSION, self._path)
        row = conn.execute(_SELECT + " ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return genesis()
        return int(row[0]), str(row[6])

    def _check_file(self) -> None:
        # An unlinked file still accepts writes through the open descriptor; committing to
        # it would lose every record silently, so a vanished or replaced file is a failure.
        try:
            stat = os.stat(self._path)
        except OSError as exc:
            raise JournalError(
                f"{self._path}: journal file is gone ({exc.strerror or exc}): it was deleted or "
                "moved while open; restore it from a backup or replica (a restart will not "
                "start a new journal beside the files it left)") from exc
        if (stat.st_dev, stat.st_ino) != self._identity:
            raise JournalError(f"{self._path}: journal file was replaced while open")

    def check_writable(self) -> None:
        """The file is still the one opened, it and its directory (where SQLite creates its
        WAL and lock files) may be written, the connection is not query-only, and a write
        transaction can begin: begun and rolled back without a change, so nothing is added
        to the chain."""
        with self._lock:
            self._usable()
            self._check_file()
            directory = os.path.dirname(os.path.abspath(self._path))
            for where, what in ((self._path, "journal file"), (directory, "journal directory")):
                if not os.access(where, os.W_OK):
                    raise JournalError(f"{where}: the {what} is not writable")
            conn = self._conn
            try:
                if conn.execute("PRAGMA query_only").fetchone()[0]:
                    raise JournalError(f"{self._path}: the journal connection is read-only "
                                       "(query_only)")
                conn.execute(f"PRAGMA busy_timeout = {PROBE_BUSY_TIMEOUT_MS}")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    # A write that changes nothing: refused on a read-only database, which
                    # BEGIN IMMEDIATE alone does not notice.
                    conn.execute("DELETE FROM journal_records WHERE seq < 0")
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            except sqlite3.Error as exc:
                raise JournalError(f"{self._path}: the journal cannot be written: {exc}") \
                    from exc

    def _write(self, rows: Sequence[RawRow]) -> None:
        self._check_file()
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for start in range(0, len(rows), _INSERT_ROWS):
                chunk = rows[start:start + _INSERT_ROWS]
                conn.execute(_insert_rows(len(chunk)), list(itertools.chain.from_iterable(chunk)))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._roll_back_write()
            raise JournalError(f"{self._path}: journal write of records {rows[0][0]}.."
                               f"{rows[-1][0]} failed: {exc}") from exc
        except BaseException:
            # Interrupted between two statements (KeyboardInterrupt, SystemExit: a signal
            # that arrives while SQLite works is raised once the statement returns). Before
            # COMMIT returned, the transaction is rolled back; after, the records are stored.
            # The chain reads back which (`ChainJournal._settle_interrupted`).
            self._roll_back_write()
            raise
        self._wal_bytes += (_COMMIT_OVERHEAD_BYTES + _ROW_OVERHEAD_BYTES * len(rows)
                            + sum([len(row[4]) for row in rows]))
        checkpointer = self._checkpointer
        if checkpointer is not None and not checkpointer.is_alive():
            # Copy what was committed while it ran, here, with no commit in between, so that
            # the WAL is wholly copied and the next commit starts it over (else it would
            # grow by what each background checkpoint missed, for the whole run).
            self._settle()
            self._finish_checkpoint(conn)
            self._wal_bytes = 0
        elif checkpointer is None and self._wal_bytes >= _CHECKPOINT_BYTES:
            self._start_checkpoint()

    def _start_checkpoint(self) -> None:
        """Copy the WAL into the database file from a thread on a connection of its own:
        sqlite3 releases the GIL while SQLite works, so the copy and its fsyncs (tens of ms
        for 32 MiB, at about one commit in fifty of a busy run) overlap the writer's next
        batches instead of stalling a commit. A passive checkpoint takes no lock a writer
        needs; what is committed meanwhile is copied by `_finish_checkpoint`."""
        self._wal_bytes = 0
        thread = threading.Thread(target=self._checkpoint, name="ordergate-journal-checkpoint",
                                  daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:
            # No thread to be had (a process limit): the batch is committed all the same, and
            # SQLite's own checkpoint, in the commit, keeps the WAL bounded until one starts.
            self._log.warning("journal.checkpoint_thread_not_started", path=self._path,
                              error=str(exc))
            return
        self._checkpointer = thread

    def _checkpoint(self) -> None:
        try:
            conn = self._checkpoint_conn
            if conn is None:
                conn = sqlite3.connect(self._path, isolation_level=None,
                                       check_same_thread=False,
                                       timeout=_BUSY_TIMEOUT_MS / 1000)
                conn.execute(f"PRAGMA synchronous={self._sync}")
                self._checkpoint_conn = conn
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # nothing is lost: the records are durable in the WAL
            self._checkpoint_failure = str(exc)

    def _finish_checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            self._log.warning("journal.checkpoint_failed", path=self._path, error=str(exc))

    def _settle(self) -> None:
        """Wait for a background checkpoint to end."""
        thread = self._checkpointer
        if thread is None:
            return
        thread.join()
        self._checkpointer = None
        if self._checkpoint_failure:
            self._log.warning("journal.checkpoint_failed", path=self._path,
                              error=self._checkpoint_failure)
            self._checkpoint_failure = ""

    def _page(self, start_seq: int, end_seq: int | None, limit: int) -> list[RawRow]:
        try:
            if end_seq is None:
                cursor = self._conn.execute(_SELECT + " WHERE seq >= ? ORDER BY seq LIMIT ?",
                                            (start_seq, limit))
            else:
                cursor = self._conn.execute(
                    _SELECT + " WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                    (start_seq, end_seq, limit))
            return cursor.fetchall()
        except sqlite3.Error as exc:
            raise _read_failed(self._path, exc) from exc

    def _hash_at(self, seq: int) -> str | None:
        row = self._query_one("SELECT hash FROM journal_records WHERE seq = ?", (seq,))
        return None if row is None else str(row[0])

    def _put_snapshot(self, seq: int, chain_hash: str, state: bytes) -> None:
        self._check_file()
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO journal_snapshots (seq, chain_hash, state) VALUES (?, ?, ?) "
                "ON CONFLICT (seq) DO UPDATE SET chain_hash = excluded.chain_hash, "
                "state = excluded.state", (seq, chain_hash, state))
            conn.execute(
                "DELETE FROM journal_snapshots WHERE seq NOT IN "
                "(SELECT seq FROM journal_snapshots ORDER BY seq DESC LIMIT ?)",
                (KEEP_SNAPSHOTS,))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise JournalError(f"{self._path}: snapshot write at seq {seq} failed: {exc}") \
                from exc
        except BaseException:
            # Interrupted (KeyboardInterrupt, SystemExit): left open, the transaction would
            # fail the next write. Stored or not, the snapshot is unattested, so never used.
            self._roll_back_write()
            raise

    def _roll_back_write(self) -> None:
        conn = self._conn
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                self._log.warning("journal.rollback_failed", path=self._path, error=str(exc))

    def _snapshot_index(self) -> list[tuple[int, str, str | None]]:
        try:
            rows = self._conn.execute(
                "SELECT s.seq, s.chain_hash, r.hash FROM journal_snapshots s "
                "LEFT JOIN journal_records r ON r.seq = s.seq ORDER BY s.seq DESC").fetchall()
        except sqlite3.Error as exc:
            raise _read_failed(self._path, exc, "snapshot read failed") from exc
        found = [(int(seq), str(chain), None if stored is None else str(stored))
                 for seq, chain, stored in rows]
        stored_seqs = {seq for seq, _, _ in found}
        for seq, chain in snapfiles.index(self._snapshot_dir):
            if seq not in stored_seqs:  # the same state either way
                found.append((seq, chain, self._hash_at(seq)))
        return sorted(found, reverse=True)

    def _snapshot_state(self, seq: int) -> tuple[bytes, str]:
        row = self._query_one("SELECT state FROM journal_snapshots WHERE seq = ?", (seq,))
        if row is None:
            return snapfiles.read(self._snapshot_dir, seq)
        state = bytes(row[0])
        return state, state_digest(state)

    def _unreadable_snapshots(self) -> list[tuple[int, str]]:
        return snapfiles.unreadable(self._snapshot_dir)

    def _snapshot_location(self, seq: int) -> str:
        if self._query_one("SELECT 1 FROM journal_snapshots WHERE seq = ?", (seq,)) is None:
            return str(snapfiles.path_for(self._snapshot_dir, seq))
        return super()._snapshot_location(seq)

    def _set_aside(self, seq: int) -> str:
        with self._lock:
            in_table = self._query_one("SELECT 1 FROM journal_snapshots WHERE seq = ?",
                                       (seq,)) is not None
        if in_table:  # a row, which no file command removes: the statement is given
            statement = shlex.quote(f"DELETE FROM journal_snapshots WHERE seq = {seq}")
            return (f"restore it, or delete its row: sqlite3 {shlex.quote(self._path)} "
                    f"{statement} (the records are intact: start-up then uses an older "
                    "snapshot or replays from the first record, and nothing is lost)")
        return (f"move {snapfiles.path_for(self._snapshot_dir, seq).name} out of "
                f"{self._snapshot_dir} (the records are intact: start-up then uses an older "
                "snapshot or replays from the first record, and nothing is lost)")

    def write_detached(self, seq: int, chain_hash: str, state: bytes) -> str:
        """A snapshot file beside the journal (`journal.snapfiles`), written without the
        journal's connection, which belongs to the parent process."""
        try:
            self._snapshot_dir.mkdir(exist_ok=True)
            return snapfiles.write(self._snapshot_dir, seq, chain_hash, state)
        except OSError as exc:
            raise JournalError(f"{self._snapshot_dir}: snapshot file at seq {seq} could not "
                               f"be written: {exc}") from exc

    def adopt_detached(self, seq: int, digest: str) -> int | None:
        """Attest the file if its header holds the digest the child computed (reading only
        the header), then prune the oldest files."""
        path = snapfiles.path_for(self._snapshot_dir, seq)
        with self._lock:
            self._usable()
            found = snapfiles.header_digest(self._snapshot_dir, seq)
            if found is None:
                return None
            if found != digest:
                raise JournalError(f"{path}: the snapshot file holds {found}, not the {digest} "
                                   "its writer stored; not attested")
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                return None
            self._attest_locked(seq, digest)
        snapfiles.prune(self._snapshot_dir, KEEP_SNAPSHOTS)
        return size

    def _query_one(self, sql: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        try:
            row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise _read_failed(self._path, exc) from exc
        return row

    def _close_storage(self) -> None:
        try:
            self._settle()
            if self._checkpoint_conn is not None:
                self._checkpoint_conn.close()
            self._conn.close()
        finally:
            self._release_writer_lock()

    def _release_writer_lock(self) -> None:
        if self._writer_lock is not None:
            os.close(self._writer_lock)  # closing the descriptor drops its flock
            self._writer_lock = None


_LEFTOVER_SUFFIXES = ("-wal", "-shm", "-journal", HEAD_SUFFIX, ".manifest.json")
"""Files a journal at `path` writes beside itself as `path` + suffix: SQLite's write-ahead
log, its index and rollback journal, the head file (`journal.headfile`) and the run manifest
(`evidence.manifest.manifest_path`). Its snapshot files are in `snapfiles.directory_for`.
The writer's lock file (`lock_path`) is not among them: it holds nothing of the journal."""


def _leftovers(path: str) -> list[str]:
    """The files beside `path` that a journal there wrote (`_LEFTOVER_SUFFIXES`, snapshot
    files): with no journal file at `path`, what is left of one deleted or moved away."""
    found = [path + suffix for suffix in _LEFTOVER_SUFFIXES if os.path.isfile(path + suffix)]
    snapshots = snapfiles.snapshot_files(snapfiles.directory_for(path))
    if snapshots:
        found.append(f"{snapfiles.directory_for(path)}{os.sep} ({len(snapshots)} snapshot "
                     f"file{'s' if len(snapshots) > 1 else ''})")
    return found


def _refuse_anew(path: str, left: list[str]) -> str:
    """Why no new journal is created at `path`, where another one's files are left."""
    wal = path + "-wal"
    keep = (f" (keep them: {wal} holds that journal's latest records)" if wal in left
            else " (keep them)")
    return (f"{path}: no journal file here, but files of a journal here are left: "
            f"{', '.join(left)}. The journal file was deleted or moved away; a new, empty "
            "journal would forget its positions and decided intents (a retried intent would be "
            f"allowed and sent again), so none is created. Move those files aside{keep}, then "
            "restore the journal file and its snapshot directory from the same backup or "
            "replica, or start a new journal here knowingly")


def _damage(exc: BaseException) -> bool:
    """SQLite finds the file corrupt or not a database, or a stored text field is no longer
    text: what was written cannot be read back."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    name = getattr(exc, "sqlite_errorname", None) or ""
    return (name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB"
            or str(exc).startswith("Could not decode to UTF-8"))


def _read_failed(path: str, exc: sqlite3.Error, what: str = "journal read failed") \
        -> JournalError:
    if _damage(exc):
        return JournalDamaged(f"{path}: {what}: the journal file is damaged: {exc}")
    return JournalError(f"{path}: {what}: {exc}")


def lock_path(path: str) -> str:
    """The file beside a journal whose lock its one writer holds: beside the file itself, its
    symbolic links resolved, so a second writer that names it through a link (or a `..`
    path) takes the same lock. (A hard link is another name the lock cannot see; the lock
    is not taken on the database file itself because closing any descriptor of that file
    drops the POSIX locks SQLite holds on it in this process.)"""
    return os.path.realpath(path) + ".lock"


def _lock_writer(path: str) -> int:
    """Take the journal's writer lock (an exclusive flock on `<journal>.lock`) without waiting,
    or refuse: two writers would each extend the chain from the head they read at start-up
    and the second's writes would fail only later, after it had recovered and acted. The OS
    drops the lock when the holder's descriptor closes, a killed process's too, so no stale
    lock survives a crash. The holder's pid is written into the file for this message."""
    where = lock_path(path)
    try:
        fd = os.open(where, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise JournalError(f"{path}: cannot create the journal's lock file {where}: "
                           f"{exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _lock_holder(fd)
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise JournalError(f"{path}: cannot lock the journal ({where}): "
                               f"{exc.strerror}") from exc
        who = ("this process already has the journal open for writing" if holder == os.getpid()
               else f"another process (pid {holder}) is writing this journal" if holder
               else "another process is writing this journal")
        raise JournalError(f"{path}: {who}; a journal has one writer (status, verify and "
                           "replay may read it meanwhile)") from None
    # The pid is only for the message a second writer gets; the lock is what counts.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _lock_holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@functools.lru_cache(maxsize=_INSERT_ROWS)
def _insert_rows(count: int) -> str:
    """`_INSERT` for `count` rows in one statement."""
    return _INSERT + ", (?, ?, ?, ?, ?, ?, ?)" * (count - 1)
