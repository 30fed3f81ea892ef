"""Who is calling: bearer tokens, stored only as hashes, each with a role.

Roles (the external contract): `trader` submits intents for the accounts listed on its token,
`operator` changes modes and policies (and reads), `viewer` reads, `feeder` posts market data
(a market-data process needs no other power; an operator may post market data too). The tokens
document is YAML (or JSON), in a file (`--tokens`, or the file named by $ORDERGATE_TOKENS_FILE)
or given whole in $ORDERGATE_TOKENS (a container or a secret store hands it over without a
file):

    tokens:
      - name: desk-a            # the identity journaled with every action of this token
        role: trader
        accounts: [ACC-1, ACC-2]
        hash: "sha256:9f86d0..."  # or "scrypt:16384:8:1:<salt hex>:<key hex>"
        requests_per_second: 2000   # optional per-token rate limit (default below)
        burst: 4000

Hashes at rest: `sha256:` suits the long random tokens `ordergate token new` makes (a 256-bit
random secret cannot be guessed from its digest); `scrypt:` suits a human-chosen secret. A
scrypt check costs tens of milliseconds, so a successful one is remembered in memory, keyed by
the token's SHA-256 digest, and failures are remembered too so a flood of bad tokens cannot burn
the CPU. The plain token is never stored, logged or echoed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import re
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import YAMLError

from ordergate.model.values import same_person_key

TOKENS_FILE_ENV = "ORDERGATE_TOKENS_FILE"
TOKENS_ENV = "ORDERGATE_TOKENS"
DEFAULT_REQUESTS_PER_SECOND = 2000.0
DEFAULT_BURST = 4000.0
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 16384, 8, 1
_SCRYPT_CACHE_SIZE = 1024
# ruamel's words for a repeated key: 'found duplicate key "token" with value ...'
_DUPLICATE_KEY = re.compile(r'found duplicate key "([^"]{1,64})"')


class Role(enum.StrEnum):
    TRADER = "trader"
    OPERATOR = "operator"
    VIEWER = "viewer"
    FEEDER = "feeder"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated caller. `name` is what the journal records as the operator/actor."""

    name: str
    role: Role
    accounts: frozenset[str] = frozenset()
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    burst: float = DEFAULT_BURST

    def can_read(self) -> bool:
        return self.role in (Role.VIEWER, Role.OPERATOR)

    def can_operate(self) -> bool:
        return self.role is Role.OPERATOR

    def can_trade(self, account: str) -> bool:
        return self.role is Role.TRADER and account in self.accounts


class TokenFileError(ValueError):
    """The tokens file (or $ORDERGATE_TOKENS) is unreadable or invalid; the message names the
    file (or the variable) and the entry, never a token or a hash."""


class _TokenEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    role: Role
    hash: str
    accounts: list[str] = []
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    burst: float = DEFAULT_BURST


class _TokenFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tokens: list[_TokenEntry]


# ---------------------------------------------------------------- hashing


def new_token() -> str:
    """A fresh random bearer token (256 bits, URL-safe)."""
    return "og_" + secrets.token_urlsafe(32)


def hash_token(token: str, scheme: str = "sha256") -> str:
    """The at-rest form of a token for the tokens file."""
    if scheme == "sha256":
        return "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    if scheme == "scrypt":
        salt = secrets.token_bytes(16)
        key = hashlib.scrypt(token.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P,
                             maxmem=64 * 1024 * 1024)
        return f"scrypt:{_SCRYPT_N}:{_SCRYPT_R}:{_SCRYPT_P}:{salt.hex()}:{key.hex()}"
    raise ValueError(f"scheme: expected 'sha256' or 'scrypt', got '{scheme}'")


class _ScryptHash(msgspec.Struct, frozen=True):
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def matches(self, token: str) -> bool:
        candidate = hashlib.scrypt(token.encode(), salt=self.salt, n=self.n, r=self.r, p=self.p,
                                   maxmem=256 * 1024 * 1024, dklen=len(self.key))
        return hmac.compare_digest(candidate, self.key)


def _parse_hash(where: str, text: str) -> str | _ScryptHash:
    """A sha256 digest (hex) or a parsed scrypt hash; the error names the entry."""
    scheme, _, rest = text.partition(":")
    if scheme == "sha256":
        if len(rest) != 64 or any(c not in "0123456789abcdef" for c in rest):
            raise TokenFileError(f"{where}.hash: expected 'sha256:' and 64 lowercase hex digits")
        return rest
    if scheme == "scrypt":
        parts = rest.split(":")
        try:
            n, r, p = (int(v) for v in parts[:3])
            salt, key = bytes.fromhex(parts[3]), bytes.fromhex(parts[4])
        except (ValueError, IndexError):
            raise TokenFileError(
                f"{where}.hash: expected 'scrypt:N:r:p:<salt hex>:<key hex>'") from None
        if len(parts) != 5 or n < 2 or n & (n - 1) or r < 1 or p < 1 or not salt or not key:
            raise TokenFileError(f"{where}.hash: invalid scrypt parameters")
        return _ScryptHash(n, r, p, salt, key)
    # The value is not echoed: a plain token put here by mistake must not reach a log.
    raise TokenFileError(f"{where}.hash: unknown scheme, expected 'sha256:...' or 'scrypt:...'")


# ---------------------------------------------------------------- the token store


