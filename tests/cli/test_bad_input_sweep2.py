"""More files and values given where the command expected others: a demo directory written
before the demo marked its output (reused only while it is exactly the demo's), a simulated
broker state that is no state file given to `gateway --broker-state` or in a simulator config
file, and a lease TTL that is no sane number of seconds. Each bad one is refused in one line
naming it, never with a stack trace."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from tests.evidence.support import SMALL_DAY, SMALL_POLICY, invoke, small_journal
from tests.runtime.harness import cli

from ordergate.cli.demo_cmd import DEMO_MARK, refuse_foreign_out
from ordergate.cli.errors import UserError
from ordergate.journal.lease import ShardLease

WIDE = 400  # one error, one line


def _said(output: str) -> str:
    return " ".join(output.split())  # rich wraps to the terminal


def _contents(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def _events(directory: Path) -> Path:
    path = directory / "events.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in SMALL_DAY))
    return path


def _unmarked_demo(demo_day: Path, out: Path) -> Path:
    """`demo_day` as the demo left it before it marked its output: no mark."""
    shutil.copytree(demo_day, out)
    (out / DEMO_MARK).unlink()
    return out


# ------------------------------------------------------------------ demo --out, unmarked


def test_a_demo_output_from_before_the_mark_is_the_demo_s_and_is_reused(
        tmp_path: Path, demo_day: Path) -> None:
    out = _unmarked_demo(demo_day, tmp_path / "ordergate-demo")
    assert {"policy.yaml", "sim.yaml", "events.jsonl", "journal.db"} <= set(_contents(out))
    refuse_foreign_out(out)

    result = invoke("demo", "--out", str(out))

    assert result.code == 0, result.output
    assert (out / DEMO_MARK).exists()  # marked as the demo's from now on
    assert (out / "events.jsonl").read_bytes() == (demo_day / "events.jsonl").read_bytes()


@pytest.mark.parametrize(("change", "named"), [
    ("policy", "policy.yaml is not what the demo writes"),
    ("sim", "sim.yaml is not what the demo writes"),
    ("events", "events.jsonl is not what the demo writes"),
    ("extra", "(notes.txt, events.jsonl"),
    ("no sim", "sim.yaml is missing"),
])
def test_an_unmarked_directory_unlike_the_demo_s_output_is_refused_and_left_alone(
        tmp_path: Path, demo_day: Path, change: str, named: str) -> None:
    out = _unmarked_demo(demo_day, tmp_path / "ordergate-demo")
    if change == "policy":
        with (out / "policy.yaml").open("a") as policy:
            policy.write("# my own limits\n")
    elif change == "sim":
        (out / "sim.yaml").write_text((out / "sim.yaml").read_text().replace("seed: 7",
                                                                              "seed: 8"))
    elif change == "events":
        events = (out / "events.jsonl").read_bytes()
        (out / "events.jsonl").write_bytes(events[:-2] + b" \n")  # same size, one byte off
    elif change == "extra":
        (out / "notes.txt").write_text("mine\n")
    else:
        (out / "sim.yaml").unlink()
    before = _contents(out)

    with pytest.raises(UserError, match=r"holds files the demo did not write \("):
        refuse_foreign_out(out)
    result = invoke("demo", "--out", str(out))

    said = _said(result.output)
    assert result.code == 1, said
    assert f"--out {out}: holds files the demo did not write (" in said
    assert named in said and "choose another --out" in said
    assert _contents(out) == before
    assert not (out / DEMO_MARK).exists()


# ------------------------------------------------------------------ a state that is no state


def test_gateway_broker_state_that_is_a_directory_is_one_line(
        postgres_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    policy = tmp_path / "policy.yaml"
    policy.write_text(SMALL_POLICY)

    result = cli("gateway", str(_events(tmp_path)), "--policy", str(policy), "--journal",
                 postgres_url, "--shard", "one", "--broker-state", str(folder), columns=WIDE)

    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        f"error: --broker-state: {folder}: cannot hold the simulated broker's state: it is a "
        "directory; give it a file (a new one is made when none is there)")
    assert list(folder.iterdir()) == []


def test_gateway_with_a_simulator_file_whose_state_is_a_journal_is_one_line(
        tmp_path: Path) -> None:
    """The simulator file's broker is built (by `broker_spec.broker_from_spec`) before any
    lease is asked for: the journal's URL is never reached (a closed port)."""
    (tmp_path / "real").mkdir()
    journal = small_journal(tmp_path / "real", SMALL_DAY)
    before = journal.read_bytes()
    sim = tmp_path / "sim.yaml"
    sim.write_text(f"sim:\n  fill_model: immediate\n  state_path: {journal}\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(SMALL_POLICY)

    result = cli("gateway", str(_events(tmp_path)), "--policy", str(policy), "--journal",
                 "postgresql://og@127.0.0.1:9/none", "--shard", "one", "--broker", str(sim),
                 columns=WIDE)

    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        f"error: --broker {sim}: {journal}: cannot hold the simulated broker's state: it is "
        "an ordergate journal; give the simulated broker a file of its own (a new one is made "
        "when none is there)")
    assert journal.read_bytes() == before


# ------------------------------------------------------------------ gateway --lease-ttl


@pytest.mark.parametrize("ttl", ["inf", "1e309", "nan", "0", "-5", "1e300", "86401"])
def test_a_lease_ttl_that_is_no_sane_number_of_seconds_is_a_usage_error(
        tmp_path: Path, ttl: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(SMALL_POLICY)

    # before anything else: the journal is never reached (a closed port)
    result = cli("gateway", str(_events(tmp_path)), "--policy", str(policy), "--journal",
                 "postgresql://og@127.0.0.1:9/none", "--shard", "one", "--wait", "0",
                 f"--lease-ttl={ttl}", columns=WIDE)

    said = _said(result.stderr)
    assert result.returncode == 2, said
    assert "Invalid value for '--lease-ttl': " in said
    assert "expected seconds from 1 to 86400 (one day)" in said
    assert "ERROR" not in said and "integer range" not in said


@pytest.mark.parametrize("ttl", [math.inf, math.nan, 0.0, -1.0, 86_401.0])
def test_a_shard_lease_refuses_a_ttl_it_cannot_hold(ttl: float) -> None:
    with pytest.raises(ValueError, match=r"^lease ttl_s: expected a number of seconds above 0 "
                                         r"and at most 86400 \(one day\)"):
        ShardLease("postgresql://og@127.0.0.1:9/none", ttl_s=ttl)
    assert ShardLease("postgresql://og@127.0.0.1:9/none", ttl_s=86_400.0).stream
