"""A password is never shown, however the PostgreSQL connection is written: in a URL
(`user:secret@host`, `?password=`, `?sslpassword=`) or in a libpq keyword connection string
(`password=secret`, `password = 'a b'`). A keyword string is refused as a journal URL with one
line that says what to write instead."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ordergate.cli import main
from ordergate.journal import JournalError, redact_url
from ordergate.journal.lease import ShardLease
from ordergate.journal.urls import parse_journal_url


@pytest.mark.parametrize(("text", "redacted"), [
    ("host=127.0.0.1 dbname=test password=hunter2",
     "host=127.0.0.1 dbname=test password=***"),
    ("password=hunter2 host=127.0.0.1", "password=*** host=127.0.0.1"),
    ("host=h password='a b' dbname=test", "host=h password=*** dbname=test"),
    ("host=h password = 'it\\'s a \\\\ secret' user=u", "host=h password = *** user=u"),
    ("host=h password=hun\\ ter2 user=u", "host=h password=*** user=u"),
    ("host=h password='never closed secret", "host=h password=***"),
    ("host=h PASSWORD=hunter2", "host=h PASSWORD=***"),
    ("host=h sslpassword=hunter2 sslkey=k", "host=h sslpassword=*** sslkey=k"),
    ("host=h\tpassword=hunter2\tdbname=test", "host=h\tpassword=***\tdbname=test"),
    ("postgresql://u:hunter2@h:5/db?x=1", "postgresql://u:***@h:5/db?x=1"),
    ("postgresql://u@h/db?password=hunter2&a=1", "postgresql://u@h/db?password=***&a=1"),
    ("postgresql://u@h/db?a=1&PASSWORD=hunter2", "postgresql://u@h/db?a=1&PASSWORD=***"),
    # libpq reads a '#' in a query value as part of it: there is no fragment to keep
    ("postgresql://u@h/db?sslpassword=hunter2#x", "postgresql://u@h/db?sslpassword=***"),
    ("postgresql://u@h/db?password=hun#ter2&a=1", "postgresql://u@h/db?password=***&a=1"),
    # a '#', '?', '/' or '@' written unencoded in a URL's password is part of it
    ("postgresql://postgres:pa#ssWORD@127.0.0.1:5432/test",
     "postgresql://postgres:***@127.0.0.1:5432/test"),
    ("postgresql://u:hun?ter2@h/db?x=1", "postgresql://u:***@h/db?x=1"),
    ("postgresql://u:hun/ter2@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:hun@ter2@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:hun ter2@h/db", "postgresql://u:***@h/db"),
    ("journal 'postgresql://u:hun#ter2@h/db': cannot connect",
     "journal 'postgresql://u:***@h/db': cannot connect"),
    # every password of a (malformed) multi-host URL; a well-formed one keeps its hosts
    ("postgresql://u:sec@h1,u2:sec2@h2/db", "postgresql://u:***@h2/db"),
    ("postgresql://u:hunter2@h1:5432,h2:5433/db?stream=a",
     "postgresql://u:***@h1:5432,h2:5433/db?stream=a"),
    ("postgresql://me@corp:hunter2@h/db", "postgresql://me@corp:***@h/db"),
    ("redis://:hunter2@r:6379/0", "redis://:***@r:6379/0"),
    ("postgresql://u:hun ter2@h", "postgresql://u:***@h"),
    ("postgresql://u:hun?ter2@h", "postgresql://u:***@h"),
    ("postgresql://u:hun@ter2@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
    # an '@' in the query or in the text after the URL ends no userinfo
    ("postgresql://u:hunter2@h/db?user=ops@corp", "postgresql://u:***@h/db?user=ops@corp"),
    ("postgresql://127.0.0.1:5433/test?user=ops@corp",
     "postgresql://127.0.0.1:5433/test?user=ops@corp"),
    ("postgresql://[::1]:5432/db?user=ops@corp", "postgresql://[::1]:5432/db?user=ops@corp"),
    ("postgresql://u@h:5432/db?application_name=desk@ny",
     "postgresql://u@h:5432/db?application_name=desk@ny"),
    ("postgresql://ops%40corp@127.0.0.1:5432/test: cannot connect to the journal database: "
     'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  role '
     '"ops@corp" does not exist',
     "postgresql://ops%40corp@127.0.0.1:5432/test: cannot connect to the journal database: "
     'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  role '
     '"ops@corp" does not exist'),
    ("journal 'postgresql://u@db1:5432/og': cannot connect; ask dba@corp.example",
     "journal 'postgresql://u@db1:5432/og': cannot connect; ask dba@corp.example"),
    # a query password runs to the next parameter or the end of the URL, spaces and all
    ("postgresql://u@h/db?password=sec ret", "postgresql://u@h/db?password=***"),
    ("postgresql://u@h/db?password=sec ret&a=1", "postgresql://u@h/db?password=***&a=1"),
    ("journal 'postgresql://u@h/db?password=sec ret': cannot connect",
     "journal 'postgresql://u@h/db?password=***': cannot connect"),
    ("postgresql://u@h/db?password=***: cannot connect",
     "postgresql://u@h/db?password=***: cannot connect"),
    # no password: unchanged
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("postgresql://u@h:5432/db?x=1", "postgresql://u@h:5432/db?x=1"),
    ("postgresql://h:5432/db", "postgresql://h:5432/db"),
    ("postgresql:///db?host=/var/run/postgresql", "postgresql:///db?host=/var/run/postgresql"),
    ("postgres://h/db", "postgres://h/db"),
    ("host=h dbname=test", "host=h dbname=test"),
    ("host=h passwordless=yes", "host=h passwordless=yes"),
    ("host=h mypassword=visible", "host=h mypassword=visible"),
])
def test_a_password_in_a_url_or_keyword_string_is_masked(text: str, redacted: str) -> None:
    assert redact_url(text) == redacted
    assert redact_url(redacted) == redacted  # masking twice changes nothing


def test_a_password_in_a_message_that_quotes_a_keyword_string_is_masked() -> None:
    message = "journal 'host=h password=hunter2': cannot connect"
    assert "hunter2" not in redact_url(message)
    assert redact_url(message).startswith("journal 'host=h password=***")


@pytest.mark.parametrize("dsn", ["host=127.0.0.1 dbname=test password=hunter2",
                                 "host=127.0.0.1 password='hun ter2' dbname=test"])
def test_a_keyword_string_is_refused_as_a_journal_url_without_its_password(dsn: str) -> None:
    with pytest.raises(JournalError) as caught:
        parse_journal_url(dsn)
    message = str(caught.value)
    assert "hunter2" not in message and "hun ter2" not in message
    assert "keyword connection string" in message
    assert "postgresql://user@host/dbname" in message


KEYWORD_DSNS = ["host=127.0.0.1 dbname=test password=hunter2",
                "host=127.0.0.1 dbname=test password='hunter2 and more'"]


@pytest.mark.parametrize("dsn", KEYWORD_DSNS)
@pytest.mark.parametrize("command", [
    ["db", "upgrade"],
    ["journal", "verify"],
    ["status"],
], ids=" ".join)
def test_the_cli_never_prints_a_keyword_string_password(
        command: list[str], dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # a command that took the string for a file path writes here
    monkeypatch.setattr(sys, "argv", ["ordergate", *command, "--journal", dsn])
    with pytest.raises(SystemExit) as stopped:
        main.main()
    assert stopped.value.code == 1
    captured = capsys.readouterr()
    said = captured.err + captured.out
    assert "hunter2" not in said
    assert "Traceback" not in said
    assert "password=***" in " ".join(said.split())


@pytest.mark.parametrize("dsn", KEYWORD_DSNS)
def test_run_refuses_a_keyword_string_instead_of_naming_a_sqlite_file_after_it(
        dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [
        "ordergate", "run", "--policy", str(examples / "policy.yaml"), "--journal", dsn,
        str(examples / "intents.jsonl")])
    with pytest.raises(SystemExit) as stopped:
        main.main()
    assert stopped.value.code == 1
    captured = capsys.readouterr()
    said = captured.err + captured.out
    assert "hunter2" not in said and "Traceback" not in said
    assert "postgresql://" in said
    assert list(tmp_path.iterdir()) == []  # no journal file named after the string


@pytest.mark.postgres
def test_journal_head_never_prints_a_url_password_holding_a_hash(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    password = "pa#ssWORD"
    url = postgres_url.replace("postgres@", f"postgres:{password}@", 1)
    monkeypatch.setattr(sys, "argv", ["ordergate", "journal", "head", "--journal", url])
    with pytest.raises(SystemExit) as stopped:
        main.main()
    assert stopped.value.code == 1  # a fresh schema: no journal to print the head of
    captured = capsys.readouterr()
    said = " ".join((captured.err + captured.out).split())
    assert "postgres:***@127.0.0.1" in said
    assert "pa#" not in said and "ssWORD" not in said and "Traceback" not in said


def cli_says(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             *argv: str) -> tuple[int | str | None, str]:
    """The exit code and what the CLI printed, its line wrapping undone."""
    monkeypatch.setattr(sys, "argv", ["ordergate", *argv])
    with pytest.raises(SystemExit) as stopped:
        main.main()
    captured = capsys.readouterr()
    return stopped.value.code, " ".join((captured.err + captured.out).split())


@pytest.mark.postgres
@pytest.mark.parametrize("shown", [
    "postgresql://ops%40corp@127.0.0.1:5432/test?options=-csearch_path%3Dog_none",
    "postgresql://127.0.0.1:5432/test?options=-csearch_path%3Dog_none&user=ops@corp",
], ids=["user-in-userinfo", "user-in-query"])
def test_a_refused_connection_says_why_and_names_the_url_once(
        shown: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, said = cli_says(monkeypatch, capsys, "journal", "verify", "--journal", shown)
    assert code == 1, said
    assert f"{shown}: cannot connect to the journal database" in said
    assert 'role "ops@corp" does not exist' in said
    assert said.count("postgresql://") == 1 and "***" not in said


@pytest.mark.postgres
def test_a_query_password_with_a_space_is_masked_whole(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = postgres_url.replace("postgres@", "og_no_such_role@", 1) + "&password=sec retQk9"
    code, said = cli_says(monkeypatch, capsys, "journal", "head", "--journal", url)
    assert code == 1, said
    assert "&password=***: cannot connect to the journal database" in said
    assert "retQk9" not in said and "sec" not in said
    assert 'role "og_no_such_role" does not exist' in said


@pytest.mark.postgres
@pytest.mark.parametrize(("password", "pieces"), [
    ("pa%zzQk9", ("zzQk9", "pa%")),  # invalid percent-encoded token: "pa%zzQk9"
    ("sec retQk9", ("retQk9", "sec ")),  # unexpected spaces found in "sec retQk9"
    ("pa@ssQk9", ("ssQk9",)),  # the tail taken for a host: 'ssQk9@127.0.0.1'
])
def test_the_drivers_message_never_repeats_a_piece_of_the_password(
        password: str, pieces: tuple[str, ...], postgres_url: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url = postgres_url.replace("postgres@", f"og_no_such_role:{password}@", 1)
    code, said = cli_says(monkeypatch, capsys, "journal", "verify", "--journal", url)
    assert code == 1, said
    assert "og_no_such_role:***@127.0.0.1:5432/test" in said
    assert "cannot connect to the journal database" in said
    for piece in pieces:
        assert piece not in said
    assert "percent-encoded" in said  # what to fix instead of the driver's words


@pytest.mark.postgres
def test_a_password_holding_a_question_mark_reaches_the_server_as_written(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = postgres_url.replace("postgres@", "og_no_such_role:pa?ssWORD@", 1)
    code, said = cli_says(monkeypatch, capsys, "journal", "verify", "--journal", url)
    assert code == 1, said
    assert 'role "og_no_such_role" does not exist' in said  # the URL was read as written
    assert "ssWORD" not in said and "pa?" not in said


@pytest.mark.postgres
@pytest.mark.parametrize("password", ["Strategy1", "Xy7.0q", "_such_2"])
def test_a_password_sharing_letters_with_the_role_or_host_keeps_the_drivers_reason(
        password: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # "ate" of "Strategy1" is in "ordergate"-like role names, "7.0" in 127.0.0.1: only the
    # password, or a piece a misread URL cuts off it, hides the driver's words
    url = postgres_url.replace("postgres@", f"og_no_such_role:{password}@", 1)
    code, said = cli_says(monkeypatch, capsys, "journal", "verify", "--journal", url)
    assert code == 1, said
    assert 'role "og_no_such_role" does not exist' in said
    assert password not in said.replace("og_no_such_role", "")


MALFORMED_PASSWORDS = [
    ("PGPASSLEAK%zz3h4Xy", ("PGPASSLEAK", "zz3h4Xy")),  # invalid percent-encoded token
    ("PG@LEAK3h4Xy", ("LEAK3h4Xy",)),  # the tail taken for a host: 'LEAK3h4Xy@127.0.0.1'
]


@pytest.mark.parametrize(("password", "pieces"), MALFORMED_PASSWORDS, ids=["percent", "at"])
def test_db_upgrade_never_repeats_the_drivers_words_about_the_password(
        password: str, pieces: tuple[str, ...], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://postgres:{password}@127.0.0.1:5432/test?stream=x"
    code, said = cli_says(monkeypatch, capsys, "db", "upgrade", "--journal", url)
    assert code == 1, said
    assert "schema upgrade failed" in said and "percent-encoded" in said
    for piece in pieces:
        assert piece not in said


@pytest.mark.parametrize(("password", "pieces"), MALFORMED_PASSWORDS, ids=["percent", "at"])
def test_a_shard_lease_never_repeats_the_drivers_words_about_the_password(
        password: str, pieces: tuple[str, ...]) -> None:
    lease = ShardLease(f"postgresql://postgres:{password}@127.0.0.1:5432/test?stream=x")
    with pytest.raises(JournalError) as caught:
        lease.acquire(timeout_s=0)
    said = str(caught.value)
    assert "cannot connect for the shard lease" in said and "percent-encoded" in said
    for piece in pieces:
        assert piece not in said
