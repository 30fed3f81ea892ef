"""Journal URLs: which backend, where, and (PostgreSQL) which stream."""

from __future__ import annotations

import enum
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, quote, unquote, unquote_plus, urlsplit, urlunsplit

from ordergate.journal.base import JournalError, redact_url, userinfo_password

DEFAULT_STREAM = "default"


class Backend(enum.StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


@dataclass(frozen=True)
class JournalUrl:
    """A parsed journal URL. `target` is the SQLite file path or the libpq connection URL
    (with ordergate's own query parameters removed); `stream` names the shard (PostgreSQL)."""

    backend: Backend
    target: str
    stream: str
    original: str

    @property
    def redacted(self) -> str:
        return redact_url(self.original)


def parse_journal_url(url: str) -> JournalUrl:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db`, a bare path ending in `.db`,
    or `postgresql://...` / `postgres://...` (optional `?stream=NAME`, default "default";
    every other query parameter, such as `options=-csearch_path=...`, goes to libpq)."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path or path == ":memory:":
            raise JournalError(f"journal URL '{redact_url(url)}': expected a file path "
                               "after 'sqlite:///' (the journal must be durable)")
        return JournalUrl(Backend.SQLITE, path, DEFAULT_STREAM, url)
    if url.startswith(("postgresql://", "postgres://")):
        return _parse_postgres(url)
    if "://" not in url and url.endswith(".db"):
        return JournalUrl(Backend.SQLITE, url, DEFAULT_STREAM, url)
    if "://" not in url and "=" in url:
        # the password (masked) is last: a masked unquoted value takes what follows it
        raise JournalError(
            "journal URL: expected 'postgresql://user@host/dbname' (a password in PGPASSWORD "
            f"or ~/.pgpass), got a keyword connection string: {redact_url(url)}"
        )
    if "://" not in url and url.strip():
        # A bare path names a journal only by its '.db': an events file or a policy given as
        # --journal by mistake is refused by its name, before anything opens it.
        raise JournalError(
            f"journal URL '{redact_url(url)}': a plain path must end in '.db' (or write "
            f"'sqlite:///{redact_url(url)}' to keep this name)"
        )
    raise JournalError(
        f"journal URL '{redact_url(url)}': unknown scheme; expected 'sqlite:///path.db', "
        "a path ending in '.db', or 'postgresql://...'"
    )


def resolved_journal_url(value: str) -> str:
    """The journal URL a command's `--journal` value names, by `parse_journal_url`'s rules
    (every command takes the same values): a bare path ending in '.db' becomes
    `sqlite:///` of its real path (symbolic links resolved, as `ordergate run` always made
    it: the head file and the manifest sit beside that path), a URL stays as written. Raises
    JournalError."""
    location = parse_journal_url(value)
    if location.backend is Backend.SQLITE and "://" not in value:
        return f"sqlite:///{Path(value).resolve()}"
    return value


SQLITE_HEADER = b"SQLite format 3\x00"


def not_a_journal(location: JournalUrl) -> str | None:
    """Why the file a SQLite journal URL names cannot be written as a journal, before a writer
    opens it (and makes its lock file beside it); None when it may be: no file there (a new
    journal), an empty file (one `mktemp` made, or a journal whose creation was cut short,
    taken as a new journal) or an SQLite database (the journal itself tells an ordergate
    journal from another program's database). A PostgreSQL journal has no file: None."""
    if location.backend is not Backend.SQLITE:
        return None
    path = location.target
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path}: cannot open the journal: {exc.strerror or exc}"
    if stat.S_ISDIR(found.st_mode):
        return (f"{path}: is a directory; give the journal's file (a new one is made when none "
                "is there)")
    if not stat.S_ISREG(found.st_mode):
        return f"{path}: not a regular file (a pipe or a device); give the journal's file"
    if found.st_size == 0:
        return None
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"{path}: cannot open the journal: {exc.strerror or exc}"
    if header != SQLITE_HEADER and not _journal_files_beside(path):
        return (f"{path}: this file is not an ordergate journal (not an SQLite database: an "
                "events file or a policy, say, or a journal damaged from its first bytes); it "
                "is left as it is: give the journal's path, or a new one for a new journal")
    # A journal's own files beside it: a journal whose first page is damaged, which the
    # journal itself reports as damaged (a safety stop), as `journal verify` does.
    return None


# What a SQLite journal writes beside itself (`journal.sqlite._LEFTOVER_SUFFIXES`, and the
# snapshot directory of `journal.snapfiles.directory_for`).
_BESIDE = ("-wal", "-shm", "-journal", ".head", ".manifest.json", ".snapshots")


def _journal_files_beside(path: str) -> bool:
    return any(os.path.exists(path + suffix) for suffix in _BESIDE)


def _parse_postgres(url: str) -> JournalUrl:
    userinfo, parts = _split(url)
    stream, kept = _stream_and_rest(parts.query)
    stream = DEFAULT_STREAM if stream is None else stream
    if not stream or len(stream) > 200:
        raise JournalError(f"journal URL '{redact_url(url)}': stream: expected a name of "
                           "1 to 200 characters")
    return JournalUrl(Backend.POSTGRES, _joined(userinfo, parts, kept), stream, url)


def with_stream(url: str, stream: str) -> str:
    """The PostgreSQL journal URL `url` with its stream set to `stream` (a shard's), every
    other part as written."""
    userinfo, parts = _split(url)
    _, kept = _stream_and_rest(parts.query)
    return _joined(userinfo, parts, [*kept, "stream=" + quote(stream, safe="")])


def _split(url: str) -> tuple[str, SplitResult]:
    """The userinfo of a PostgreSQL URL as written (up to its '@'), and the rest split.
    A password may hold '?', '#' or '/' unencoded, which urlsplit would take for the start
    of the query, the fragment or the path: the userinfo (up to the '@' where redact_url
    ends it) is kept as written and only what follows it is split."""
    scheme, _, rest = url.partition("://")
    userinfo = ""
    password = userinfo_password(url, len(scheme) + 3)
    if password is not None:
        userinfo, rest = url[len(scheme) + 3:password[1] + 1], url[password[1] + 1:]
    return userinfo, urlsplit(f"{scheme}://{rest}")


def _stream_and_rest(query: str) -> tuple[str | None, list[str]]:
    """The `stream` parameter, and every other parameter percent-decoded as libpq decodes a
    URL (a '+' is a '+', never a space, as urllib's form parsing would make it) and encoded
    again whole, so a value holding '=' (`options=-csearch_path=x`) reaches libpq as one
    value."""
    stream: str | None = None
    kept: list[str] = []
    for item in query.split("&"):
        if not item:
            continue
        key, _, raw = item.partition("=")
        key = unquote(key)
        if key == "stream":
            # ordergate's own parameter, read as it always was (form decoding: 'a+b' is the
            # stream "a b"), so a journal keeps naming the same stream
            stream = unquote_plus(raw)
        else:
            kept.append(f"{quote(key, safe='')}={quote(unquote(raw), safe='')}")
    return stream, kept


def _joined(userinfo: str, parts: SplitResult, query: list[str]) -> str:
    target = urlunsplit(parts._replace(query="&".join(query)))
    if not parts.netloc:  # `postgresql:///db?host=/socket/dir`: urlunsplit drops the '//'
        target = target.replace(":", "://", 1)
    return target.replace("://", "://" + userinfo, 1)
