"""The `ordergate` command line (typer + rich)."""
