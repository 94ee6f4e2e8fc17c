"""The console in a real browser: Debian's chromium, driven by chromedriver and Selenium,
against a receiver serving HTTP on 127.0.0.1, fed by a real Alertmanager.

One browser for the whole module (starting chromium is the slow part). The screenshots
of docs/screenshots/ are written by test_screenshots from a fixed scene (captured
Alertmanager posts stored at fixed times, the pages' clock fixed, a fixed window), so
running the tests again writes the same images.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from support.alertmanager import webhook_config
from support.browser import chromium, served
from support.console import TOKENS, VIEWER
from support.receiver import WEBHOOK_TOKEN, tenant_payload
from support.waiting import wait_for

from receiver.app import create_app
from receiver.payload import parse
from receiver.settings import ReceiverSettings
from receiver.store import migrate

OPERATOR = next(t["token"] for t in TOKENS if t["role"] == "operator")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
WINDOW = (1280, 900)
PHONE = (390, 844)


@pytest.fixture(scope="module")
def browser():
    # the same pixels on every run: one scale, no scrollbars, light scheme, sRGB
    with chromium(*WINDOW, extra_args=(
            "--force-device-scale-factor=1", "--hide-scrollbars", "--lang=en-US",
            "--force-color-profile=srgb", "--font-render-hinting=none",
            "--blink-settings=preferredColorScheme=1")) as driver:
        yield driver


class LiveReceiver:
    """The receiver app, to be served over HTTP in this process (support.browser.served:
    threads, as a stream holds one)."""

    def __init__(self, db: Path, **settings) -> None:
        url = f"sqlite:///{db}"
        migrate.upgrade(url)
        self.app = create_app(ReceiverSettings(database_url=url, webhook_token=WEBHOOK_TOKEN,
                                               api_tokens=TOKENS, **settings))
        self.store = self.app.extensions["ticketmon_receiver"].store
        self.url = ""

    @contextmanager
    def serving(self) -> Iterator[LiveReceiver]:
        with served(self.app) as url:
            self.url = url
            yield self
        self.store.dispose()

    def incident_ids(self) -> list[int]:
        return [row["id"] for row in self.app.test_client().get(
            "/api/v1/incidents", headers={"Authorization": f"Bearer {OPERATOR}"}
        ).json["incidents"]]


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    with LiveReceiver(tmp_path_factory.mktemp("console") / "receiver.db").serving() as live:
        yield live


@pytest.fixture
def fresh(browser):
    """Each test starts signed out (the cookie jar is per host, not per port)."""
    browser.delete_all_cookies()
    return browser


def sign_in(driver, base: str, token: str) -> None:
    driver.get(f"{base}/ui/signin")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()
    # click() does not wait for the page it leads to: wait for signed in, or for why not
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".who, #signin-error"), 10,
             "the page after signing in")


def text(driver, css: str) -> str:
    """The element's text; found again when a live update replaced it meanwhile."""
    def read() -> str | None:
        try:
            return driver.find_element(By.CSS_SELECTOR, css).text or None
        except StaleElementReferenceException:
            return None
    return wait_for(read, 5, f"the text of {css}")


