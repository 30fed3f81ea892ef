"""Journal URLs: which backend, where, and (PostgreSQL) which stream."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

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
    raise JournalError(
        f"journal URL '{redact_url(url)}': unknown scheme; expected 'sqlite:///path.db', "
        "a path ending in '.db', or 'postgresql://...'"
    )


def _parse_postgres(url: str) -> JournalUrl:
    # A password may hold '?', '#' or '/' unencoded, which urlsplit would take for the start
    # of the query, the fragment or the path: the userinfo (up to the '@' where redact_url
    # ends it) is kept as written and only what follows it is split.
    scheme, _, rest = url.partition("://")
    userinfo = ""
    password = userinfo_password(url, len(scheme) + 3)
    if password is not None:
        userinfo, rest = url[len(scheme) + 3:password[1] + 1], url[password[1] + 1:]
    parts = urlsplit(f"{scheme}://{rest}")
    stream = DEFAULT_STREAM
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "stream":
            stream = value
        else:
            kept.append((key, value))
    if not stream or len(stream) > 200:
        raise JournalError(f"journal URL '{redact_url(url)}': stream: expected a name of "
                           "1 to 200 characters")
    target = urlunsplit(parts._replace(query=urlencode(kept, quote_via=quote)))
    if not parts.netloc:  # `postgresql:///db?host=/socket/dir`: urlunsplit drops the '//'
        target = target.replace(":", "://", 1)
    target = target.replace("://", "://" + userinfo, 1)
    return JournalUrl(Backend.POSTGRES, target, stream, url)
