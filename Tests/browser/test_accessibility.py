"""Accessibility, checked by axe-core (WCAG 2.1 A and AA, plus its best practices) in Chromium on every page of
the shop and the console, at desktop and phone width, in the states people meet (a refusal shown, an order
compensated); and the keyboard: a skip link first, focus in reading order, the Buy form reachable."""
import uuid

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from conftest import DESKTOP, MISSING_PRODUCT, PHONE, axe_violations, wait
from test_console import sign_in


def check(driver, page):
    violations = axe_violations(driver)
    assert not violations, f"{page}:\n" + "\n".join(violations)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_shop_pages_pass_axe(server, simulator, browser, size):
    product = server.create_product("Accessible Jug", stock=3, price_minor=2400)
    driver = browser(size=size)
    driver.get(server.url + "/")
    check(driver, "catalogue")
    driver.get(f"{server.url}/shop/products/{product}")
    check(driver, "product")
    # A refusal on the product page (declined card), then the compensated order's timeline.
    simulator.payments(decline_rate=1.0)
    driver.find_element(By.CSS_SELECTOR, "form.buy button").click()
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "message"), "declined"))
    check(driver, "product, payment declined")
    driver.find_element(By.LINK_TEXT, "See what happened").click()
    wait(driver).until(EC.url_contains("/shop/orders/"))
    check(driver, "order, compensated")
    simulator.payments()
    status, order = server.call("POST", "/purchase", {"productId": product, "qty": 1}, {"Idempotency-Key": f"a11y-{uuid.uuid4()}"})
    assert status == 201, order
    driver.get(f"{server.url}/shop/orders/{order['orderId']}")
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "order-status"), "Confirmed"))
    check(driver, "order, confirmed")
    driver.get(f"{server.url}/shop/products/{MISSING_PRODUCT}")
    check(driver, "product not found")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_console_pages_pass_axe(server, browser, size):
    product = server.create_product("Accessible Console Cup", stock=2)
    status, _ = server.call("POST", "/purchase", {"productId": product, "qty": 1}, {"Idempotency-Key": f"a11y-{uuid.uuid4()}"})
    assert status == 201  # so that the dashboard's event tail has something to show
    driver = browser(size=size)
    sign_in(driver, server, token="wrong")
    wait(driver).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".message"), "not right"))
    check(driver, "sign-in, refused")
    sign_in(driver, server)
    wait(driver).until(EC.url_contains("/admin/console"))
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#events li"))  # the live parts filled in
    check(driver, "dashboard")
    driver.get(server.url + "/admin/console/products")
    check(driver, "products")
    driver.get(server.url + "/admin/console/products/new")
    check(driver, "new product")
    driver.find_element(By.CSS_SELECTOR, "form.stack button").click()  # empty: the browser's own validation stops it
    driver.get(f"{server.url}/admin/console/products/{product}")
    check(driver, "product")


def test_the_keyboard_reaches_everything_in_reading_order(server, browser):
    product = server.create_product("Keyboard Bowl", stock=5)
    driver = browser()
    driver.get(f"{server.url}/shop/products/{product}")
    assert not driver.find_elements(By.CSS_SELECTOR, "[tabindex]:not([tabindex='-1']):not([tabindex='0'])"), "no positive tabindex"
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    first = driver.switch_to.active_element
    assert first.text == "Skip to content" and first.is_displayed(), "the skip link is first, and shows when focused"
    first.send_keys(Keys.ENTER)
    assert driver.switch_to.active_element.get_attribute("id") == "main", "the skip link moves focus to the content"
    # From the content: Tab walks the focusable elements in document order and reaches quantity, then Buy.
    order = driver.execute_script("""
        return [...document.querySelectorAll('main a[href], main input:not([type=hidden]), main button, main select, main textarea')]
          .filter((e) => !e.disabled && e.offsetParent !== null).map((e) => e.id || e.name || e.textContent.trim());""")
    seen = []
    for _ in range(len(order)):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        active = driver.switch_to.active_element
        seen.append(active.get_attribute("id") or active.get_attribute("name") or active.text.strip())
    assert seen == order, (seen, order)
    assert seen.index("qty") < seen.index("Buy"), seen
    # Buy with the keyboard alone: Enter in the quantity field submits.
    qty = driver.find_element(By.ID, "qty")
    qty.send_keys(Keys.CONTROL, "a")
    qty.send_keys("2", Keys.ENTER)
    wait(driver).until(EC.url_contains("/shop/orders/"))
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "order-status"), "Confirmed"))