def fire(alertmanager, name: str, service: str) -> None:
    """An alert into the real Alertmanager, which groups it and posts it to the receiver."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    alert = {"labels": {"alertname": name, "service": service, "severity": "critical",
                        "tenant": "acme", "instance": f"{service}-1:8080"},
             "annotations": {"summary": f"{name} on {service}",
                             "runbook_url": f"https://runbooks.example.com/{service}"},
             "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up+%3D%3D+0",
             "startsAt": now}
    resp = requests.post(f"{alertmanager.url}/api/v2/alerts", json=[alert], timeout=10)
    assert resp.status_code == 200, resp.text


@pytest.fixture
def alertmanager(start_alertmanager, receiver, workdir):
    token_file = workdir / "webhook-token"
    token_file.write_text(WEBHOOK_TOKEN)
    return start_alertmanager(webhook_config(receiver.url, token_file))


def test_sign_in_see_an_alertmanager_incident_acknowledge_it_and_sign_out(
        fresh, receiver, alertmanager):
    driver = fresh
    before = set(receiver.incident_ids())
    fire(alertmanager, "CheckoutDown", "checkout")
    [incident] = wait_for(lambda: set(receiver.incident_ids()) - before, 30,
                          "Alertmanager's post to make an incident")

    sign_in(driver, receiver.url, OPERATOR)
    assert driver.current_url == f"{receiver.url}/ui/"
    link = driver.find_element(By.CSS_SELECTOR, f'a[href="/ui/incidents/{incident}"]')
    assert link.text == "CheckoutDown on checkout"
    row = driver.find_element(By.ID, f"incident-{incident}")
    assert "open" in row.text and "critical" in row.text
    # keyboard: j focuses the first incident of the list (the newest)
    driver.find_element(By.TAG_NAME, "body").send_keys("j")
    assert driver.switch_to.active_element.get_attribute("data-key") == f"incident-{incident}"

    link.click()
    wait_for(lambda: driver.find_elements(By.ID, "incident-status"), 10, "the incident page")
    assert text(driver, "#incident-status") == "open"
    assert driver.find_element(By.LINK_TEXT, "Runbook (CheckoutDown)").get_attribute("href") \
        == "https://runbooks.example.com/checkout"
    driver.find_element(By.ID, "comment").send_keys("on it")
    driver.find_element(By.ID, "acknowledge").click()
    wait_for(lambda: driver.find_elements(By.ID, "acknowledged-by"), 10, "the acknowledgement")
    assert text(driver, "#incident-status") == "acknowledged"
    assert text(driver, "#acknowledged-by") == "otto"
    assert f"Incident {incident} acknowledged." in text(driver, ".flash")
    assert "on it" in text(driver, "ol.timeline")
    assert not driver.find_elements(By.ID, "acknowledge")

    driver.find_element(By.CSS_SELECTOR, ".who button").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".note"), 10, "the signed-out page")
    assert "You are signed out." in text(driver, ".note")
    driver.get(f"{receiver.url}/ui/incidents/{incident}")
    assert driver.current_url.startswith(f"{receiver.url}/ui/signin")


def test_a_second_incident_appears_without_reloading(fresh, receiver, alertmanager):
    driver = fresh
    sign_in(driver, receiver.url, OPERATOR)
    driver.execute_script("window.notReloaded = true")
    focused = driver.find_elements(By.CSS_SELECTOR, "a.row-link")
    if focused:  # the focus stays where the person left it
        driver.execute_script("arguments[0].focus()", focused[0])
    key = focused[0].get_attribute("data-key") if focused else None
    before = set(receiver.incident_ids())
    fire(alertmanager, "PaymentsDown", "payments")
    [incident] = wait_for(lambda: set(receiver.incident_ids()) - before, 30,
                          "Alertmanager's post to make an incident")
    wait_for(lambda: driver.find_elements(By.ID, f"incident-{incident}"), 5,
             "the new incident to appear in the open list")
    assert driver.execute_script("return window.notReloaded") is True
    assert f"Incident {incident} " in driver.find_element(By.ID, "live-status") \
        .get_attribute("textContent")
    if key:
        assert driver.switch_to.active_element.get_attribute("data-key") == key


def test_the_open_incident_updates_itself(fresh, receiver):
    driver = fresh
    receiver.store.ingest(parse(json.dumps(tenant_payload("acme", "refire-new-episode"))
                                .encode()))
    incident = receiver.incident_ids()[0]
    sign_in(driver, receiver.url, VIEWER)
    driver.get(f"{receiver.url}/ui/incidents/{incident}")
    driver.execute_script("window.notReloaded = true")
    time.sleep(0.3)  # the page's stream is open
    resp = receiver.app.test_client().post(f"/api/v1/incidents/{incident}/acknowledge",
                                           headers={"Authorization": f"Bearer {OPERATOR}"})
    assert resp.status_code == 200
    wait_for(lambda: text(driver, "#incident-status") == "acknowledged", 5,
             "the open incident to show its acknowledgement")
    assert text(driver, "#acknowledged-by") == "otto"
    assert driver.execute_script("return window.notReloaded") is True


def test_a_viewer_sees_no_buttons_and_is_refused(fresh, receiver):
    driver = fresh
    receiver.store.ingest(parse(json.dumps(tenant_payload("acme", "firing")).encode()))
    incident = receiver.incident_ids()[0]
    sign_in(driver, receiver.url, VIEWER)
    driver.get(f"{receiver.url}/ui/incidents/{incident}")
    assert text(driver, "#incident-status") in ("open", "acknowledged")
    assert not driver.find_elements(By.CSS_SELECTOR, "button[name=action]")
    # the form a viewer cannot see, posted anyway with the session's own CSRF token
    driver.execute_script("""
        const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
        f.innerHTML = '<input name="csrf_token" value="' + arguments[1] + '">' +
                      '<input name="action" value="acknowledge">';
        document.body.appendChild(f); f.submit();""",
        f"/ui/incidents/{incident}/act",
        driver.find_element(By.NAME, "csrf_token").get_attribute("value"))
    wait_for(lambda: "Not allowed" in driver.title, 10, "the refusal page")
    assert text(driver, "[role=alert]") == "this needs the operator role; vera has viewer"


def test_an_expired_session_is_refused(fresh, receiver):
    driver = fresh
    _, token = receiver.store.create_token("brief", "operator", "acme",
                                           expires_in=timedelta(seconds=2))
    sign_in(driver, receiver.url, token)
    assert driver.current_url == f"{receiver.url}/ui/"
    time.sleep(2.2)
    driver.get(f"{receiver.url}/ui/")
    assert driver.current_url.startswith(f"{receiver.url}/ui/signin?reason=expired")
    assert text(driver, ".note") == "Your session expired: sign in again."


def test_a_bad_sign_in_says_why(fresh, receiver):
    driver = fresh
    sign_in(driver, receiver.url, "tm_not-a-token-at-all-0123456789")
    assert text(driver, "#signin-error") == "Not signed in: unknown API token."
    assert driver.find_element(By.ID, "token").get_attribute("aria-invalid") == "true"


def test_a_forged_form_without_the_csrf_token_is_refused(fresh, receiver):
    driver = fresh
    sign_in(driver, receiver.url, OPERATOR)
    incident = receiver.incident_ids()[0]
    driver.get(f"{receiver.url}/ui/incidents/{incident}")
    driver.execute_script(
        "document.querySelector('form.act input[name=csrf_token]').value = 'forged'")
    driver.find_element(By.ID, "resolve").click()
    wait_for(lambda: "CSRF" in driver.page_source, 10, "the CSRF refusal")
    assert "the form's CSRF token is missing or wrong" in text(driver, "[role=alert]")


# -- screenshots -------------------------------------------------------------------------
SCENE_NOW = datetime(2026, 11, 22, 4, 47, 0, tzinfo=UTC)
SCENE = [("group-3-firing", "acme", datetime(2026, 11, 22, 4, 35, 40, tzinfo=UTC)),
         ("two-groups-payments", "acme", datetime(2026, 11, 22, 4, 38, 5, tzinfo=UTC)),
         ("two-groups-inventory", "acme", datetime(2026, 11, 22, 4, 41, 30, tzinfo=UTC))]


@pytest.fixture
def scene(tmp_path, monkeypatch):
    """Captured posts stored at fixed times, and the pages' clock fixed after them."""
    live = LiveReceiver(tmp_path / "scene.db", console={"grafana_url": "http://127.0.0.1:3000"})
    for name, tenant, at in SCENE:
        live.store.ingest(parse(json.dumps(tenant_payload(tenant, name)).encode()), now=at)
    monkeypatch.setattr("receiver.console.present.now", lambda: SCENE_NOW)
    with live.serving():
        yield live


