"""Tokens are stored as hashes, map to roles, and a bad tokens file is named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.runtime.harness import cli

from ordergate.service.auth import (
    TOKENS_ENV,
    TOKENS_FILE_ENV,
    Role,
    TokenFileError,
    bearer_token,
    configured_tokens,
    hash_token,
    load_tokens,
    new_token,
    parse_tokens,
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


@pytest.mark.parametrize("second", ["Alice", " alice", "ALICE ", "\uff41lice", "ali\u200bce",
                                    "al\u00adice"])
def test_operator_names_that_differ_only_by_case_or_form_are_refused(
        tmp_path: Path, second: str) -> None:
    """Token names are the journaled operator ids: the two operators a resume from a drawdown
    halt needs must be two people, not 'alice' and 'Alice'."""
    digest = "sha256:" + "0" * 64
    other = "sha256:" + "1" * 64
    path = _write(tmp_path, "tokens:\n"
                            f"  - name: alice\n    role: operator\n    hash: \"{digest}\"\n"
                            f"  - name: \"{second}\"\n    role: operator\n"
                            f"    hash: \"{other}\"\n")
    with pytest.raises(TokenFileError, match=r"tokens\[1\]\.name: .* is the same operator as "
                                             r"tokens\[0\]\.name 'alice'"):
        load_tokens(path)


def test_names_with_doubled_inner_spaces_are_the_same_operator(tmp_path: Path) -> None:
    digest, other = "sha256:" + "0" * 64, "sha256:" + "1" * 64
    path = _write(tmp_path, "tokens:\n"
                            f"  - name: alice smith\n    role: operator\n    hash: \"{digest}\"\n"
                            f"  - name: alice  smith\n    role: operator\n    hash: \"{other}\"\n")
    with pytest.raises(TokenFileError, match=r"same operator as tokens\[0\]\.name"):
        load_tokens(path)


def test_missing_tokens_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot read"):
        load_tokens(tmp_path / "absent.yaml")


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None


# ---------------------------------------------------------------- tokens from the environment


def _document(trader: str, viewer: str) -> str:
    return (f"tokens:\n  - name: desk-a\n    role: trader\n    accounts: [ACC-1]\n"
            f"    hash: \"{hash_token(trader)}\"\n"
            f"  - name: screen\n    role: viewer\n    hash: \"{hash_token(viewer)}\"\n")


def test_tokens_file_named_by_the_environment_is_loaded(tmp_path: Path) -> None:
    trader, viewer = new_token(), new_token()
    path = _write(tmp_path, _document(trader, viewer))
    store = configured_tokens(None, {TOKENS_FILE_ENV: str(path)})
    assert store is not None and len(store) == 2
    found = store.authenticate(trader)
    assert found is not None and found.name == "desk-a" and found.accounts == {"ACC-1"}
    # an explicit --tokens file wins over the environment
    (tmp_path / "other").mkdir()
    other = _write(tmp_path / "other", _document(new_token(), new_token()))
    explicit = configured_tokens(str(other), {TOKENS_FILE_ENV: str(path)})
    assert explicit is not None and explicit.authenticate(trader) is None


@pytest.mark.parametrize("as_json", [False, True])
def test_tokens_document_in_the_environment_is_loaded(as_json: bool) -> None:
    trader, viewer = new_token(), new_token()
    document = _document(trader, viewer)
    if as_json:
        document = json.dumps({"tokens": [
            {"name": "desk-a", "role": "trader", "accounts": ["ACC-1"],
             "hash": hash_token(trader)},
            {"name": "screen", "role": "viewer", "hash": hash_token(viewer, "scrypt")}]})
    store = configured_tokens(None, {TOKENS_ENV: document})
    assert store is not None
    found = store.authenticate(viewer)
    assert found is not None and found.name == "screen" and found.role is Role.VIEWER
    assert store.authenticate(trader + "x") is None


def test_no_tokens_configured_is_none_and_both_variables_is_an_error(tmp_path: Path) -> None:
    assert configured_tokens(None, {}) is None
    assert configured_tokens(None, {TOKENS_FILE_ENV: "", TOKENS_ENV: "  "}) is None
    path = _write(tmp_path, _document(new_token(), new_token()))
    with pytest.raises(TokenFileError, match="both set"):
        configured_tokens(None, {TOKENS_FILE_ENV: str(path), TOKENS_ENV: "tokens: []"})


@pytest.mark.parametrize(("document", "where"), [
    ("tokens:\n  - name: a\n    role: king\n    hash: sha256:00\n", "tokens[0].role"),
    ("tokens:\n  - name: a\n    role: viewer\n    hash: PLAIN-og_secret\n", "tokens[0].hash"),
    ('{"tokens": [{"name": "a", "role": "viewer", "hash": "sha256:' + "0" * 64
     + '", "extra": 1}]}', "extra"),
    ("tokens: [unclosed\n", "line 2"),
    ("og_PLAIN-secret", "tokens document"),
    ("tokens: []\n", "no token"),
])
def test_invalid_tokens_variable_names_the_variable_and_field(document: str, where: str) -> None:
    with pytest.raises(TokenFileError) as info:
        configured_tokens(None, {TOKENS_ENV: document})
    message = str(info.value)
    assert message.startswith(f"{TOKENS_ENV}: ") and where in message
    assert "secret" not in message  # nothing of the value is repeated


def _serve_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> str:
    """`ordergate serve` in a new interpreter with `env` set and a policy file that does not
    exist: the tokens are read first, so the error says whether they were accepted."""
    for name in (TOKENS_ENV, TOKENS_FILE_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = cli("serve", "--policy", str(tmp_path / "absent-policy.yaml"), "--journal",
                 str(tmp_path / "journal.db"), "--port", "0", columns=400)
    assert result.returncode == 1, result.stdout + result.stderr
    return " ".join((result.stdout + result.stderr).split())


def test_serve_takes_its_tokens_from_either_variable(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    trader = new_token()
    document = _document(trader, new_token())
    path = _write(tmp_path, document)
    for env in ({TOKENS_FILE_ENV: str(path)}, {TOKENS_ENV: document}):
        said = _serve_with(monkeypatch, tmp_path, **env)
        assert "absent-policy.yaml" in said and "--tokens" not in said, said
    missing = _serve_with(monkeypatch, tmp_path)
    assert f"--tokens: required (or set {TOKENS_FILE_ENV}, or {TOKENS_ENV}" in missing


def test_serve_with_a_malformed_tokens_variable_says_where_without_a_stack_trace(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hashed = hash_token(new_token())
    said = _serve_with(monkeypatch, tmp_path, **{
        TOKENS_ENV: f"tokens:\n  - name: ops\n    role: operator\n    hash: \"{hashed}\"\n"
                    "    accounts: [ACC-1]\n"})
    assert f"{TOKENS_ENV}: tokens[0].accounts: only trader tokens have accounts" in said
    assert hashed not in said
    broken = _serve_with(monkeypatch, tmp_path, **{TOKENS_ENV: "tokens: [unclosed"})
    assert f"{TOKENS_ENV}: not valid YAML or JSON" in broken


def test_a_repeated_key_is_named_without_quoting_either_value() -> None:
    document = ("tokens:\n- name: desk\n  role: trader\n  accounts: [ACC-1]\n"
                "  sha256: SECRETHASH1111\n  sha256: SECRETHASH2222\n")
    with pytest.raises(TokenFileError) as refused:
        parse_tokens(document, "$ORDERGATE_TOKENS")
    said = str(refused.value)
    assert "key 'sha256' appears twice" in said and "line 6" in said
    assert "SECRETHASH" not in said
