"""Run every benchmark in turn, each in its own process so one's warm caches and garbage do
not colour the next. Each writes its JSON to bench/results/. `--quick` passes through.

    python -m bench.run_all [--quick] [--only gate,journal]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

BENCHES = ("gate", "engine", "journal", "run", "snapshot", "replay", "http", "alerts", "scale")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs for a smoke check")
    parser.add_argument("--only", default="", help="comma-separated subset of " + ",".join(BENCHES))
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name] or list(BENCHES)
    failed = []
    for name in chosen:
        command = [sys.executable, "-m", f"bench.bench_{name}"]
        command += ["--quick"] if args.quick else []
        print(f"== bench_{name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        result = subprocess.run(command, check=False)
        print(f"== bench_{name}: exit {result.returncode} in {time.perf_counter() - started:.0f}s",
              flush=True)
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
