"""The evidence pack: written with its CSVs, and its HTML renders in headless Chromium with
the title, the summary, every chart and the tables."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tests.evidence.support import invoke

from ordergate.evidence.report import CHARTS

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ENSURE = Path(__file__).resolve().parents[2] / "scripts" / "ensure-chromium.sh"


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium")
                                         .exists() else None)
    if found is None:
        command = ["bash", str(ENSURE)] if ENSURE.exists() else \
            ["apt-get", "install", "-y", "chromium"]
        subprocess.run(command, check=True, capture_output=True, timeout=600)
        found = "/usr/bin/chromium"
    return found


def _headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False)


def test_report_pack_summarises_what_was_proven_and_what_is_risky(
        tmp_path: Path, demo_day: Path) -> None:
    result = invoke("report", "--journal", str(demo_day / "journal.db"), "--out",
                    str(tmp_path / "pack"))
    assert result.code == 0, result.output
    pack = tmp_path / "pack"
    markdown = (pack / "report.md").read_text()
    assert "hash chain verified" in markdown
    decisions = sum(1 for _ in (pack / "decisions.csv").open()) - 1
    assert f"replay reproduced {decisions:,}/{decisions:,} decisions" in markdown
    assert "the mode ended HALTED, not ACTIVE" in markdown
    for name in ("decisions_by_reason.csv", "exposure.csv", "order_rate.csv",
                 "mode_timeline.csv"):
        assert (pack / name).stat().st_size > 0


def test_report_window_limits_the_rows(tmp_path: Path, demo_day: Path) -> None:
    result = invoke("report", "--journal", str(demo_day / "journal.db"), "--out",
                    str(tmp_path / "pack"), "--since", "2026-03-02T15:00:00Z", "--until",
                    "2026-03-02T15:30:00Z")
    assert result.code == 0, result.output
    rows = (tmp_path / "pack" / "decisions.csv").read_text().splitlines()[1:]
    assert rows and all("2026-03-02T15:" in row for row in rows)


@pytest.mark.slow
def test_report_html_renders_in_headless_chromium(tmp_path: Path, demo_day: Path) -> None:
    pack = tmp_path / "pack"
    assert invoke("report", "--journal", str(demo_day / "journal.db"), "--out",
                  str(pack)).code == 0
    chromium = _chromium()
    url = (pack / "report.html").resolve().as_uri()
    dom = _headless(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    assert "<title>ordergate evidence report</title>" in page
    assert 'id="summary"' in page and "hash chain verified" in page
    for name in CHARTS:
        assert f'id="chart-{name}"' in page
    for table in ("table-outcomes", "table-reasons", "table-strategies", "table-modes"):
        assert f'id="{table}"' in page
    assert page.count("<svg") >= len(CHARTS)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "evidence-report.png"
    shot.unlink(missing_ok=True)
    taken = _headless(chromium, tmp_path / "profile-shot", f"--screenshot={shot}",
                      "--window-size=1280,2000", url)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