class TokenStore:
    """Maps a presented bearer token to its Principal, or None."""

    def __init__(self, entries: list[tuple[str | _ScryptHash, Principal]]) -> None:
        self._by_sha256: dict[str, Principal] = {}
        self._scrypt: list[tuple[_ScryptHash, Principal]] = []
        for hashed, principal in entries:
            if isinstance(hashed, str):
                self._by_sha256[hashed] = principal
            else:
                self._scrypt.append((hashed, principal))
        self._scrypt_seen: OrderedDict[str, Principal | None] = OrderedDict()

    @classmethod
    def from_tokens(cls, tokens: dict[str, Principal]) -> TokenStore:
        """Build a store from plain tokens (for tests and embedding; files hold hashes)."""
        return cls([(hashlib.sha256(token.encode()).hexdigest(), principal)
                    for token, principal in tokens.items()])

    def __len__(self) -> int:
        return len(self._by_sha256) + len(self._scrypt)

    def authenticate(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        principal = self._by_sha256.get(digest)
        if principal is not None or not self._scrypt:
            return principal
        if digest in self._scrypt_seen:
            self._scrypt_seen.move_to_end(digest)
            return self._scrypt_seen[digest]
        found = next((p for hashed, p in self._scrypt if hashed.matches(token)), None)
        self._scrypt_seen[digest] = found
        if len(self._scrypt_seen) > _SCRYPT_CACHE_SIZE:
            self._scrypt_seen.popitem(last=False)
        return found


def load_tokens(path: str | os.PathLike[str]) -> TokenStore:
    """Read a tokens file. Errors name the file and the entry (`tokens[2].role`)."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise TokenFileError(f"{file}: cannot read the tokens file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise TokenFileError(
            f"{file}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, column "
            f"{column}); a tokens file is YAML or JSON text, as `ordergate token new` prints "
            "it") from None
    return parse_tokens(text, str(file))


def parse_tokens(text: str, source: str) -> TokenStore:
    """A tokens document (YAML or JSON), validated strictly. `source` (a file name, or
    `$ORDERGATE_TOKENS`) starts every error, which then names the entry and field; no error
    quotes the document (its hashes stay out of logs)."""
    try:
        raw: Any = YAML(typ="safe").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        if isinstance(exc, DuplicateKeyError):
            # ruamel quotes both values, and a token file's values are token hashes
            key = _DUPLICATE_KEY.match(problem)
            problem = (f"key '{key.group(1)}' appears twice in one mapping" if key
                       else "a key appears twice in one mapping")
        raise TokenFileError(f"{source}: not valid YAML or JSON{at}: {problem}") from None
    if not isinstance(raw, dict):
        raise TokenFileError(f"{source}: expected a tokens document, a mapping with a 'tokens' "
                             "list (as `ordergate token new` prints), not a single value")
    try:
        parsed = msgspec.convert(raw, _TokenFile)
    except msgspec.ValidationError as exc:
        raise TokenFileError(f"{source}: {exc}") from None
    entries: list[tuple[str | _ScryptHash, Principal]] = []
    names: dict[str, int] = {}
    for index, entry in enumerate(parsed.tokens):
        where = f"{source}: tokens[{index}]"
        if not entry.name.strip():
            raise TokenFileError(f"{where}.name: must not be empty")
        # Names are the journaled operator ids (two different operators resume from a
        # drawdown halt): two that a person reads as one name are one operator.
        same = same_person_key(entry.name)
        if same in names:
            earlier = names[same]
            raise TokenFileError(
                f"{where}.name: '{entry.name}' is the same operator as tokens[{earlier}].name "
                f"'{parsed.tokens[earlier].name}' (names are compared ignoring case, spacing, "
                "invisible characters and Unicode forms)")
        names[same] = index
        if entry.role is Role.TRADER and not entry.accounts:
            raise TokenFileError(f"{where}.accounts: a trader token must list its accounts")
        if entry.role is not Role.TRADER and entry.accounts:
            raise TokenFileError(f"{where}.accounts: only trader tokens have accounts")
        if entry.requests_per_second <= 0 or entry.burst < 1:
            raise TokenFileError(
                f"{where}: requests_per_second must be > 0 and burst >= 1")
        entries.append((_parse_hash(where, entry.hash), Principal(
            name=entry.name, role=entry.role, accounts=frozenset(entry.accounts),
            requests_per_second=entry.requests_per_second, burst=entry.burst,
        )))
    if not entries:
        raise TokenFileError(f"{source}: tokens: the document lists no token")
    return TokenStore(entries)


def configured_tokens(explicit: str | None,
                      environ: Mapping[str, str] | None = None) -> TokenStore | None:
    """The tokens to serve with: the explicit file (`--tokens`), else the file named by
    $ORDERGATE_TOKENS_FILE, else the document in $ORDERGATE_TOKENS; None when none is given.
    Both variables set (and no explicit file) is an error: which one counts would be a guess."""
    env = os.environ if environ is None else environ
    if explicit:
        return load_tokens(explicit)
    path = env.get(TOKENS_FILE_ENV, "")
    inline = env.get(TOKENS_ENV, "")
    if path and inline.strip():
        raise TokenFileError(f"{TOKENS_FILE_ENV} and {TOKENS_ENV} are both set: set one of "
                             "them (or pass --tokens)")
    if path:
        return load_tokens(path)
    if inline.strip():
        return parse_tokens(inline, TOKENS_ENV)
    return None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
