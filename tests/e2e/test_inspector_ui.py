"""The web inspector in real headless Chromium against a live server that requires keys: the
list and its filters, a running response followed live to its end, the replay control, the
tool-call table and its export, tenant isolation and the admin view. Screenshots of each page,
at phone width and wide, go to tests/artifacts/inspector/."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import backend_env
from tests.support.browser import PHONE, find_chromium, screenshot, start_chromium
from tests.support.keys import create_key
from tests.support.server import ServerProcess

# A browser on a loaded 2-core machine: more room than the suite's default per test.
pytestmark = pytest.mark.timeout(300)
TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
WAIT_S = 60  # conditions, not durations: a loaded machine only makes them take longer
ENDLESS = " ".join(f"w{i}" for i in range(20_000))  # minutes at the rate below: ends by cancel


@dataclass
class Site:
    server: ServerProcess
    alice: str
    bob: str
    admin: str
    workdir: Path

    def http(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url,
                            headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture(scope="module")
def site(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    workdir: Path = tmp_path_factory.mktemp("inspector")
    env = backend_env("sqlite", request, workdir)
    keys = [create_key(env, "a"), create_key(env, "b"), create_key(env, "ops", admin=True)]
    server = ServerProcess.start(workdir, "--auth", "required", "--builtin-rate", "150",
                                 "--keepalive-s", "1", env=env)
    yield Site(server, *keys, workdir)
    server.stop()


@pytest.fixture(scope="module")
def chrome(site: Site) -> Iterator:  # type: ignore[type-arg]
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are required in CI but are not installed")
        pytest.skip("chromium and chromium-driver are not installed")
    downloads = site.workdir / "downloads"
    downloads.mkdir()
    browser = start_chromium(downloads)
    browser.downloads = downloads
    yield browser
    browser.quit()


def _wait(chrome, condition, what: str):  # type: ignore[no-untyped-def]
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(chrome, WAIT_S, poll_frequency=0.1).until(
        lambda _: condition(), message=what)


def _css(chrome, selector: str):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    return chrome.find_elements(By.CSS_SELECTOR, selector)


def _sign_in(chrome, site: Site, key: str, page: str = "#/responses") -> None:  # type: ignore[no-untyped-def]
    chrome.get(site.server.base_url + "/inspect" + page)
    # The script has run and the first render (with the tab's previous key) has finished.
    _loaded(chrome)
    chrome.execute_script("sessionStorage.clear()")
    field = _css(chrome, "#api-key")[0]
    field.send_keys(key)
    _css(chrome, "#key-form button[type=submit]")[0].click()
    _wait(chrome, lambda: "tenant" in _read(chrome, "#who"), "the key accepted")
    # The key is never put in the page's address, nor kept beyond this tab.
    assert key not in chrome.current_url
    assert chrome.execute_script("return localStorage.length") == 0


def _loaded(chrome) -> None:  # type: ignore[no-untyped-def]
    """Wait until the page shown has its first data (main's aria-busy turns false)."""
    _wait(chrome, lambda: chrome.execute_script(
        "return document.querySelector('#main').getAttribute('aria-busy')") == "false",
        "the page loaded")


def _listed(chrome) -> list[str]:  # type: ignore[no-untyped-def]
    """The ids in the list, read in one go (the list redraws rows as it polls)."""
    return chrome.execute_script(
        "return [...document.querySelectorAll('#responses tbody tr[data-id]')]"
        ".map(row => row.dataset.id)")


def _text(chrome) -> str:  # type: ignore[no-untyped-def]
    """The text as built up so far, read in one go (the page redraws it as events arrive)."""
    return chrome.execute_script(
        "return [...document.querySelectorAll('#built [data-role=text]')]"
        ".map(e => e.textContent).join(' ')")


def _read(chrome, selector: str) -> str:  # type: ignore[no-untyped-def]
    return chrome.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
        selector)


