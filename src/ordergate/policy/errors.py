"""How a policy fails to load: one exception whose message says where and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence

PathPart = str | int
Path = tuple[PathPart, ...]


def format_path(path: Sequence[PathPart]) -> str:
    """`('accounts', 'ACC1', 'rate_account', 'max')` -> `accounts.ACC1.rate_account.max`;
    list positions render as `[i]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(document)"


class PolicyError(Exception):
    """A policy that cannot be used. The message reads
    `policy.yaml:14:22: defaults.max_order_value: expected a positive decimal, got '-5'`;
    the parts are also kept as attributes for programs."""

    def __init__(self, source: str, message: str, *, path: Sequence[PathPart] = (),
                 line: int | None = None, column: int | None = None) -> None:
        self.source = source
        self.path: Path = tuple(path)
        self.line = line
        self.column = column
        self.detail = message
        where = source
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        text = f"{where}: {format_path(path)}: {message}" if path else f"{where}: {message}"
        super().__init__(text)
