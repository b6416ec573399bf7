"""The shop in a real browser: browse, buy, watch the order; the last unit, a busy product, a declined card,
and the whole thing without JavaScript. Screenshots of each page at desktop and phone width."""
import threading
import time
import uuid

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from conftest import PHONE, available, shot, shot_phone, wait


def open_from_catalogue(driver, server, name):
    """Starts at / and follows the pager until the product's link shows, then opens it."""
    driver.get(server.url + "/")
    for _ in range(50):
        links = driver.find_elements(By.LINK_TEXT, name)
        if links:
            links[0].click()
            wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, "article.product")))
            return
        driver.find_element(By.CSS_SELECTOR, "a[rel=next]").click()
    raise AssertionError(f"{name} is not in the catalogue")


def buy(driver, qty=1):
    field = driver.find_element(By.ID, "qty")
    field.clear()
    field.send_keys(str(qty))
    driver.find_element(By.CSS_SELECTOR, "form.buy button").click()


def timeline(driver):
    return [li.find_element(By.CSS_SELECTOR, ".name").text for li in driver.find_elements(By.CSS_SELECTOR, "#timeline li")]


def test_browse_buy_and_the_order_is_confirmed(server, browser, screenshots):
    product = server.create_product("Blue Mug", stock=20, price_minor=1250)
    for i in range(3):
        server.create_product(f"Catalogue filler {i}", stock=5 + i, price_minor=499 + 100 * i, currency="USD")
    driver = browser()
    driver.get(server.url + "/")
    shot(driver, screenshots, "catalogue-desktop")
    open_from_catalogue(driver, server, "Blue Mug")
    assert driver.find_element(By.CSS_SELECTOR, ".price").text == "€12.50"
    assert driver.find_element(By.ID, "availability").text == "20 in stock"
    shot(driver, screenshots, "product-desktop")
    buy(driver, qty=2)
    wait(driver).until(EC.url_contains("/shop/orders/"))
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "order-status"), "Confirmed"))
    assert timeline(driver) == ["Purchase started", "Stock reserved", "Order created", "Payment", "Order confirmed"]
    assert driver.find_element(By.ID, "saga-state").text == "CONFIRMED"
    shot(driver, screenshots, "order-desktop")
    assert available(server, product) == 18


def test_pages_at_phone_width(server, browser, screenshots):
    product = server.create_product("Phone Case", stock=4, price_minor=899, currency="GBP")
    driver = browser(size=PHONE)
    driver.get(server.url + "/")
    shot(driver, screenshots, "catalogue-phone")
    open_from_catalogue(driver, server, "Phone Case")
    assert driver.find_element(By.ID, "availability").text == "Only 4 left"
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    shot(driver, screenshots, "product-phone")
    buy(driver)
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "order-status"), "Confirmed"))
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    shot(driver, screenshots, "order-phone")
    assert available(server, product) == 3


