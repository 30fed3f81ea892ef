"""The dashboard on a phone and when the gateway stops answering, in a real browser (the
fixtures of test_dashboard_browser: Debian's headless Chromium on a real gateway on loopback).

* At 375 and 414 px the page never scrolls sideways, whatever it shows (wide tables scroll
  inside their own card), and the mode word is whole ("REDUCE_ONLY", not "REDUCE_ONL").
* A gateway that hangs (its engine thread held, so /v1/status never answers) turns an open
  green ACTIVE page grey NO CONTACT, saying since when what is shown is stale; it turns back
  by itself once the gateway answers again.
* An operator halts (after confirming) and resumes from the page, the reason journaled with
  the command; a viewer token is told plainly it cannot.
Screenshots go to tests/artifacts/ like the other browser tests'."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ordergate.journal import open_journal
from ordergate.journal.base import RecordKind
from ordergate.model.events import Command, CommandAction
from ordergate.policy.loader import parse_policy
from ordergate.runtime.loop import decode_input
from service import test_dashboard_browser
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
from service.test_dashboard_browser import ARTIFACTS, LIVE_UPDATE_MS

with contextlib.suppress(ImportError):  # without it the browser fixture skips (or fails)
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

# test_dashboard_browser's Chromium, as fixture `chromium` (pytest names a fixture by the
# module attribute that holds it).
chromium = test_dashboard_browser.browser

PHONES = [(375, 667), (414, 896)]
# The page polls every 100 ms here (?poll_ms=100): a hang shows within a second or so.
FAST = "?poll_ms=100"


def _phone(browser: Browser, width: int, height: int) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(params=PHONES, ids=[f"{w}px" for w, _ in PHONES])
def phone(request: pytest.FixtureRequest, chromium: Browser) -> Iterator[Page]:
    width, height = request.param
    yield from _phone(chromium, width, height)


@pytest.fixture
def small_phone(chromium: Browser) -> Iterator[Page]:
    yield from _phone(chromium, *PHONES[0])


def _wait_for_mode(page: Page, mode: str) -> None:
    page.wait_for_function("mode => document.getElementById('mode-text').textContent === mode",
                           arg=mode, timeout=LIVE_UPDATE_MS)


def _open(served: Served, page: Page, token: str = VIEWER, query: str = "") -> None:
    page.goto(f"{served.url}/{query}#token={token}")
    _wait_for_mode(page, "ACTIVE")


def _assert_fits(page: Page, state: str) -> None:
    """No sideways scrolling of the page, and the mode word on one line inside the screen."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{state}: the page is {scroll_width} px wide at {width} px"
    words = page.evaluate("""() => {
        const node = document.getElementById('mode-text');
        const range = document.createRange();
        return node.textContent.split(/\\s+/).filter(Boolean).map((word) => {
            const start = node.textContent.indexOf(word);
            range.setStart(node.firstChild, start);
            range.setEnd(node.firstChild, start + word.length);
            const rects = [...range.getClientRects()];
            return [word, rects.length, Math.max(...rects.map((r) => r.right))];
        });
    }""")
    for word, lines, right in words:
        assert lines == 1 and right <= width, f"{state}: {word!r} cut ({lines} lines, {right})"


def _post(served: Served, path: str, body: dict[str, object], token: str = OPERATOR) -> None:
    answer = httpx.post(f"{served.url}{path}", json=body, headers=auth(token), timeout=10.0)
    assert answer.status_code == 200, answer.text