@pytest.fixture(scope="module")
def data(site: Site) -> dict[str, dict]:
    with site.http(site.alice) as alice, site.http(site.bob) as bob:
        plain = alice.post("/v1/responses", json={"model": "m-one", "input": "zebra crossing"})
        time.sleep(1.05)  # created_at is in whole seconds: the list's order is then known
        called = alice.post("/v1/responses", json={
            "model": "m-tools", "input": 'lookup {"key": "alpha"}', "tools": [TOOL]}).json()
        time.sleep(1.05)
        answered = alice.post("/v1/responses", json={
            "model": "m-tools", "previous_response_id": called["id"], "tools": [TOOL],
            "input": [{"type": "function_call_output", "call_id": called["output"][-1]["call_id"],
                       "output": "beta"}]}).json()
        failed = alice.post("/v1/responses", json={"model": "m-one", "input": "fail: on purpose"})
        theirs = bob.post("/v1/responses", json={"model": "m-bob", "input": "bob's own words"})
        return {"plain": plain.json(), "called": called, "answered": answered,
                "failed": failed.json(), "theirs": theirs.json()}


def test_list_filters_and_live_rows(chrome, site: Site, data):  # type: ignore[no-untyped-def]
    _sign_in(chrome, site, site.alice)
    mine = [data[k]["id"] for k in ("failed", "answered", "called", "plain")]
    _wait(chrome, lambda: set(_listed(chrome)) == set(mine), "alice's four responses")
    assert _listed(chrome)[-1] == data["plain"]["id"]  # newest first
    assert data["theirs"]["id"] not in chrome.page_source
    screenshot(chrome, "responses-wide")
    screenshot(chrome, "responses-phone", PHONE)

    chrome.get(site.server.base_url + "/inspect#/responses?has_tool_calls=true")
    _wait(chrome, lambda: _listed(chrome) == [data["called"]["id"]], "the tool-call filter")
    chrome.get(site.server.base_url + "/inspect#/responses?q=ZEBRA")
    _wait(chrome, lambda: _listed(chrome) == [data["plain"]["id"]], "the text search")
    # Through the form, as a person would: status = failed.
    chrome.get(site.server.base_url + "/inspect#/responses")
    _wait(chrome, lambda: len(_listed(chrome)) == 4, "the unfiltered list")
    from selenium.webdriver.support.ui import Select

    Select(_css(chrome, "select[name=status]")[0]).select_by_value("failed")
    _css(chrome, ".filters button[type=submit]")[0].click()
    _wait(chrome, lambda: _listed(chrome) == [data["failed"]["id"]], "the status filter")
    screenshot(chrome, "responses-filtered-wide")

    # Live: a response created now appears without a reload, and its status moves on.
    chrome.get(site.server.base_url + "/inspect#/responses")
    _wait(chrome, lambda: len(_listed(chrome)) == 4, "the list again")
    with site.http(site.alice) as alice:
        fresh = alice.post("/v1/responses", json={"model": "m-live", "input": "a new one",
                                                  "background": True}).json()
    _wait(chrome, lambda: _listed(chrome)[:1] == [fresh["id"]], "the new response, live")
    row = f'#responses tr[data-id="{fresh["id"]}"] .badge'
    _wait(chrome, lambda: _read(chrome, row) == "completed", "its status, live")


