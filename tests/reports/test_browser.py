"""The HTML report in a real browser: headless Chromium via selenium + chromedriver.

Skipped (with the reason) when selenium, /usr/bin/chromium or
/usr/bin/chromedriver is absent.
"""
from __future__ import annotations

import os
import shutil

import pytest

from conv_conformance.reports import html as report_html
from conv_conformance.reports import scoreboard

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (test extra)")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("headless Chromium needs the Debian packages chromium and chromium-driver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


def _open(browser, path):
    browser.get(path.as_uri())
    browser.get_log("browser")  # drain anything from before the page


def _console_errors(browser):
    return [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _no_alert(browser):
    try:
        browser.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def test_report_page(browser, real, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(report_html.render(real["mixed"]), "utf-8")
    _open(browser, path)
    table = browser.find_element(By.ID, "scoreboard")
    conv2d = next(row.text for row in table.find_elements(By.TAG_NAME, "tr") if row.text.startswith("Conv2D "))
    failed = sum(c["layer"] == "Conv2D" and c["verdicts"].get("output") == "fail" for c in real["mixed"]["cases"])
    assert failed > 0 and f"{failed} fail" in conv2d
    failures = browser.find_elements(By.CSS_SELECTOR, "details.failure")
    assert failures and not any(d.get_attribute("open") for d in failures)
    first = failures[0]
    first.find_element(By.TAG_NAME, "summary").click()
    assert first.get_attribute("open") is not None
    repro = first.find_element(By.CSS_SELECTOR, "pre.reproducer")
    assert repro.is_displayed() and "Case.from_json(" in repro.text
    # the page's own script: expand all, then filter
    browser.find_element(By.CSS_SELECTOR, "button[data-toggle=open]").click()
    assert all(d.get_attribute("open") is not None for d in failures)
    box = browser.find_element(By.ID, "filter")
    box.send_keys("ZeroPadding2D")
    shown = [d for d in failures if d.is_displayed()]
    assert shown and len(shown) < len(failures)
    assert all("ZeroPadding2D" in d.text for d in shown)
    # the injected <script> in exception messages is text, not code
    assert "<script>alert(1)</script>" in browser.find_element(By.ID, "failures").text
    assert _no_alert(browser)
    assert _console_errors(browser) == []


def test_scoreboard_page(browser, real, tmp_path):
    md, page = scoreboard.write([real["reference"], real["mixed"]], tmp_path)
    _open(browser, page)
    table = browser.find_element(By.ID, "scoreboard")
    header = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    assert header == ["Layer", "reference", "mixed"]
    assert _console_errors(browser) == []