def test_screenshots(fresh, scene):
    """docs/screenshots/: the list, an incident (whole page) and the incident on a phone."""
    driver = fresh
    driver.set_window_size(*WINDOW)
    sign_in(driver, scene.url, OPERATOR)
    assert len(driver.find_elements(By.CSS_SELECTOR, "a.row-link")) == len(SCENE)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _save(driver, SCREENSHOTS / "console-incidents.png")
    first = scene.incident_ids()[-1]
    driver.get(f"{scene.url}/ui/incidents/{first}")
    assert "HighErrorRate" in driver.title
    _save(driver, SCREENSHOTS / "console-incident.png", whole=True)
    driver.set_window_size(*PHONE)
    driver.refresh()
    # nothing wider than the phone's screen: no sideways scrolling
    assert driver.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    _save(driver, SCREENSHOTS / "console-incident-phone.png")
    driver.set_window_size(*WINDOW)


def _save(driver, path: Path, whole: bool = False) -> None:
    """A screenshot with nothing focused (no caret, no focus ring); `whole`: the page's
    full height, not just the window's."""
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    if whole:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WINDOW[0], min(height + 140, 4000))  # + the window's frame
    path.write_bytes(driver.get_screenshot_as_png())
    if whole:
        driver.set_window_size(*WINDOW)
