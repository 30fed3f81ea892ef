"""The entry point imports only the module of the command being run (`cli.main.build_app`):
its table of commands must name every command, each with the module that registers it, or a
command would be missing from the CLI when run by name."""

from __future__ import annotations

import subprocess
import sys

import typer

from ordergate.cli.main import _COMMANDS, build_app


def registered(app: typer.Typer) -> set[str]:
    commands = {command.name or command.callback.__name__  # type: ignore[union-attr]
                for command in app.registered_commands}
    groups = {group.name or group.typer_instance.info.name  # type: ignore[union-attr]
              for group in app.registered_groups}
    return commands | groups


def test_the_table_names_every_command_with_its_module() -> None:
    assert registered(build_app()) == set(_COMMANDS)
    for name, module in _COMMANDS.items():
        alone = registered(build_app(name))
        assert name in alone, (name, module)
        assert alone == {other for other, owner in _COMMANDS.items() if owner == module}


def test_running_a_command_imports_only_its_own_module() -> None:
    probe = ("import sys; sys.argv = ['ordergate', 'reasons', '--json']\n"
             "from ordergate.cli import main\n"
             "try:\n    main.main()\nexcept SystemExit:\n    pass\n"
             "loaded = sorted(m for m in sys.modules if m.endswith('_cmd'))\n"
             "print(loaded, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.lstrip().startswith("[")  # the reasons, as JSON
    assert done.stderr.strip().splitlines()[-1] == "['ordergate.cli.reasons_cmd']"


def test_help_and_an_unknown_command_still_see_every_command() -> None:
    shown = subprocess.run([sys.executable, "-m", "ordergate.cli.main", "--help"],
                           capture_output=True, text=True, check=False, timeout=60,
                           env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert shown.returncode == 0
    for name in _COMMANDS:
        assert f" {name} " in shown.stdout, name
    unknown = subprocess.run([sys.executable, "-m", "ordergate.cli.main", "nosuch"],
                             capture_output=True, text=True, check=False, timeout=60)
    assert unknown.returncode == 2 and "No such command 'nosuch'" in unknown.stderr
