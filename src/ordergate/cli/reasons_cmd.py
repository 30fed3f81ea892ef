"""`ordergate reasons`: print the reason-code registry."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from rich.table import Table

from ordergate.cli.console import out, print_json
from ordergate.model.reasons import all_reasons


def reasons(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print every reason code in precedence order (first = wins as the blocking reason)."""
    codes = all_reasons()
    if as_json:
        print_json(msgspec.json.encode(codes))
        return
    table = Table(title="ordergate reason codes (precedence order)")
    for column in ("#", "id", "name", "family", "severity", "meaning"):
        table.add_column(column, overflow="fold")
    for code in codes:
        table.add_row(str(code.precedence), code.id, code.name, code.family.value,
                      code.severity.value, code.meaning)
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("reasons")(reasons)