def saga_of(server, product, timeout=10):
    """The in-flight saga of a product (from the admin API), once it exists."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, sagas = server.call("GET", "/admin/sagas", admin=True)
        found = next((s for s in sagas["items"] if s["productId"] == product), None)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no saga in flight for product {product}")


def test_the_order_page_follows_a_saga_still_running(server, simulator, browser, screenshots):
    product = server.create_product("Slow Lamp", stock=5)
    driver = browser()  # started before the purchase: the page must be read while the payment (4 s; the call timeout is 5 s) is pending
    simulator.payments(latency_ms=4000)
    answers = []
    purchase = threading.Thread(target=lambda: answers.append(
        server.call("POST", "/purchase", {"productId": product, "qty": 1}, {"Idempotency-Key": f"live-{uuid.uuid4()}"})))
    purchase.start()
    order_id = None
    deadline = time.time() + 10
    while order_id is None and time.time() < deadline:
        order_id = saga_of(server, product).get("orderId")
        time.sleep(0.02)
    assert order_id, "the saga created its order"
    driver.get(f"{server.url}/shop/orders/{order_id}")
    assert "Processing" in driver.find_element(By.ID, "order-status").text
    assert driver.find_element(By.ID, "live").is_displayed()
    shot(driver, screenshots, "order-running-desktop")
    # No reload: the page's script swaps in the new status when the payment answers.
    marker = driver.execute_script("window.__sameDocument = true; return 1")
    wait(driver, 20).until(EC.text_to_be_present_in_element((By.ID, "order-status"), "Confirmed"))
    assert driver.execute_script("return window.__sameDocument === true") and marker == 1, "updated in place"
    assert timeline(driver)[-1] == "Order confirmed"
    assert not driver.find_elements(By.ID, "live")
    purchase.join(30)
    assert answers and answers[0][0] == 201


def test_two_tabs_buy_the_last_unit_one_wins(server, simulator, browser):
    product = server.create_product("Last Teapot", stock=1)
    simulator.payments(latency_ms=1500)
    first, second = browser(), browser()
    for driver in (first, second):
        driver.get(f"{server.url}/shop/products/{product}")
    for driver in (first, second):
        driver.find_element(By.CSS_SELECTOR, "form.buy button").click()
    # The winner lands on its confirmed order; the other is told there is not enough stock (after waiting out
    # "busy" while the winner held the product's lock).
    outcomes = {}

    def settled(driver):
        try:
            if "/shop/orders/" in driver.current_url:
                return "won" if "Confirmed" in driver.find_element(By.ID, "order-status").text else None
            text = driver.find_element(By.ID, "message").text
            return "sold out" if "Not enough stock" in text else None
        except WebDriverException:  # between two pages
            return None

    deadline = time.time() + 30
    while len(outcomes) < 2 and time.time() < deadline:
        for name, driver in (("first", first), ("second", second)):
            if name not in outcomes:
                result = settled(driver)
                if result:
                    outcomes[name] = result
        time.sleep(0.1)
    assert sorted(outcomes.values()) == ["sold out", "won"], outcomes
    assert available(server, product) == 0
    loser = first if outcomes["first"] == "sold out" else second
    loser.refresh()
    assert loser.find_element(By.ID, "availability").text == "Sold out"
    assert not loser.find_element(By.CSS_SELECTOR, "form.buy button").is_enabled()


def test_a_busy_product_is_retried_by_itself(server, simulator, browser, screenshots):
    product = server.create_product("Busy Kettle", stock=10)
    simulator.payments(latency_ms=3000)
    holder = threading.Thread(target=lambda: server.call("POST", "/purchase", {"productId": product, "qty": 1},
                                                         {"Idempotency-Key": f"holder-{uuid.uuid4()}"}))
    driver = browser()
    driver.get(f"{server.url}/shop/products/{product}")
    holder.start()
    saga_of(server, product)  # the other buyer now holds the product's lock, for the 3 s its payment takes
    buy(driver)
    wait(driver, 10).until(EC.text_to_be_present_in_element((By.ID, "message"), "Busy, retrying"))
    button = driver.find_element(By.CSS_SELECTOR, "form.buy button")
    assert not button.is_enabled(), "no second submit while retrying"
    shot(driver, screenshots, "product-busy-desktop")
    shot_phone(driver, screenshots, "product-busy-phone")
    wait(driver, 30).until(EC.url_contains("/shop/orders/"))
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "order-status"), "Confirmed"))
    holder.join(30)
    assert available(server, product) == 8, "two buyers, one unit each"


def test_a_declined_payment_and_its_compensation(server, simulator, browser, screenshots):
    product = server.create_product("Declined Vase", stock=3)
    simulator.payments(decline_rate=1.0)
    driver = browser()
    driver.get(f"{server.url}/shop/products/{product}")
    key_before = driver.find_element(By.NAME, "key").get_attribute("value")
    buy(driver)
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "message"), "declined"))
    assert "Nothing was charged" in driver.find_element(By.ID, "message").text
    assert driver.find_element(By.NAME, "key").get_attribute("value") != key_before, "the next Buy is a new intent"
    shot(driver, screenshots, "product-declined-desktop")
    shot_phone(driver, screenshots, "product-declined-phone")
    driver.find_element(By.LINK_TEXT, "See what happened").click()
    wait(driver).until(EC.url_contains("/shop/orders/"))
    assert "declined" in driver.find_element(By.ID, "order-status").text
    steps = timeline(driver)
    assert steps[:3] == ["Purchase started", "Stock reserved", "Order created"]
    assert steps[3:] == ["Undoing the purchase", "Payment refunded", "Order cancelled", "Stock released"], steps
    undo = driver.find_elements(By.CSS_SELECTOR, "#timeline li")[3]
    assert "compensation" in undo.get_attribute("class") and "declined" in undo.find_element(By.CSS_SELECTOR, ".detail").text
    assert "skipped" in driver.find_elements(By.CSS_SELECTOR, "#timeline li .outcome")[4].text, "nothing to refund"
    shot(driver, screenshots, "order-declined-desktop")
    shot_phone(driver, screenshots, "order-declined-phone")
    assert available(server, product) == 3


def test_buying_without_javascript(server, browser):
    product = server.create_product("Plain Notebook", stock=2, price_minor=350, currency="JPY")
    driver = browser(javascript=False)
    open_from_catalogue(driver, server, "Plain Notebook")
    assert driver.find_element(By.CSS_SELECTOR, ".price").text == "¥350"
    rendered_key = driver.find_element(By.NAME, "key").get_attribute("value")
    buy(driver, qty=3)  # more than there is: the product page again, with the reason
    # a plain form post: the old page's elements go stale while the new one loads, so wait for the new one's text
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "message"), "Not enough stock"))
    assert "/shop/products/" in driver.current_url and driver.find_element(By.NAME, "key").get_attribute("value") != rendered_key
    buy(driver, qty=2)  # a plain form post: the server buys and redirects to the order
    wait(driver).until(EC.url_contains("/shop/orders/"))
    assert "Confirmed" in driver.find_element(By.ID, "order-status").text
    driver.get(f"{server.url}/shop/products/{product}")
    assert driver.find_element(By.ID, "availability").text == "Sold out"
    assert not driver.find_element(By.CSS_SELECTOR, "form.buy button").is_enabled()
    assert available(server, product) == 0
    assert f'purchase (shop form)' in server.log_text(), "bought through the form, not the script"
