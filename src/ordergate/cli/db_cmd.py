"""`ordergate db upgrade`: bring a journal database's schema to this version."""

from __future__ import annotations

from typing import Annotated

import typer

from ordergate.cli.console import out
from ordergate.cli.errors import UserError
from ordergate.journal import JournalError, redact_url, upgrade_schema

db_app = typer.Typer(help="Manage journal database schemas.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(
    journal: Annotated[str, typer.Option("--journal", help="Journal URL: sqlite:///path.db, "
                                         "path.db, or postgresql://...")],
) -> None:
    """Apply the missing schema migrations (creates the schema if there is none)."""
    where = redact_url(journal)
    try:
        before, after = upgrade_schema(journal)
    except JournalError as exc:
        raise UserError(str(exc)) from exc
    if before == after:
        out.print(f"{where}: journal schema already at version {after}", markup=False)
    else:
        out.print(f"{where}: journal schema upgraded from version {before} to {after}",
                  markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
