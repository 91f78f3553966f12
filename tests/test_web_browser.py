"""The page in a real browser: Debian's headless Chromium driven by Selenium,
against `matcalc serve` on loopback, and against the static site (`matcalc site`)
served by a plain static server.  A person's moves: type, read the typeset
result, switch every tab, copy, download, show steps, change a kind in the
inputs table, make an error, follow a share link, use a phone-sized window.

Skipped without chromium, chromedriver or selenium, except under CI=true
(.ci/run installs them)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from matcalc.web import service

from .test_web import ROOT, free_port, need, running_server

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"):
    pytest.skip("needs Debian's chromium and chromium-driver", allow_module_level=True)
webdriver = need("selenium.webdriver")
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

TABS = ["text", "latex", "numpy", "jax", "torch", "array-api"]


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    options = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--disable-gpu"]:
        options.add_argument(arg)
    options.binary_location = CHROMIUM or "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(CHROMEDRIVER or "/usr/bin/chromedriver"))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser):
    with running_server() as (base, _):
        browser.execute_cdp_cmd("Browser.grantPermissions", {
            "origin": base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
        yield base, browser


def el(driver, id_):
    return driver.find_element(By.ID, id_)


def wait(driver, condition, seconds: float = 20):
    """Until condition() holds; the page may redraw the table or the result meanwhile."""
    return WebDriverWait(driver, seconds, poll_frequency=0.1,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                         ).until(lambda d: condition())


def output(driver) -> str:
    return el(driver, "format-output").get_attribute("textContent")


def type_expression(driver, text: str) -> None:
    box = el(driver, "expr")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)
    box.send_keys(Keys.CONTROL, Keys.ENTER)


def fresh(base, driver, fragment: str = "") -> None:
    driver.get(base + "/" + fragment)
    wait(driver, lambda: el(driver, "result").find_elements(By.CLASS_NAME, "katex"))


def expected(**body) -> dict:
    status, out = service.answer({"command": "grad", **body})
    assert status == 200
    return out


def test_typing_an_expression_shows_typeset_mathematics(page):
    base, d = page
    fresh(base, d)
    type_expression(d, "x'*A*x")
    wait(d, lambda: output(d) == "(A + A')*x")
    annotation = el(d, "result").find_element(By.CSS_SELECTOR, "annotation").get_attribute("textContent")
    assert annotation == expected(expr="x'*A*x", wrt=["x"])["formats"]["latex"]
    # KaTeX drew it with its own fonts, from the package
    assert d.execute_script("return document.fonts.check('16px KaTeX_Main')")


def test_every_tab_copy_and_download(page, downloads):
    base, d = page
    fresh(base, d)
    type_expression(d, "norm2(X*w - y)^2")
    want = expected(expr="norm2(X*w - y)^2", wrt=["X"])["formats"]
    wait(d, lambda: output(d) == want["text"])
    for fmt in TABS:
        d.find_element(By.CSS_SELECTOR, f'[role="tab"][data-format="{fmt}"]').click()
        wait(d, lambda: output(d) == want[fmt])
        el(d, "copy").click()
        wait(d, lambda: el(d, "copy-status").text == "Copied")
        copied = d.execute_async_script("navigator.clipboard.readText().then(arguments[0])")
        assert copied == want[fmt]
        el(d, "download").click()
        name = {"text": ".txt", "latex": ".tex"}.get(fmt, f"_{fmt.replace('-', '_')}.py")
        target = downloads / f"matcalc_grad{name}"
        try:
            wait(d, lambda: target.exists() and target.read_text() == want[fmt] + "\n")
        except Exception:
            raise AssertionError((fmt, sorted(p.name for p in downloads.iterdir())))
    # the keyboard moves between tabs too
    d.find_element(By.CSS_SELECTOR, '[role="tab"][aria-selected="true"]').send_keys(Keys.HOME)
    wait(d, lambda: output(d) == want["text"])
    d.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    wait(d, lambda: output(d) == want["latex"])


def test_steps_are_one_click_away(page):
    base, d = page
    fresh(base, d)
    d.find_element(By.CSS_SELECTOR, '[role="tab"][data-format="text"]').click()
    el(d, "steps").click()
    want = expected(expr="f: function\na = W*h + b\nL = f(a)", wrt=["W"], steps=True)["formats"]
    wait(d, lambda: output(d) == want["text"])
    assert "A : BC = ACᵀ : B" in output(d)
    assert "align" in el(d, "result").find_element(By.CSS_SELECTOR, "annotation").get_attribute("textContent")


def test_choosing_a_kind_in_the_table_is_a_let_and_changes_the_result(page):
    base, d = page
    fresh(base, d)
    type_expression(d, "x'*A*x")
    wait(d, lambda: output(d) == "(A + A')*x")
    row = d.find_element(By.CSS_SELECTOR, '#inputs tr[data-name="A"]')
    assert "assumed" in row.get_attribute("class")            # the kind came from the name
    Select(row.find_element(By.TAG_NAME, "select")).select_by_value("symmetric")
    wait(d, lambda: output(d) == "2*A*x")
    assert el(d, "lets").text == "--let 'A: symmetric(n)'"
    row = d.find_element(By.CSS_SELECTOR, '#inputs tr[data-name="A"]')
    assert "assumed" not in row.get_attribute("class")
    # typing a shape is a --let as well: A becomes 3×3, x follows
    shape = row.find_element(By.CSS_SELECTOR, "input[type=text]")
    shape.send_keys(Keys.CONTROL, "a")
    shape.send_keys("3", Keys.ENTER)
    wait(d, lambda: d.find_element(By.CSS_SELECTOR, '#inputs tr[data-name="x"] input[type=text]')
         .get_attribute("value") == "3")


def test_an_error_shows_the_caret_and_keeps_the_input(page):
    base, d = page
    fresh(base, d)
    typed = "a = A*x\nL = a'*tarce(B)"
    type_expression(d, typed)
    wait(d, lambda: el(d, "error-box").is_displayed())
    status, out = service.answer({"expr": typed, "wrt": ["x"]})
    assert status == 400
    assert el(d, "error").get_attribute("textContent") == out["error"]["rendered"]
    assert "^^^^^" in out["error"]["rendered"] and "line 2, column 8" in out["error"]["rendered"]
    assert el(d, "expr").get_attribute("value") == typed


def test_a_share_link_restores_the_page(page):
    base, d = page
    fresh(base, d)
    type_expression(d, "sum(log(1 + exp(-y .* (X*w))))")
    Select(el(d, "command")).select_by_value("hessian")
    d.find_element(By.CSS_SELECTOR, '[role="tab"][data-format="jax"]').click()
    want = service.answer({"command": "hessian", "expr": "sum(log(1 + exp(-y .* (X*w))))", "wrt": ["y"]})
    wait(d, lambda: "#s=" in d.current_url and output(d) == want[1]["formats"]["jax"])
    el(d, "share").click()
    wait(d, lambda: el(d, "copy-status").text == "Share link copied")
    link = d.execute_async_script("navigator.clipboard.readText().then(arguments[0])")
    assert link == d.current_url
    d.get("about:blank")
    d.get(link)
    wait(d, lambda: output(d) == want[1]["formats"]["jax"])
    assert el(d, "expr").get_attribute("value") == "sum(log(1 + exp(-y .* (X*w))))"
    assert Select(el(d, "command")).first_selected_option.get_attribute("value") == "hessian"


def test_the_check_and_the_claim_box(page):
    base, d = page
    fresh(base, d)
    el(d, "check").click()
    wait(d, lambda: el(d, "check-verdict").text.startswith("✓ check: passed"))
    el(d, "claim").send_keys("h*grad_f(a)'")             # the transposed slip
    el(d, "claim-go").click()
    wait(d, lambda: el(d, "claim-verdict").text.startswith("✗"))
    assert "the other layout" in el(d, "claim-verdict").text
    el(d, "claim").send_keys(Keys.CONTROL, "a")
    el(d, "claim").send_keys("grad_f(a)*h'", Keys.ENTER)
    wait(d, lambda: el(d, "claim-verdict").text.startswith("✓"))
    # a claim that does not parse: the derivation still shows, the caret is under the claim
    el(d, "claim").send_keys(Keys.CONTROL, "a")
    el(d, "claim").send_keys("grad_f(a)*", Keys.ENTER)
    wait(d, lambda: "--> --claim" in el(d, "claim-verdict").text)
    assert "^" in el(d, "claim-verdict").text and output(d) == "grad_f(a)*h'"


def test_the_gallery_and_a_phone_sized_window(page):
    base, d = page
    fresh(base, d)
    el(d, "gallery-box").find_element(By.TAG_NAME, "summary").click()
    examples = d.find_elements(By.CSS_SELECTOR, "#gallery button")
    assert len(examples) == len(json.loads((ROOT / "matcalc/web/static/examples.json").read_text()))
    examples[7].click()                              # the two-layer perceptron
    wait(d, lambda: "grad_W1" in output(d))
    d.set_window_size(390, 844)
    try:
        assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        d.set_window_size(1280, 900)


# ---- the static site ----------------------------------------------------------------

@contextlib.contextmanager
def static_server(directory: Path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(directory), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_static_site_derives_in_the_browser(browser, tmp_path):
    if not shutil.which("npm") and not os.environ.get("CI"):
        pytest.skip("matcalc site fetches Pyodide with npm")
    built = subprocess.run([sys.executable, "-m", "matcalc", "site", str(tmp_path / "site")],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert built.returncode == 0, built.stderr
    with static_server(tmp_path / "site") as base:
        d = browser
        d.get(base + "/")
        wait(d, lambda: output(d) == "grad_f(a)*h'", 180)          # Pyodide starts, matcalc answers
        type_expression(d, "logdet(X) + tr(A*X)")
        wait(d, lambda: output(d) == expected(expr="logdet(X) + tr(A*X)", wrt=["X"])["formats"]["text"])
        type_expression(d, "x'*A*y + ")
        wait(d, lambda: el(d, "error-box").is_displayed())
        assert "^" in el(d, "error").get_attribute("textContent")
        type_expression(d, "x'*A*x")
        el(d, "check").click()                # no NumPy in Pyodide's npm package: said, not failed
        wait(d, lambda: el(d, "check-verdict").text != "", 60)
        assert el(d, "check-verdict").text.startswith("check unavailable") or "passed" in el(d, "check-verdict").text
        el(d, "claim").send_keys("2*A*x", Keys.ENTER)
        wait(d, lambda: el(d, "claim-verdict").text != "", 60)
        assert "cannot be checked here" in el(d, "claim-verdict").text or "✗" in el(d, "claim-verdict").text
