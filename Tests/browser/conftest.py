"""Browser tests: Debian's chromium, headless, driven by Selenium through Debian's chromedriver, against a real
`storefront serve` (the embedded default: SQLite, in-process cache/lock/events) started here on a free port.

Run by scripts/browser-test (which scripts/test calls). Screenshots go to $STOREFRONT_SCREENSHOTS
(default .state/screenshots); `scripts/browser-test --update-screenshots` writes docs/screenshots instead.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADMIN_TOKEN = "browser-test-token"
DESKTOP = (1280, 900)
PHONE = (390, 844)
MISSING_PRODUCT = 999999999  # a product id no test creates: its page is the shop's 404


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `storefront serve` process and a small JSON client for its API."""

    def __init__(self, binary, extra_env=None):
        self.directory = tempfile.mkdtemp(prefix="sf-browser-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, STOREFRONT_PORT=str(self.port), STOREFRONT_HOST="127.0.0.1",
                   STOREFRONT_DATABASE_URL=f"sqlite://{self.directory}/shop.db", STOREFRONT_ADMIN_TOKEN=ADMIN_TOKEN,
                   STOREFRONT_LOG_LEVEL="info", STOREFRONT_PURCHASE_MODE="lock", **(extra_env or {}))
        self.log = open(os.path.join(self.directory, "serve.log"), "w")
        self.process = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/health/live", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("storefront serve did not start")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_text(self):
        self.log.flush()
        with open(os.path.join(self.directory, "serve.log")) as f:
            return f.read()

    def call(self, method, path, body=None, headers=None, admin=False):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        if admin:
            request.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def create_product(self, name, stock, price_minor=1999, currency="EUR", description="Made for the browser tests."):
        status, body = self.call("POST", "/admin/products", {
            "sku": f"{name.lower().replace(' ', '-')}-{time.time_ns()}", "name": name, "description": description,
            "priceMinor": price_minor, "currency": currency, "stock": stock}, admin=True)
        assert status == 201, body
        return body["id"]

    def payments(self, latency_ms=0, decline_rate=0.0):
        status, body = self.call("PUT", "/admin/payment-simulator", {
            "latencyMs": latency_ms, "failureRate": 0, "declineRate": decline_rate, "timeoutRate": 0, "hangRate": 0}, admin=True)
        assert status == 200, body


@pytest.fixture(scope="session")
def binary():
    path = os.environ.get("STOREFRONT_BIN", os.path.join(ROOT, ".build", "debug", "storefront"))
    assert os.access(path, os.X_OK), f"no storefront binary at {path} (swift build first)"
    return path


@pytest.fixture(scope="session")
def server(binary):
    s = Server(binary)
    yield s
    s.stop()


@pytest.fixture
def simulator(server):
    """The payment simulator, put back to reliable and instant after the test."""
    yield server
    server.payments()


@pytest.fixture(scope="session")
def screenshots():
    directory = os.environ.get("STOREFRONT_SCREENSHOTS", os.path.join(ROOT, ".state", "screenshots"))
    os.makedirs(directory, exist_ok=True)
    return directory


def wait(driver, seconds=20):
    """Polls until a condition holds. The pages re-render lists as they poll the server, so an
    element found a moment ago may be replaced before it is read: that counts as "not yet"."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, seconds, poll_frequency=0.1,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))


def shot(driver, screenshots, name):
    driver.save_screenshot(os.path.join(screenshots, name + ".png"))


def shot_phone(driver, screenshots, name):
    """The page as it is now, at phone width (the window is emulated at 390 px, then put back)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True})
    try:
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: wider than a phone"
        shot(driver, screenshots, name)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def axe_script():
    """axe-core's script, from the axe-playwright-python wheel (not imported: Playwright is not installed)."""
    import importlib.util
    spec = importlib.util.find_spec("axe_playwright_python")
    assert spec and spec.submodule_search_locations, "axe-playwright-python is missing: run scripts/browser-test"
    with open(os.path.join(list(spec.submodule_search_locations)[0], "axe.min.js"), encoding="utf-8") as f:
        return f.read()


def axe_violations(driver, tags=("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")):
    """axe-core's WCAG 2.1 A/AA and best-practice rules on the page as it is now: the violations, each as
    'rule (impact): targets — help'."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(axe_script())
    driver.set_script_timeout(30)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
        ".then((r) => done(r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,"
        " targets: v.nodes.map((n) => n.target.join(' '))})))).catch((e) => done([{id: 'axe-error', impact: 'error', help: String(e), targets: []}]));",
        list(tags))
    return [f"{v['id']} ({v['impact']}): {', '.join(v['targets'][:5])} — {v['help']}" for v in result]


def available(server, product_id):
    """The product's available units, from the admin API (the primary)."""
    status, product = server.call("GET", f"/admin/products/{product_id}", admin=True)
    assert status == 200, product
    return product["available"]


def make_browser(javascript=True, size=DESKTOP):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                 f"--window-size={size[0]},{size[1]}", "--hide-scrollbars"]:
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    if size[0] < 500:
        # A headless window is at least 500 px wide: emulate the phone's screen instead.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": size[0], "height": size[1], "deviceScaleFactor": 2, "mobile": True})
    return driver


@pytest.fixture
def browser():
    """A factory of headless Chromium windows, all closed after the test; none may log a CSP violation or error."""
    made = []

    def make(javascript=True, size=DESKTOP):
        driver = make_browser(javascript, size)
        made.append(driver)
        return driver

    yield make
    problems = []
    for driver in made:
        for entry in driver.get_log("browser"):
            if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]:
                # An answer the page handles (409 busy, 402 declined, 503 retried, a console form's 403) is logged by
                # Chromium as a failed load; not a bug.
                if ("status of 4" in entry["message"] or "status of 503" in entry["message"]) and (
                        "/purchase" in entry["message"] or "/admin/" in entry["message"] or "/buy " in entry["message"]):
                    continue
                if f"/shop/products/{MISSING_PRODUCT} " in entry["message"] and "status of 404" in entry["message"]:
                    continue  # the not-found page, opened on purpose
                problems.append(entry["message"])
        driver.quit()
    assert not problems, problems
