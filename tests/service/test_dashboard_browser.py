"""The dashboard in a real browser: Playwright drives Debian's headless Chromium (installed by
scripts/ensure-chromium.sh) on a real gateway on loopback. The page is opened once with a viewer
token; an operator then changes the mode through the API and the OPEN page updates by itself
(no reload): green ACTIVE turns red HALTED naming the reason and the operator, or amber
REDUCE_ONLY.
Screenshots of the page before and after the halt go to tests/artifacts/; reference copies are
kept in docs/images/."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ordergate.policy.loader import parse_policy
from service.support import (
    OPERATOR,
    OTHER_POLICY,
    POLICY,
    TRADER,
    VIEWER,
    Served,
    auth,
    intent,
    start,
)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
LIVE_UPDATE_MS = 10_000  # the page polls once a second; this only bounds "it happens at all"

pytestmark = pytest.mark.slow

try:
    from playwright.sync_api import Browser, Page, sync_playwright

    HAVE_PLAYWRIGHT = True
except ImportError:  # the dev extra installs it; without it the browser tests cannot run
    HAVE_PLAYWRIGHT = False


def _unavailable(message: str) -> None:
    if os.environ.get("ORDERGATE_REQUIRE_SERVICES") == "1":  # as tests/conftest.py reads it
        pytest.fail(f"{message} and ORDERGATE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{message}; install it or set ORDERGATE_REQUIRE_SERVICES=1 to make this a "
                "failure")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not HAVE_PLAYWRIGHT:
        _unavailable("the Python package playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        script = ROOT / "scripts" / "ensure-chromium.sh"
        result = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                                timeout=900, check=False)
        if result.returncode != 0 or not Path(CHROMIUM).exists():
            _unavailable(f"{CHROMIUM} is missing and {script} could not install it "
                         f"({result.stderr.strip()[-500:] or 'no message'})")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def _rgb(page: Page, selector: str) -> tuple[int, int, int]:
    colour = page.eval_on_selector(selector, "node => getComputedStyle(node).backgroundColor")
    match = re.fullmatch(r"rgba?\((\d+),\s*(\d+),\s*(\d+)(?:,\s*[\d.]+)?\)", colour)
    assert match, f"unexpected background colour {colour!r}"
    red, green, blue = (int(part) for part in match.groups())
    return red, green, blue


def _wait_for_mode(page: Page, mode: str) -> None:
    """Wait for the open page to show `mode` by itself (its own polling, no reload)."""
    page.wait_for_function("mode => document.getElementById('mode-text').textContent === mode",
                           arg=mode, timeout=LIVE_UPDATE_MS)


def _set_mode(served: Served, action: str, reason: str) -> dict[str, object]:
    response = httpx.post(f"{served.url}/v1/mode/{action}", headers=auth(OPERATOR),
                          json={"reason": reason}, timeout=10.0)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _open(served: Served, page: Page) -> None:
    """Open the dashboard with the viewer token in the fragment, as the page expects, and wait
    until it shows the gateway's state."""
    page.goto(f"{served.url}/#token={VIEWER}")
    _wait_for_mode(page, "ACTIVE")
    assert "token=" not in page.url  # the token leaves the address bar once it is stored


def test_open_page_turns_red_with_the_reason_after_a_halt(page: Page, served: Served) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    posted = httpx.post(f"{served.url}/v1/intents", json=intent("dash-1"), headers=auth(TRADER),
                        timeout=10.0)
    assert posted.status_code == 200, posted.text

    _open(served, page)
    assert "Trading normally" in page.inner_text("#mode-reason")
    red, green, blue = _rgb(page, "#mode-banner")
    assert green > red and green > blue, (red, green, blue)

    # the rest of the page: exposure bars, the decision just made, the mode timeline
    page.wait_for_selector("#decisions tr", timeout=LIVE_UPDATE_MS)
    row = page.inner_text("#decisions tr")
    assert "dash-1" in row and "ACC-1" in row and "AAPL" in row and "ALLOW" in row
    assert "ACC-1 gross" in page.inner_text("#exposure")
    assert page.locator("#exposure .bar").count() >= 2
    assert page.is_visible("#timeline")
    page.screenshot(path=str(ARTIFACTS / "dashboard-active.png"), full_page=True)

    assert _set_mode(served, "halt", "suspicious fills on the desk")["mode"] == "HALTED"
    _wait_for_mode(page, "HALTED")  # the same page, never reloaded
    reason = page.inner_text("#mode-reason")
    assert "suspicious fills on the desk" in reason
    assert "ops-alice" in reason
    red, green, blue = _rgb(page, "#mode-banner")
    assert red > 2 * green and red > 2 * blue, (red, green, blue)
    timeline = page.inner_text("#timeline")
    assert "HALTED" in timeline and "ops-alice" in timeline
    shot = ARTIFACTS / "dashboard-halted.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_open_page_turns_amber_on_reduce_only(page: Page, served: Served) -> None:
    _open(served, page)
    assert _set_mode(served, "reduce-only", "desk over its soft limit")["mode"] == "REDUCE_ONLY"
    _wait_for_mode(page, "REDUCE_ONLY")
    assert "desk over its soft limit" in page.inner_text("#mode-reason")
    red, green, blue = _rgb(page, "#mode-banner")
    assert red > blue and green > blue and red >= green, (red, green, blue)  # amber