def test_phone_page_never_scrolls_sideways(phone: Page, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    start(tmp_path).stop()  # the journal now enforces POLICY: the --policy file below is not
    served = start(tmp_path, policy=parse_policy(OTHER_POLICY))
    width = phone.viewport_size["width"] if phone.viewport_size else 0
    try:
        _post(served, "/v1/intents", intent("phone-1"), TRADER)
        _open(served, phone)
        phone.wait_for_selector("#decisions tr", timeout=LIVE_UPDATE_MS)
        phone.wait_for_selector("#policy-file", state="visible", timeout=LIVE_UPDATE_MS)
        _assert_fits(phone, "ACTIVE with decisions and a policy-file warning")
        assert phone.evaluate(  # the decisions table is wider than the phone: it scrolls itself
            "() => document.querySelector('#decisions').closest('.table-scroll').scrollWidth"
        ) > width
        phone.screenshot(path=str(ARTIFACTS / f"dashboard-phone-{width}-active.png"),
                         full_page=True)

        _post(served, "/v1/mode/reduce-only", {"reason": "desk over its soft limit"})
        _wait_for_mode(phone, "REDUCE_ONLY")
        _assert_fits(phone, "REDUCE_ONLY")
        phone.screenshot(path=str(ARTIFACTS / f"dashboard-phone-{width}-reduce-only.png"),
                         full_page=True)

        _post(served, "/v1/mode/halt", {"reason": "runaway strategy " + "x" * 120})
        _wait_for_mode(phone, "HALTED")
        _assert_fits(phone, "HALTED with a long reason")
    finally:
        served.stop()


def _hold_engine(served: Served) -> tuple[threading.Thread, threading.Event]:
    """Hold the gateway's engine thread until the event is set: every status request then
    hangs, as on a gateway that stopped answering (the socket still accepts)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        release.wait()

    def run() -> None:
        asyncio.run(served.gateway.bridge.call(hold))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert held.wait(10), "the engine thread did not take the holding call"
    return thread, release


def test_hung_gateway_turns_the_open_page_grey_no_contact(small_phone: Page,
                                                          served: Served) -> None:
    page = small_phone
    _open(served, page, query=FAST)
    thread, release = _hold_engine(served)
    try:
        _wait_for_mode(page, "NO CONTACT")  # never a green ACTIVE it cannot vouch for
        reason = page.inner_text("#mode-reason")
        assert "No status from the gateway since" in reason and "the mode read ACTIVE" in reason
        assert "mode-UNKNOWN" in (page.get_attribute("#mode-banner", "class") or "")
        page.screenshot(path=str(ARTIFACTS / "dashboard-phone-no-contact.png"), full_page=True)
    finally:
        release.set()
        thread.join(10)
    _wait_for_mode(page, "ACTIVE")  # polling went on: the page recovers by itself


def _journaled_commands(served: Served) -> list[Command]:
    journal = open_journal(served.journal_url, create=False, reader=True)
    try:
        return [event for record in journal.read(1) if record.kind is RecordKind.INPUT
                for event in [decode_input(record.payload)] if isinstance(event, Command)]
    finally:
        journal.close()


def test_operator_halts_after_confirming_and_resumes_from_the_phone(
        small_phone: Page, served: Served) -> None:
    page = small_phone
    _open(served, page, token=OPERATOR)
    assert page.is_hidden("#resume-button")  # nothing to resume while ACTIVE

    page.click("#halt-button")  # no reason yet: nothing is sent
    assert "Write the reason first" in page.inner_text("#control-result")
    assert page.is_hidden("#halt-confirm")

    page.fill("#control-reason", "phone halt <b>test</b>")
    page.check("#halt-cancel-all")
    page.click("#halt-button")
    assert page.is_visible("#halt-confirm")  # asks before halting
    assert "cancel every open order" in page.inner_text("#halt-confirm-text")
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone-halt-confirm.png"), full_page=True)
    page.click("#halt-confirm-yes")
    _wait_for_mode(page, "HALTED")
    page.wait_for_selector("#control-result.ok", timeout=LIVE_UPDATE_MS)
    assert "the mode is now HALTED" in page.inner_text("#control-result")
    # the server's words are shown as text, never as markup
    assert "phone halt <b>test</b>" in page.inner_text("#mode-reason")
    assert page.locator("#mode-reason b").count() == 0

    page.wait_for_selector("#resume-button", state="visible", timeout=LIVE_UPDATE_MS)
    page.fill("#control-reason", "desk checked, all clear")
    page.click("#resume-button")
    _wait_for_mode(page, "ACTIVE")
    assert "the mode is now ACTIVE" in page.inner_text("#control-result")

    commands = _journaled_commands(served)
    halt = [c for c in commands if c.action is CommandAction.HALT]
    resume = [c for c in commands if c.action is CommandAction.RESUME]
    assert halt and halt[-1].reason == "phone halt <b>test</b>" and halt[-1].cancel_all
    assert halt[-1].operator == "ops-alice"
    assert resume and resume[-1].reason == "desk checked, all clear"


def test_viewer_token_is_told_plainly_it_cannot_halt(small_phone: Page,
                                                     served: Served) -> None:
    page = small_phone
    _open(served, page)
    page.fill("#control-reason", "try it")
    page.click("#halt-button")
    page.click("#halt-confirm-yes")
    page.wait_for_selector("#control-result.bad", timeout=LIVE_UPDATE_MS)
    said = page.inner_text("#control-result")
    assert "This token cannot halt trading" in said and "operator token" in said
    assert page.inner_text("#mode-text") == "ACTIVE"  # and nothing changed
    assert not [c for c in _journaled_commands(served) if c.action is CommandAction.HALT]


def test_halted_banner_says_its_sentence_once(small_phone: Page, served: Served) -> None:
    page = small_phone
    _open(served, page)
    _post(served, "/v1/mode/halt", {"reason": "suspicious fills"})
    _wait_for_mode(page, "HALTED")
    reason = page.inner_text("#mode-reason")
    assert reason.count("Trading is HALTED") == 1, reason
    assert "MOD-001" in reason and "suspicious fills" in reason and "ops-alice" in reason


def test_policy_file_badge_names_the_file_once(small_phone: Page, tmp_path: Path) -> None:
    start(tmp_path).stop()
    served = start(tmp_path, policy=parse_policy(OTHER_POLICY))
    try:
        _open(served, small_phone)
        small_phone.wait_for_selector("#policy-file", state="visible", timeout=LIVE_UPDATE_MS)
        badge = small_phone.inner_text("#policy-file")
        assert badge.count("--policy file") == 1, badge
        assert "--replace-policy" in badge
    finally:
        served.stop()


def test_monitor_mode_banner_says_limits_are_not_enforced(small_phone: Page,
                                                          served: Served) -> None:
    _open(served, small_phone)
    _post(served, "/v1/policy", {"document": POLICY + "monitor: true\n",
                                 "reason": "watch the new limits"})
    _wait_for_mode(small_phone, "ACTIVE — LIMITS NOT ENFORCED")
    assert "Limits NOT enforced (monitor mode)" in small_phone.inner_text("#mode-reason")
    _assert_fits(small_phone, "monitor mode")


def test_no_market_data_banner_is_not_a_plain_green_active(small_phone: Page,
                                                            tmp_path: Path) -> None:
    served = start(tmp_path, fund=False)  # a fresh journal, no feed: every intent is denied
    try:
        small_phone.goto(f"{served.url}/#token={VIEWER}")
        _wait_for_mode(small_phone, "ACTIVE — NO MARKET DATA")
        assert "Orders are denied until market data arrives" in small_phone.inner_text(
            "#mode-reason")
        assert "restricted" in (small_phone.get_attribute("#mode-banner", "class") or "")
        _assert_fits(small_phone, "no market data")
    finally:
        served.stop()