def test_running_response_followed_live_to_its_end(chrome, site: Site):  # type: ignore[no-untyped-def]
    with site.http(site.alice) as alice:
        running = alice.post("/v1/responses", json={
            "model": "m-long", "input": ENDLESS, "background": True}).json()
        _sign_in(chrome, site, site.alice, f"#/response/{running['id']}")
        _wait(chrome, lambda: "following live" in _read(chrome, "#follow-state"),
              "the follow")
        # The text grows on the page while the response runs.
        _wait(chrome, lambda: len(_text(chrome).split()) >= 20, "text streaming in")
        first = len(_text(chrome).split())
        _wait(chrome, lambda: len(_text(chrome).split()) > first + 20, "more text, live")
        assert ENDLESS.startswith(_text(chrome).strip())
        screenshot(chrome, "response-live-wide")
        screenshot(chrome, "response-live-phone", PHONE)
        cancelled = alice.post(f"/v1/responses/{running['id']}/cancel").json()
        assert cancelled["status"] == "cancelled"
        _wait(chrome, lambda: "ended" in _read(chrome, "#follow-state"), "the end")
        _wait(chrome, lambda: "Cancelled" in _read(chrome, "#why"), "why it ended")
        # Gap-free: the page holds exactly the stored log.
        stored, after = [], -1
        while True:
            page = alice.get(f"/v1/responses/{running['id']}/events",
                             params={"after": after, "limit": 1000}).json()
            stored += [e["sequence_number"] for e in page["data"]]
            if not page["has_more"]:
                break
            after = page["last_sequence_number"]
    shown = [int(r.get_attribute("data-seq")) for r in _css(chrome, "#events tbody tr")]
    assert shown == stored
    assert _read(chrome, "#status .badge") == "cancelled"
    screenshot(chrome, "response-cancelled-wide")


def test_replay_steps_and_plays_the_log(chrome, site: Site, data):  # type: ignore[no-untyped-def]
    _sign_in(chrome, site, site.alice, f"#/response/{data['plain']['id']}")
    _wait(chrome, lambda: _text(chrome) == "zebra crossing", "the final text")
    assert _read(chrome, "#status .badge") == "completed"
    assert _read(chrome, "#ttft") != "\u2013"  # a time, not the blank mark
    _css(chrome, "#replay-first")[0].click()
    assert _text(chrome) == ""
    assert _read(chrome, "#replay-label").startswith("1 /")
    steps = 0
    while _text(chrome) != "zebra":  # the first delta
        _css(chrome, "#replay-step")[0].click()
        steps += 1
        assert steps < 20, _text(chrome)
    # The keyboard steps too: one back from the first delta shows no text again.
    from selenium.webdriver.common.keys import Keys

    _css(chrome, "#replay-position")[0].send_keys(Keys.ARROW_LEFT)
    assert _text(chrome) == ""
    _css(chrome, "#replay-play")[0].click()
    _wait(chrome, lambda: _text(chrome) == "zebra crossing", "play to the end")

    def at_end() -> bool:
        label = _read(chrome, "#replay-label")
        return label.split(" / ")[0] == label.split(" / ")[1].split(" ")[0]

    _wait(chrome, at_end, "play stops at the last event")
    assert _read(chrome, "#replay-play") == "▶ Play"  # and pauses there
    _css(chrome, "#verify")[0].click()
    _wait(chrome, lambda: "intact" in _read(chrome, "#verify-result"), "chain verified")
    screenshot(chrome, "response-replay-wide")
    # A failed response says why.
    chrome.get(site.server.base_url + f"/inspect#/response/{data['failed']['id']}")
    _wait(chrome, lambda: "Failed" in _read(chrome, "#why"), "the failure")
    screenshot(chrome, "response-failed-phone", PHONE)
    # The chain: the follow-up links back, and this one lists it as its continuation.
    chrome.get(site.server.base_url + f"/inspect#/response/{data['called']['id']}")
    _wait(chrome, lambda: data["answered"]["id"] in _read(chrome, "#continued-by"),
          "the continuation")
    chrome.get(site.server.base_url + f"/inspect#/response/{data['answered']['id']}")
    _wait(chrome, lambda: _read(chrome, "#previous") == data["called"]["id"], "the link back")


