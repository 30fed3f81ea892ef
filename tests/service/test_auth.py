"""Tokens are stored as hashes, map to roles, and a bad tokens file is named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordergate.service.auth import (
    Role,
    TokenFileError,
    bearer_token,
    hash_token,
    load_tokens,
    new_token,
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    return path


def test_sha256_and_scrypt_hashes_authenticate_only_their_own_token(tmp_path: Path) -> None:
    trader, viewer = new_token(), new_token()
    path = _write(tmp_path, f"""
tokens:
  - name: desk-a
    role: trader
    accounts: [ACC-1]
    hash: "{hash_token(trader)}"
  - name: watcher
    role: viewer
    hash: "{hash_token(viewer, 'scrypt')}"
""")
    store = load_tokens(path)
    found = store.authenticate(trader)
    assert found is not None and found.role is Role.TRADER and found.accounts == {"ACC-1"}
    seen = store.authenticate(viewer)
    assert seen is not None and seen.name == "watcher" and seen.role is Role.VIEWER
    assert store.authenticate(viewer) == seen  # remembered, same answer
    assert store.authenticate(viewer + "x") is None
    assert store.authenticate("") is None


def test_tokens_file_never_holds_the_plain_token(tmp_path: Path) -> None:
    token = new_token()
    for scheme in ("sha256", "scrypt"):
        assert token not in hash_token(token, scheme)
        assert hash_token(token, scheme).startswith(scheme + ":")


@pytest.mark.parametrize(("body", "where"), [
    ("tokens:\n  - name: a\n    role: king\n    hash: sha256:00\n", "tokens[0].role"),
    ("tokens:\n  - name: a\n    role: trader\n    hash: \"sha256:" + "0" * 64 + "\"\n",
     "tokens[0].accounts"),
    ("tokens:\n  - name: a\n    role: viewer\n    hash: md5:abc\n", "tokens[0].hash"),
    ("tokens:\n  - name: a\n    role: viewer\n    hash: \"sha256:" + "0" * 64 + "\"\n    x: 1\n",
     "x"),
    ("tokens: []\n", "no token"),
])
def test_invalid_tokens_file_names_file_and_entry(tmp_path: Path, body: str, where: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(TokenFileError) as info:
        load_tokens(path)
    assert str(path) in str(info.value)
    assert where in str(info.value)


def test_missing_tokens_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot read"):
        load_tokens(tmp_path / "absent.yaml")


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None
