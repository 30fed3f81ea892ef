"""Files and directories given where the command expected others: a directory of real work as
the demo's output, a journal or a text file as the simulated broker's state, an existing file
as an export, a binary file as a tokens file or as intents. Each is refused in one line naming
it (exit 1), before anything is touched, never with a stack trace."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from tests.evidence.support import SMALL_DAY, SMALL_POLICY, invoke, small_journal
from tests.runtime.harness import cli

from ordergate.brokers.config import BrokerConfigError
from ordergate.brokers.sim import SimBroker, SimConfig, SimStateError
from ordergate.cli.demo_cmd import DEMO_MARK, refuse_foreign_out
from ordergate.cli.errors import UserError
from ordergate.cli.eval_cmd import SHOWN_BAD_LINES
from ordergate.service.auth import TokenFileError, load_tokens

WIDE = 400  # one error, one line


def _said(output: str) -> str:
    return " ".join(output.split())  # rich wraps to the terminal


def _contents(directory: Path) -> dict[str, bytes]:
    """Every file under `directory`, by its relative path, with its bytes."""
    return {str(path.relative_to(directory)): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def _events(directory: Path) -> Path:
    path = directory / "events.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in SMALL_DAY))
    return path


# ------------------------------------------------------------------ demo --out


def test_demo_refuses_a_directory_holding_a_real_journal_and_touches_nothing(
        tmp_path: Path) -> None:
    prod = tmp_path / "prod"
    prod.mkdir()
    (prod / "policy.yaml").write_text(SMALL_POLICY)
    events = _events(prod)
    ran = invoke("run", "--quiet", "--policy", str(prod / "policy.yaml"), "--journal",
                 str(prod / "journal.db"), "--snapshot-every", "1", str(events))
    assert ran.code == 0, ran.output
    before = _contents(prod)
    assert "journal.db" in before and "journal.db.head" in before

    result = invoke("demo", "--out", str(prod))

    said = _said(result.output)
    assert result.code == 1, said
    assert f"--out {prod}: holds files the demo did not write" in said
    assert "events.jsonl" in said and "journal.db" in said and "choose another --out" in said
    assert _contents(prod) == before
    assert not (prod / DEMO_MARK).exists()


@pytest.mark.parametrize("out", ["j.db.snapshots", "j.db.snapshots/day", "other.snapshots"])
def test_demo_refuses_an_out_in_a_journal_snapshot_directory(tmp_path: Path,
                                                             out: str) -> None:
    journal = small_journal(tmp_path, SMALL_DAY)
    before = _contents(tmp_path)
    target = tmp_path / out

    result = invoke("demo", "--out", str(target))

    said = _said(result.output)
    assert result.code == 1, said
    assert f"--out {target}: " in said and "is a journal's snapshot directory" in said
    assert _contents(tmp_path) == before
    assert not target.exists()
    assert journal.exists()


def test_demo_out_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")

    result = invoke("demo", "--out", str(afile / "day"))

    assert result.code == 1, result.output
    assert f"--out {afile / 'day'}: cannot create the directory" in _said(result.output)
    assert afile.read_text() == "not a directory\n"


def test_an_earlier_demo_output_is_the_demo_s_until_something_else_is_put_there(
        tmp_path: Path, demo_day: Path) -> None:
    """The demo's own output (copied with its times) is reused; a file added to it, or a
    journal that changed since the demo wrote it (a run went on in it), is not the demo's."""
    out = tmp_path / "demo"
    shutil.copytree(demo_day, out)  # keeps sizes and modification times
    assert (out / DEMO_MARK).exists()
    refuse_foreign_out(out)  # the demo would write over it, as it always did

    (out / "notes.txt").write_text("mine\n")
    with pytest.raises(UserError, match=r"holds files the demo did not write .*\(notes\.txt\)"):
        refuse_foreign_out(out)
    (out / "notes.txt").unlink()
    refuse_foreign_out(out)

    journal = out / "journal.db"
    stamp = journal.stat()
    os.utime(journal, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    with pytest.raises(UserError, match=r"changed since the demo wrote them \(journal\.db\)"):
        refuse_foreign_out(out)


def test_a_demo_stopped_half_way_is_still_the_demo_s(tmp_path: Path) -> None:
    """The mark is written before the demo writes anything: a demo stopped before it could
    record its files' sizes leaves a directory the next demo takes back."""
    from ordergate.cli.demo_cmd import write_mark

    out = tmp_path / "demo"
    out.mkdir()
    write_mark(out, dict.fromkeys(("policy.yaml", "events.jsonl", "journal.db")))
    for name in ("policy.yaml", "events.jsonl", "journal.db", "journal.db-wal"):
        (out / name).write_text("half written\n")
    refuse_foreign_out(out)
    (out / "sim.yaml").write_text("not recorded as being written\n")
    with pytest.raises(UserError, match=r"\(sim\.yaml\)"):
        refuse_foreign_out(out)


# ------------------------------------------------------------------ --broker-state


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return sorted(name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"))


def test_a_broker_state_that_is_no_state_file_is_refused_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    text = tmp_path / "policy.yaml"
    text.write_text(SMALL_POLICY)
    expected = {folder: "it is a directory", text: "it is not an SQLite database",
                tmp_path / "nowhere" / "sim.db": "unable to open database file"}
    for path, problem in expected.items():
        with pytest.raises(SimStateError) as refused:
            SimBroker(SimConfig(state_path=str(path)))
        assert isinstance(refused.value, BrokerConfigError)  # the CLI's config errors
        assert str(refused.value).startswith(
            f"{path}: cannot hold the simulated broker's state: {problem}")
    assert text.read_text() == SMALL_POLICY


def test_a_journal_given_as_the_broker_state_is_refused_and_left_alone(
        tmp_path: Path) -> None:
    journal = small_journal(tmp_path, SMALL_DAY)
    tables = _tables(journal)
    with pytest.raises(SimStateError, match=r": it is an ordergate journal; give the "
                                            r"simulated broker a file of its own"):
        SimBroker(SimConfig(state_path=str(journal)))
    assert _tables(journal) == tables
    assert not any(name.startswith("sim_") for name in tables)

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE prices (symbol TEXT)")
    with pytest.raises(SimStateError, match=r"something else \(tables prices\)"):
        SimBroker(SimConfig(state_path=str(other)))

    state = tmp_path / "state.sim"
    state.touch()  # an empty file is made the simulator's, as before
    SimBroker(SimConfig(state_path=str(state))).close()
    SimBroker(SimConfig(state_path=str(state))).close()
    assert _tables(state) == ["sim_meta", "sim_orders", "sim_pending", "sim_submissions"]


def test_run_with_a_broker_file_whose_sim_state_is_a_directory_says_so_in_one_line(
        tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    broker = tmp_path / "broker.yaml"
    broker.write_text(f"broker:\n  broker: sim\n  execution_mode: paper\n  account: A1\n"
                      f"  sim_state_path: {folder}\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(SMALL_POLICY)

    result = cli("run", "--policy", str(policy), "--journal", str(tmp_path / "j.db"),
                 "--broker", str(broker), str(_events(tmp_path)), columns=WIDE)

    assert result.returncode == 1, result.stderr
    assert (f"error: --broker {broker}: {folder}: cannot hold the simulated broker's state: "
            "it is a directory") in result.stderr
    assert not (tmp_path / "j.db").exists()


# ------------------------------------------------------------------ journal export --out


def test_export_does_not_overwrite_an_existing_file_without_force(tmp_path: Path) -> None:
    journal = small_journal(tmp_path, SMALL_DAY)
    events = tmp_path / "events.jsonl"
    before = events.read_bytes()

    refused = invoke("journal", "export", "--journal", str(journal), "--format", "csv",
                     "--out", str(events))

    said = _said(refused.output)
    assert refused.code == 1, said
    assert f"--out {events}: the file exists; pass --force to overwrite it" in said
    assert events.read_bytes() == before

    forced = invoke("journal", "export", "--journal", str(journal), "--format", "csv",
                    "--out", str(events), "--force")
    assert forced.code == 0, forced.output
    assert events.read_text().startswith("seq,")

    own = invoke("journal", "export", "--journal", str(journal), "--format", "jsonl",
                 "--out", f"{journal}.head", "--force")
    said = _said(own.output)
    assert own.code == 1 and "(--force does not change that)" in said, said


# ------------------------------------------------------------------ serve --tokens


def test_a_tokens_file_that_is_not_utf8_is_named_in_one_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_bytes(b"tokens:\n  - name: \xe9ric\n")
    with pytest.raises(TokenFileError, match=rf"^{tokens}: not UTF-8 text \(byte 0xe9 at "
                                             r"line 2, column 11\)"):
        load_tokens(tokens)
    policy = tmp_path / "policy.yaml"
    policy.write_text(SMALL_POLICY)

    result = cli("serve", "--policy", str(policy), "--journal", str(tmp_path / "j.db"),
                 "--tokens", str(tokens), columns=WIDE)

    assert result.returncode == 1, result.stderr
    assert f"error: {tokens}: not UTF-8 text" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# ------------------------------------------------------------------ eval on what is no text


def test_eval_of_a_journal_or_other_binary_file_is_one_error(tmp_path: Path) -> None:
    journal = small_journal(tmp_path, SMALL_DAY)
    packed = tmp_path / "intents.jsonl.gz"
    packed.write_bytes(gzip.compress((tmp_path / "events.jsonl").read_bytes()))
    nul = tmp_path / "nul.jsonl"
    nul.write_bytes(b'{"a": 1}\n\x00\x00\r\n' * 50)
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes((tmp_path / "events.jsonl").read_text().encode("utf-16"))
    policy = tmp_path / "policy.yaml"
    expected = {journal: "an SQLite database, such as an ordergate journal",
                packed: "a gzip-compressed file; decompress it first",
                nul: "binary data, or text not saved as UTF-8: byte 10 is a NUL",
                utf16: "UTF-16 text; save it as UTF-8"}
    for path, looks in expected.items():
        result = cli("eval", "--policy", str(policy), str(path), columns=WIDE)
        assert result.returncode == 1, result.stderr
        assert result.stdout == ""
        assert result.stderr.strip() == (f"error: {path}: is not JSON Lines (it looks like "
                                         f"{looks}); eval reads intents one JSON object a "
                                         "line, as UTF-8 text")


def test_eval_shows_the_first_bad_lines_and_counts_the_rest(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(SMALL_POLICY)
    intents = tmp_path / "intents.jsonl"
    good = json.dumps(SMALL_DAY[2])
    intents.write_bytes("".join(f"{good}\n" if n == 30 else "{not json\n"
                                for n in range(1, 51)).encode() + b"\xff\rx\n")

    result = cli("eval", "--policy", str(policy), str(intents), columns=WIDE)

    assert result.returncode == 1, result.stderr
    assert [json.loads(line)["intent_id"] for line in result.stdout.splitlines()] == ["i1"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == SHOWN_BAD_LINES + 2
    assert errors[SHOWN_BAD_LINES - 1].startswith(f"error: {intents}: line 20: ")
    assert errors[SHOWN_BAD_LINES] == (f"error: 30 more bad line(s) in {intents} not shown "
                                       f"(the first {SHOWN_BAD_LINES} are)")
    assert errors[-1].startswith(f"error: 50 bad line(s) in {intents}")
    # a CR among bytes that are no UTF-8 text is no line ending gone wrong
    last = tmp_path / "last.jsonl"
    last.write_bytes(b"\xff\rx\n")
    alone = cli("eval", "--policy", str(policy), str(last), columns=WIDE)
    assert "line 1: not UTF-8 text" in alone.stderr
    assert "carriage returns" not in alone.stderr