def test_open_page_turns_red_saying_all_orders_are_denied_under_a_firm_kill(
        page: Page, served: Served) -> None:
    _open(served, page)
    killed = httpx.post(f"{served.url}/v1/kill", headers=auth(OPERATOR), timeout=10.0,
                        json={"scope": "firm", "reason": "fat finger incident"})
    assert killed.status_code == 200, killed.text
    _wait_for_mode(page, "KILL SWITCH — ALL ORDERS DENIED")  # not ACTIVE — RESTRICTED
    reason = page.inner_text("#mode-reason")
    assert "No trading: every order is denied" in reason and "fat finger incident" in reason
    red, green, blue = _rgb(page, "#mode-banner")
    assert red > 2 * green and red > 2 * blue, (red, green, blue)


def test_dashboard_without_token_asks_to_sign_in(page: Page, served: Served) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{served.url}/")
    page.wait_for_selector("#login", state="visible", timeout=LIVE_UPDATE_MS)
    assert "Sign in" in page.inner_text("#mode-reason")
    assert "mode-UNKNOWN" in (page.get_attribute("#mode-banner", "class") or "")
    assert page.is_hidden("#content")
    page.screenshot(path=str(ARTIFACTS / "dashboard-signed-out.png"), full_page=True)


def test_open_page_shows_a_disabled_strategy_as_a_restriction(page: Page,
                                                                tmp_path: Path) -> None:
    served = start(tmp_path, policy=parse_policy(
        POLICY + "  repeated_execution: {max: 2, window: 1m}\n"))
    try:
        _open(served, page)
        for number, qty in enumerate(("10", "11")):
            posted = httpx.post(f"{served.url}/v1/intents", json=intent(f"rep-{number}", qty=qty),
                                headers=auth(TRADER), timeout=10.0)
            assert posted.status_code == 200, posted.text
        _wait_for_mode(page, "ACTIVE — RESTRICTED")  # the same page, never reloaded
        assert "Trading restricted: 1 restriction" in page.inner_text("#mode-reason")
        listed = page.inner_text("#restrictions")
        assert "THR-006" in listed
        assert "strategy momo in account ACC-1 that adds risk is denied" in listed
        assert "set by system" in listed
    finally:
        served.stop()


def test_policy_line_says_when_the_policy_file_is_not_enforced(page: Page,
                                                                tmp_path: Path) -> None:
    start(tmp_path).stop()  # the journal now enforces POLICY
    served = start(tmp_path, policy=parse_policy(OTHER_POLICY))
    try:
        _open(served, page)
        page.wait_for_selector("#policy-file", state="visible", timeout=LIVE_UPDATE_MS)
        line = page.inner_text("#policy-file")
        file_hash = parse_policy(OTHER_POLICY).hash
        assert f"--policy file service-test-2 {file_hash[:16]} NOT enforced" in line
        assert "--replace-policy" in line
        assert page.inner_text("#policy-hash").startswith("service-test sha256:")
    finally:
        served.stop()


def test_policy_line_is_quiet_about_an_enforced_policy_file(page: Page, served: Served) -> None:
    _open(served, page)
    assert page.is_hidden("#policy-file")


def test_a_malformed_fragment_token_asks_to_sign_in_and_leaves_the_address(
        page: Page, served: Served) -> None:
    page.goto(f"{served.url}/#token=ab%ZZ")  # %ZZ is not percent-encoding
    page.wait_for_selector("#login", state="visible", timeout=LIVE_UPDATE_MS)
    assert "token=" not in page.url  # the (broken) token leaves the address bar all the same
    assert "not valid percent-encoding" in page.inner_text("#login-error")
    assert "Sign in" in page.inner_text("#mode-reason")
    assert page.is_hidden("#content")
