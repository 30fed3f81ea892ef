"""`serve` flags given values the gateway cannot use, and a token that is not text given to
`token hash`: each is refused in one line naming it, before anything is opened, never with a
stack trace (a port beyond 65535 or below 0 raised OverflowError from the socket's bind; an
idle interval of 0, below 0 or nan journaled a clock tick at almost every idle poll)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.evidence.support import SMALL_POLICY
from tests.runtime.harness import cli

from ordergate.service.auth import hash_token, new_token

WIDE = 400  # one error, one line


def _said(output: str) -> str:
    return " ".join(output.split())  # rich wraps to the terminal


def _serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`ordergate serve` with a policy, tokens and a new journal that it could serve from."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(SMALL_POLICY)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f'tokens:\n  - name: screen\n    role: viewer\n    hash: '
                      f'"{hash_token(new_token())}"\n')
    return cli("serve", "--policy", str(policy), "--journal", str(tmp_path / "journal.db"),
               "--tokens", str(tokens), *flags, columns=WIDE)


@pytest.mark.parametrize("port", ["70000", "65536", "-1"])
def test_a_port_no_socket_can_bind_is_a_usage_error_naming_it(tmp_path: Path,
                                                              port: str) -> None:
    result = _serve(tmp_path, f"--port={port}")

    said = _said(result.stderr)
    assert result.returncode == 2, said
    assert f"Invalid value for '--port': {port}: expected a TCP port from 0 to 65535" in said
    assert "OverflowError" not in said
    assert not (tmp_path / "journal.db").exists()  # refused before the journal is opened


@pytest.mark.parametrize("interval", ["0", "-1", "nan", "inf", "0.01", "3601"])
def test_a_tick_interval_the_engine_cannot_keep_is_a_usage_error_naming_it(
        tmp_path: Path, interval: str) -> None:
    # a policy file that is not there: the interval is refused before anything is read
    result = cli("serve", "--policy", str(tmp_path / "absent.yaml"), "--journal",
                 str(tmp_path / "journal.db"), f"--tick-interval={interval}", "--port=0",
                 columns=WIDE)

    said = _said(result.stderr)
    assert result.returncode == 2, said
    assert "Invalid value for '--tick-interval': " in said
    assert "expected seconds from 0.1 (how often the engine looks for idle work) to 3600" \
        in said
    assert not (tmp_path / "journal.db").exists()


def _token_hash(stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", "token", "hash"],
                          input=stdin, capture_output=True, check=False,
                          env={**os.environ, "COLUMNS": str(WIDE)})


def test_a_token_that_is_not_utf8_text_is_one_error_naming_stdin() -> None:
    result = _token_hash(b"og_\xff\xfesecret\n")

    said = _said(result.stderr.decode())
    assert result.returncode == 1, said
    assert "Traceback" not in said and "UnicodeDecodeError" not in said
    assert said == ("error: stdin: the token is not UTF-8 text (byte 0xff at column 4); a "
                    "token from `ordergate token new` is plain ASCII"), said  # none of it shown
    assert result.stdout == b""


def test_a_token_on_stdin_is_hashed_as_the_tokens_file_expects() -> None:
    token = new_token()

    result = _token_hash(f"{token}\n".encode())

    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == hash_token(token)