def test_tool_calls_table_link_and_export(chrome, site: Site, data):  # type: ignore[no-untyped-def]
    _sign_in(chrome, site, site.alice, "#/tools?name=lookup")
    _wait(chrome, lambda: len(_css(chrome, "#tool-calls tbody tr")) == 1, "the lookup call")
    row = _css(chrome, "#tool-calls tbody tr")[0]
    assert "lookup" in row.text and "beta" in row.text  # its output, sent back later
    screenshot(chrome, "tools-wide")
    screenshot(chrome, "tools-phone", PHONE)
    for name in ("tool_calls.jsonl", "tool_calls.csv"):
        (chrome.downloads / name).unlink(missing_ok=True)
    _css(chrome, "#export-jsonl")[0].click()
    _css(chrome, "#export-csv")[0].click()
    jsonl = chrome.downloads / "tool_calls.jsonl"
    table = chrome.downloads / "tool_calls.csv"
    _wait(chrome, lambda: jsonl.exists() and table.exists(), "both exports downloaded")
    [exported] = [json.loads(line) for line in jsonl.read_text().splitlines()]
    with site.http(site.alice) as alice:
        [listed] = alice.get("/v1/audit/tool_calls", params={"name": "lookup"}).json()["data"]
    assert exported == listed
    [as_csv] = list(csv.DictReader(io.StringIO(table.read_text())))
    assert as_csv["call_id"] == listed["call_id"] and as_csv["output"] == "beta"
    _css(chrome, "#verify-range")[0].click()
    _wait(chrome, lambda: "intact" in _read(chrome, "#range-verify"), "range verified")
    # The row links to its response, at the moment of the call.
    row = _css(chrome, "#tool-calls tbody tr")[0]
    row.find_element("css selector", "a").click()
    _wait(chrome, lambda: _css(chrome, "#built .tool-call"), "the call in the replay")
    assert "lookup" in _css(chrome, "#built .tool-call")[0].text
    assert "added" in _css(chrome, "#events tr.current")[0].text


def test_tenant_b_sees_none_of_a(chrome, site: Site, data):  # type: ignore[no-untyped-def]
    _sign_in(chrome, site, site.bob)
    _wait(chrome, lambda: _listed(chrome) == [data["theirs"]["id"]], "bob's one response")
    alice_ids = [data[k]["id"] for k in ("plain", "called", "answered", "failed")]
    chrome.get(site.server.base_url + "/inspect#/tools")
    _wait(chrome, lambda: "No tool calls match" in chrome.page_source, "an empty audit")
    chrome.get(site.server.base_url + f"/inspect#/response/{data['called']['id']}")
    _wait(chrome, lambda: _css(chrome, "[role=alert]"), "a refusal")
    assert "not found" in _css(chrome, "[role=alert]")[0].text
    # The id bob asked for is all the page repeats: none of alice's others, none of her text.
    for response_id in alice_ids:
        if response_id != data["called"]["id"]:
            assert response_id not in chrome.page_source
    assert "zebra" not in chrome.page_source and "alpha" not in chrome.page_source
    screenshot(chrome, "tenant-b-wide")


def test_admin_sees_every_tenant_and_filters(chrome, site: Site, data):  # type: ignore[no-untyped-def]
    _sign_in(chrome, site, site.admin)
    assert "admin" in _read(chrome, "#who")
    _wait(chrome, lambda: {data["theirs"]["id"], data["plain"]["id"]} <= set(_listed(chrome)),
          "both tenants' responses")
    tenants = set(chrome.execute_script(
        "return [...document.querySelectorAll('#responses td.tenant')].map(e => e.textContent)"))
    assert tenants == {"a", "b"}
    screenshot(chrome, "admin-wide")
    chrome.get(site.server.base_url + "/inspect#/responses?tenant=b")
    _wait(chrome, lambda: _listed(chrome) == [data["theirs"]["id"]], "the tenant filter")
    # The admin reads a tenant's response log, and the overview draws its charts.
    chrome.get(site.server.base_url + f"/inspect#/response/{data['plain']['id']}")
    _wait(chrome, lambda: _text(chrome) == "zebra crossing", "another tenant's log")
    chrome.get(site.server.base_url + "/inspect#/overview")
    _wait(chrome, lambda: len(_css(chrome, "#charts svg")) >= 6 and _css(chrome, "#workers"),
          "the overview")
    _wait(chrome, lambda: len(_css(chrome, "#charts polyline")) >= 5, "the charts")
    screenshot(chrome, "overview-wide")
    screenshot(chrome, "overview-phone", PHONE)
