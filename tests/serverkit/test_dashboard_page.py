"""/dashboard in a real headless Chromium against a gateway fed a scripted week of usage (rows written through the
store's API with their timestamps): the panels are there, their figures are the week's, and a screenshot is saved
(to $CODEASSIST_DASHBOARD_SCREENSHOT too, when set). Also: who may see the page."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from codeassist.serverkit.gateway.usage_store import DAY_S
from gwhelpers import auth

from tests.browser import chromium_missing, start_chromium

BROWSER_MISSING = chromium_missing()


def scripted_week(store, now: float) -> None:
    """Day i of the 7 (today last): users u0..u(9+i) active, each with the same day: 100 requests (98 answered,
    2 refused 429), 80 completions shown, 20 accepted and 4 in part (960 characters), a 5 ms mean queue wait,
    end-to-end 90 in 200-300 ms and 8 in 700-1000 ms, TTFT 90 in 50-75 ms and 8 in 100-150 ms."""
    today = int(now) // DAY_S * DAY_S
    rows = []
    for i in range(7):
        day = today - (6 - i) * DAY_S
        for u in range(10 + i):
            for hour, share in ((9, 1), (14, 1)):  # two 5-minute rows a day, halves of the day's figures
                v = {
                    "requests": 50,
                    "completed": 49,
                    "r429": 1,
                    "shown": 40,
                    "accepted": 10,
                    "partially_accepted": 2,
                    "accepted_chars": 480,
                    "qwait_us": 250_000,
                    "qwait_n": 50,
                    "e2e_6": 45,
                    "e2e_9": 4,
                    "ttft_2": 45,
                    "ttft_4": 4,
                }
                rows.append((day + hour * 3600 + share * 300, f"{u:016x}", v))
    store.add_rows(rows)


EXPECTED = {
    "active_users": "16",
    "requests": "9,100",
    "acceptance_rate": "30.0%",  # (20 + 4) × 91 user-days / (80 × 91)
    "accepted_chars": "87,360",
    "shown": "7,280",
    "r429": "182",
    "queue_wait_ms": "5.0 ms",
    "ttft_p50": "64 ms",  # 50 + 25 × 49/90
    "ttft_p99": "144 ms",  # 100 + 50 × 7.02/8: over the 100 ms target
    "e2e_p50": "254 ms",  # 200 + 100 × 49/90
    "e2e_p99": "963 ms",  # 700 + 300 × 7.02/8: over the 700 ms target
    "gpu_util": "no data",
    "kv_cache": "no data",
    "gpu_cost": "$756",  # 1 × H100 at $4.50/h × 24 h × 7 days (plan's on-demand price)
    "accepted_lines": "2,184",  # 87,360 / 40
    "cost_per_line": "$0.346",  # 756 / 2,184
}


@pytest.fixture
def week_gateway(keys, gateway_factory):
    gw = gateway_factory(keys.config(upstreams=("http://127.0.0.1:9/v1",)))
    scripted_week(gw.state.usage, time.time())
    return gw


def test_who_may_see_the_dashboard(keys, week_gateway):
    user, root = keys.add("alice"), keys.add("root", admin=True)
    gw = week_gateway
    assert httpx.get(gw.url + "/dashboard", headers=auth(user)).status_code == 403
    assert httpx.get(gw.url + "/dashboard", headers=auth(root)).status_code == 200
    assert httpx.get(gw.url + "/dashboard", auth=("admin", root)).status_code == 200  # the browser's Basic prompt
    assert httpx.get(gw.url + "/dashboard", auth=("admin", user)).status_code == 403
    assert httpx.get(gw.url + "/dashboard").status_code == 200  # loopback, no key
    forwarded = httpx.get(gw.url + "/dashboard", headers={"x-forwarded-for": "203.0.113.9"})
    assert forwarded.status_code == 401 and forwarded.headers["www-authenticate"].startswith("Basic")
    page = httpx.get(gw.url + "/dashboard", headers=auth(root)).text
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from outside
    assert "<script" not in page
    # Names only when asked for, and only for users with keys (the scripted ones have none).
    gw.state.usage.record_client(gw.state.user_id("alice"), {"shown": 1})
    assert "alice" not in httpx.get(gw.url + "/dashboard", headers=auth(root)).text
    assert "alice" in httpx.get(gw.url + "/dashboard?names=1", headers=auth(root)).text


@pytest.mark.skipif(bool(BROWSER_MISSING), reason=f"needs {', '.join(BROWSER_MISSING)}")
def test_dashboard_in_headless_chromium(week_gateway, tmp_path):
    from selenium.webdriver.common.by import By

    gw = week_gateway
    driver = start_chromium(tmp_path / "chromium-profile", window="1300,2700")
    try:
        driver.get(gw.url + "/dashboard")  # loopback: no key needed
        assert driver.title == "codeassist team dashboard"
        panels = [e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR, "section.panel")]
        assert panels == ["p-users", "p-acceptance", "p-ttft", "p-e2e", "p-load", "p-gpu", "p-cost", "p-people"]
        figures = {e.get_attribute("data-k"): e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-k]")}
        assert {k: figures.get(k) for k in EXPECTED} == EXPECTED
        # Over-target p99s are flagged.
        assert "bad" in driver.find_element(By.CSS_SELECTOR, "[data-k=ttft_p99]").find_element(
            By.XPATH, ".."
        ).get_attribute("class")
        # The charts are drawn (inline SVG, laid out by the browser) and carry the week's numbers.
        users = driver.find_element(By.ID, "c-users")
        assert users.get_attribute("data-values") == "10,11,12,13,14,15,16"
        assert users.size["width"] > 300 and len(users.find_elements(By.TAG_NAME, "rect")) == 7
        chars = driver.find_element(By.ID, "c-chars").get_attribute("data-values")
        assert chars == ",".join(str(960 * (10 + i)) for i in range(7))
        e2e = driver.find_element(By.ID, "c-e2e")
        assert "target 700 ms" in e2e.text and len(e2e.find_elements(By.TAG_NAME, "polyline")) == 2
        # The last 24 hours by hour: the hours with the scripted rows (yesterday's or today's 09:00 / 14:00) carry the
        # same p99 as every day; the other hours are gaps.
        hourly = driver.find_element(By.ID, "c-e2e-24h").get_attribute("data-values")
        p99 = hourly.split(";")[1].removeprefix("p99 (24 h)=").split(",")
        assert len(p99) == 24 and {v for v in p99 if v} == {"963.25"} and 1 <= sum(1 for v in p99 if v) <= 3
        ttft = driver.find_element(By.ID, "c-ttft")
        assert "target 100 ms" in ttft.text
        assert driver.find_element(By.ID, "c-acceptance").get_attribute("data-values") == "rate %=" + ",".join(
            ["30"] * 7
        )
        rows = driver.find_elements(By.CSS_SELECTOR, "#users tr")
        assert len(rows) == 17  # header + 16 pseudonymous users
        assert rows[1].find_elements(By.TAG_NAME, "td")[0].text == f"{0:016x}"
        shot = tmp_path / "dashboard.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        target = os.environ.get("CODEASSIST_DASHBOARD_SCREENSHOT")
        if target:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, target)
        print(f"dashboard screenshot: {target or shot}")
    finally:
        driver.quit()
