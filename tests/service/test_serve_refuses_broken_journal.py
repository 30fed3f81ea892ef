"""`ordergate serve` proves its journal before it listens: a journal whose hash chain is broken
stops start-up with a safety stop (exit 3) that says where, and nothing is served."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.evidence.support import invoke

from ordergate.service.auth import hash_token

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_serve_refuses_a_journal_whose_chain_is_broken(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    events = tmp_path / "events.jsonl"
    # a small real journal: the example's market snapshots through `run`
    snapshots = json.loads((EXAMPLES / "market.json").read_text())
    events.write_text("".join(json.dumps(snapshot) + "\n" for snapshot in snapshots))
    ran = invoke("run", "--policy", str(EXAMPLES / "policy.yaml"), "--journal", str(journal),
                 "--quiet", str(events))
    assert ran.code == 0, ran.output
    with sqlite3.connect(journal) as conn:
        conn.execute("UPDATE journal_records SET payload = ? WHERE seq = 3",
                     (b'{"type":"clock","ts":"2026-03-02T15:00:00Z"}',))
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - name: screen\n    role: viewer\n"
                      f"    hash: {hash_token('viewer-secret')}\n")

    served = invoke("serve", "--policy", str(EXAMPLES / "policy.yaml"), "--journal",
                    str(journal), "--tokens", str(tokens), "--port", "0")

    assert served.code == 3, served.output
    assert "verification failed at seq 3" in served.output
    assert "ordergate serving on" not in served.output
