"""The operations console in a real browser: sign in, watch the system, restock, and the shop shows it; CSRF
and a missing session refused."""
import uuid

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from conftest import ADMIN_TOKEN, PHONE, available, shot, wait


def sign_in(driver, server, token=ADMIN_TOKEN):
    driver.get(server.url + "/admin/console")
    wait(driver).until(EC.url_contains("/admin/sign-in"))
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "main form button").click()


def test_sign_in_watch_restock_and_the_shop_shows_it(server, browser, screenshots):
    product = server.create_product("Console Lamp", stock=1, price_minor=4500)
    driver = browser()
    sign_in(driver, server, token="not-the-token")
    wait(driver).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".message"), "not right"))
    shot(driver, screenshots, "console-sign-in-desktop")
    sign_in(driver, server)
    wait(driver).until(EC.url_contains("/admin/console"))
    cookie = driver.get_cookie("sf_admin")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin"
    assert driver.execute_script("return document.cookie").find("sf_admin") == -1, "scripts cannot read the session"

    # The live view: a purchase made now shows in the outcomes and in the event tail without a reload.
    assert driver.find_element(By.ID, "ready").text == "ready"
    assert "database" in driver.find_element(By.ID, "dependencies").text
    driver.execute_script("window.__sameDocument = true")
    status, _ = server.call("POST", "/purchase", {"productId": product, "qty": 1}, {"Idempotency-Key": f"console-{uuid.uuid4()}"})
    assert status == 201
    wait(driver).until(lambda d: any("SagaStarted" in li.text and f"product {product}" in li.text
                                     for li in d.find_elements(By.CSS_SELECTOR, "#events li")))
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#purchases tr[data-outcome="CONFIRMED"]'))
    assert driver.execute_script("return window.__sameDocument === true"), "updated in place"
    driver.set_window_size(1280, 1500)  # the whole dashboard, event tail included
    shot(driver, screenshots, "console-dashboard-desktop")
    driver.set_window_size(1280, 900)

    # Restock from the products page; the shop shows the new availability.
    driver.find_element(By.LINK_TEXT, "Products").click()
    for _ in range(20):
        rows = driver.find_elements(By.CSS_SELECTOR, f'tr[data-product-id="{product}"]')
        if rows:
            break
        driver.find_element(By.CSS_SELECTOR, "a[rel=next]").click()
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-product-id="{product}"]')
    assert row.find_element(By.CSS_SELECTOR, ".available").text == "0"
    field = row.find_element(By.NAME, "qty")
    field.clear()
    field.send_keys("12")
    row.find_element(By.CSS_SELECTOR, "button").click()
    wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, f'tr[data-product-id="{product}"] .available').text == "12")
    shot(driver, screenshots, "console-products-desktop")
    assert available(server, product) == 12
    driver.get(f"{server.url}/shop/products/{product}")
    assert driver.find_element(By.ID, "availability").text == "12 in stock"

    # A product's page: edit the name.
    driver.get(f"{server.url}/admin/console/products/{product}")
    name = driver.find_element(By.ID, "name")
    name.clear()
    name.send_keys("Console Lamp, renamed")
    driver.find_element(By.CSS_SELECTOR, "form.stack button").click()
    wait(driver).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".message.ok"), "Saved"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Console Lamp, renamed"
    shot(driver, screenshots, "console-product-desktop")

    # Sign out: the console is closed again.
    driver.find_element(By.CSS_SELECTOR, "button.link").click()
    wait(driver).until(EC.url_contains("/admin/sign-in"))
    driver.get(server.url + "/admin/console")
    assert "/admin/sign-in" in driver.current_url


def test_writes_without_csrf_token_or_session_are_refused(server, browser):
    product = server.create_product("Guarded Vase", stock=3)
    driver = browser()
    sign_in(driver, server)
    wait(driver).until(EC.url_contains("/admin/console"))
    driver.get(f"{server.url}/admin/console/products/{product}")
    # A form whose CSRF token is gone (or was never known, as on another site's page): refused, nothing changes.
    driver.execute_script("for (const f of document.querySelectorAll('input[name=csrf]')) f.value = 'forged'")
    driver.find_element(By.ID, "restock-qty").send_keys("0")
    driver.find_element(By.CSS_SELECTOR, "form.inline button[type=submit]:not(.link)").click()
    wait(driver).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Refused"))
    assert available(server, product) == 3
    # The JSON API with the session cookie but no X-CSRF-Token: refused.
    status = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/admin/products/%d/restock', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"qty": 5}'})
          .then((r) => done(r.status), () => done(-1));""" % product)
    assert status == 403
    assert available(server, product) == 3
    # A browser without a session: pages send it to sign-in, writes are refused.
    stranger = browser(size=PHONE)
    stranger.get(f"{server.url}/admin/console/products/{product}")
    assert "/admin/sign-in" in stranger.current_url
    status = stranger.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/admin/console/products/%d/restock', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
              body: 'qty=5&csrf=x'}).then((r) => done(r.redirected ? r.url : r.status), () => done(-1));""" % product)
    assert str(status).endswith("/admin/sign-in"), status
    assert available(server, product) == 3


def test_console_pages_at_phone_width(server, browser, screenshots):
    product = server.create_product("Phone Console Cup", stock=2)
    driver = browser(size=PHONE)
    sign_in(driver, server)
    wait(driver).until(EC.url_contains("/admin/console"))
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "ready"), "ready"))
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"), "no sideways scrolling"
    shot(driver, screenshots, "console-dashboard-phone")
    driver.get(f"{server.url}/admin/console/products/{product}")
    assert driver.find_element(By.ID, "available").text == "2"
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"), "no sideways scrolling"
    shot(driver, screenshots, "console-product-phone")
