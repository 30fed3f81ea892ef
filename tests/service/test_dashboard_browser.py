"""The dashboard in a real browser: headless Chromium (Debian's, installed by
scripts/ensure-chromium.sh) loads the page with a viewer token, and after an operator halts
trading through the API the banner turns red and names the reason in plain words.
Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from service.support import OPERATOR, VIEWER, Served, auth

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        script = ROOT / "scripts" / "ensure-chromium.sh"
        result = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                                timeout=900, check=False)
        if result.returncode != 0 or not Path(CHROMIUM).exists():
            pytest.fail(f"Chromium is needed for the dashboard test and could not be installed "
                        f"by {script}:\n{result.stderr[-2000:]}")
    return CHROMIUM


def _browser(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", "--window-size=1280,900",
               "--virtual-time-budget=4000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _page(chromium: str, url: str, screenshot: Path) -> str:
    """The DOM after the page's scripts ran, and a screenshot of the same state."""
    with tempfile.TemporaryDirectory(prefix="og-chromium-") as profile:
        dom = _browser(chromium, Path(profile), "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
    with tempfile.TemporaryDirectory(prefix="og-chromium-") as profile:
        shot = _browser(chromium, Path(profile), f"--screenshot={screenshot}", url)
        assert shot.returncode == 0, shot.stderr[-2000:]
    return dom.stdout


def _banner(dom: str) -> tuple[str, str]:
    classes = re.search(r'id="mode-banner"\s+class="([^"]*)"', dom)
    reason = re.search(r'id="mode-reason"[^>]*>(.*?)</div>', dom, re.S)
    assert classes and reason, dom[:2000]
    return classes.group(1), reason.group(1)


def test_banner_turns_red_with_the_reason_after_a_halt(served: Served, chromium: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = f"{served.url}/#token={VIEWER}"

    dom = _page(chromium, url, ARTIFACTS / "dashboard-active.png")
    classes, reason = _banner(dom)
    assert "mode-ACTIVE" in classes
    assert "Trading normally" in reason

    halted = httpx.post(f"{served.url}/v1/mode/halt", headers=auth(OPERATOR),
                        json={"reason": "suspicious fills on the desk"})
    assert halted.status_code == 200 and halted.json()["mode"] == "HALTED"

    shot = ARTIFACTS / "dashboard-halted.png"
    dom = _page(chromium, url, shot)
    classes, reason = _banner(dom)
    assert "mode-HALTED" in classes
    assert "KIL-002" in reason or "MOD-001" in reason or "HALT" in reason.upper()
    assert "suspicious fills on the desk" in reason
    assert "ops-alice" in reason
    assert shot.stat().st_size > 10_000


def test_dashboard_without_token_asks_to_sign_in(served: Served, chromium: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dom = _page(chromium, f"{served.url}/", ARTIFACTS / "dashboard-signed-out.png")
    classes, reason = _banner(dom)
    assert "mode-UNKNOWN" in classes and "Sign in" in reason
    assert re.search(r'<section id="login" class="card">', dom)  # no longer hidden

