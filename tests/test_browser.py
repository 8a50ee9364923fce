"""The report page in a real browser: no console errors, filters hide and show rows, a failure's
repro is visible. Needs Debian's chromium and chromium-driver (installed by .ci/run) and selenium;
skips with the reason where they are absent."""

import json
import os
import shutil
from pathlib import Path

import pytest

from reports import render
from tests.helpers import run_pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
)
# The screenshot goes to the test's temporary directory, or where BROWSER_SCREENSHOT_DIR says
# (a CI artifact folder): the test writes nothing into the checkout.
SCREENSHOT_DIR = os.environ.get("BROWSER_SCREENSHOT_DIR")


@pytest.fixture
def page(tmp_path):
    header = {"type": "environment", "source": "browser-test", "devices": ["cpu", "cuda"], "end": "x", "torch": "2.13.0"}
    records = [
        {
            "type": "result",
            "nodeid": "conformance/test_views.py::test_permute_is_a_view[cpu-float32]",
            "behaviour": "views.permute_shares",
            "device": "cpu",
            "dtype": "float32",
            "status": "failed",
            "error": "AssertionError: permute: expected a view <script>alert(1)</script>",
            "example": "TensorSpec(shape=(2, 3), layout='sliced')",
            "repro_line": "pytest 'conformance/test_views.py::test_permute_is_a_view[cpu-float32]' --device cpu",
        },
        {
            "type": "result",
            "nodeid": "conformance/test_views.py::test_narrow_is_a_view[cpu-float32]",
            "behaviour": "views.narrow_shares",
            "device": "cpu",
            "dtype": "float32",
            "status": "passed",
            "examples": 25,
            "features": {"layout=sliced": 4},
        },
        {
            "type": "result",
            "nodeid": "conformance/test_views.py::test_narrow_is_a_view[cuda]",
            "behaviour": "views.narrow_shares",
            "device": "cuda",
            "dtype": None,
            "status": "skipped",
            "reason": "CUDA is not available",
        },
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("\n".join(json.dumps(r) for r in [header, *records]) + "\n")
    out = tmp_path / "index.html"
    render.write_html([results], out)
    return out


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def visible_behaviours(driver):
    return [e.get_attribute("id") for e in driver.find_elements("css selector", "details.behaviour") if e.is_displayed()]


def test_report_page_works_in_chromium(page, browser):
    from selenium.webdriver.support.ui import Select

    browser.get(page.as_uri())
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    assert browser.execute_script("return document.querySelector('script:not([src])') !== null")
    assert "views.permute_shares" in visible_behaviours(browser)
    assert "views.narrow_shares" in visible_behaviours(browser)

    # Each statement shows the documented sentence it rests on; observed behaviour is marked apart.
    quote = browser.find_element("css selector", "details[id='views.permute_shares'] blockquote.quote")
    assert quote.is_displayed() and "Returns a view of the original tensor" in quote.text
    behaviour = browser.find_element("css selector", "details[id='views.permute_shares']")
    browser.execute_script("arguments[0].scrollIntoView()", behaviour)
    assert behaviour.screenshot(str(Path(SCREENSHOT_DIR or page.parent) / "browser-quote.png"))
    observed = browser.find_element("css selector", "details[id='losses.nll_all_ignored_observed'] .observed-kind")
    assert "observed behaviour, not a documented promise" in observed.get_attribute("textContent")

    repro = browser.find_element("css selector", "details[id='views.permute_shares'] pre.repro-line")
    assert repro.is_displayed() and "test_permute_is_a_view[cpu-float32]" in repro.text
    assert "<script>alert(1)</script>" in browser.find_element("css selector", "div.failure pre").text

    Select(browser.find_element("name", "status")).select_by_value("failed")
    shown = visible_behaviours(browser)
    assert shown == ["views.permute_shares"], shown
    assert "status=failed" in browser.current_url

    Select(browser.find_element("name", "status")).select_by_value("")
    box = browser.find_element("name", "q")
    box.send_keys("views.narrow_shares")
    assert visible_behaviours(browser) == ["views.narrow_shares"]
    box.clear()
    box.send_keys(" ")  # any input event re-applies the filters
    assert len(visible_behaviours(browser)) > 2

    browser.get("about:blank")
    browser.get(page.as_uri() + "#device=cuda")  # state lives in the URL
    assert Select(browser.find_element("name", "device")).first_selected_option.text == "cuda"
    shot = Path(SCREENSHOT_DIR or page.parent) / "browser-test.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot))


@pytest.fixture(scope="module")
def faulty_report(tmp_path_factory):
    """A real run with a fault injected: naive softmax, which overflows to NaN."""
    out = tmp_path_factory.mktemp("faulty")
    run_pytest(
        "--behaviour=softmax",
        "--inject-fault=softmax_naive_exp",
        "--hypothesis-profile=faults",
        "-p",
        "no:randomly",
        f"--report-dir={out}",
    )
    return out / "index.html"


def test_the_first_screen_answers_does_this_build_conform(faulty_report, browser):
    html = faulty_report.read_text()
    # without JavaScript: the verdict and the matrix are in the page as served, before any script
    assert html.index('id="verdict"') < html.index("<script>") and "Does not conform" in html
    browser.get(faulty_report.as_uri())
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    verdict = browser.find_element("id", "verdict")
    matrix = browser.find_element("id", "glance-matrix")
    height = browser.execute_script("return window.innerHeight")
    assert verdict.is_displayed() and verdict.text.startswith("Does not conform:")
    assert matrix.is_displayed() and matrix.location["y"] < height, "the area matrix is below the first screen"
    softmax_row = next(r for r in matrix.find_elements("css selector", "tr") if "Softmax" in r.text)
    assert "✗" in softmax_row.text and "g-fail" in softmax_row.find_element("css selector", "td").get_attribute("class")
    failure = next(f for f in browser.find_elements("css selector", ".glance-failure") if "softmax.range_and_sum" in f.text)
    # statement, documented quote, falsifying input and repro: all shown without expanding anything
    for selector, text in (
        ("p", "softmax.range_and_sum"),
        ("blockquote.quote", "sum to 1"),
        ("pre.example", "Failing test case"),
        ("pre.repro-line", "--inject-fault=softmax_naive_exp"),
    ):
        element = failure.find_element("css selector", selector)
        assert element.is_displayed() and text in element.text, selector
    shots = Path(SCREENSHOT_DIR or faulty_report.parent)
    shots.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shots / "browser-at-a-glance.png"))
    # the standalone repro: torch only, shown unexpanded, with a working copy button
    script = failure.find_element("css selector", "pre.repro")
    assert script.is_displayed() and "import torch" in script.text and "torch.nn.functional.softmax(" in script.text
    assert "conformance" not in script.text.split("import torch", 1)[1], "the script uses the suite"
    button = failure.find_element("css selector", "button.copy")
    assert button.is_displayed()
    browser.execute_script("arguments[0].scrollIntoView()", button)
    button.click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 5).until(lambda _: button.text != "copy")  # the clipboard answers asynchronously
    assert button.text in ("copied", "selected: copy with Ctrl+C"), button.text
    shots = Path(SCREENSHOT_DIR or faulty_report.parent)
    shots.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shots / "browser-standalone-repro.png"))
