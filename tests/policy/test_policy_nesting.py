"""A policy nested absurdly deep is a policy error naming the file, never a stack trace: the
YAML parser recurses once per level, so 5,000 levels used to end in a RecursionError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ordergate.policy.errors import PolicyError
from ordergate.policy.loader import parse_policy

HEAD = "apiVersion: ordergate/v1\nkind: Policy\nmetadata: {name: deep}\n"


@pytest.mark.parametrize("levels", [5_000, 900, 40])
def test_deep_nesting_is_a_policy_error(levels: int) -> None:
    for text in (HEAD + "defaults:\n  x: " + "[" * levels + "]" * levels + "\n",
                 HEAD + "defaults: " + "{a: " * levels + "1" + "}" * levels + "\n"):
        with pytest.raises(PolicyError, match=r"nested (too deeply|deeper than 16 levels)"):
            parse_policy(text, "deep.yaml")


def test_policy_check_names_the_file_without_a_stack_trace(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(HEAD + "defaults:\n  x: " + "[" * 5_000 + "]" * 5_000 + "\n")
    done = subprocess.run([sys.executable, "-m", "ordergate.cli.main", "policy", "check",
                           str(path)], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 1
    said = " ".join(done.stderr.split())
    assert "deep.yaml: the YAML is nested too deeply" in said
    assert "Traceback" not in said
