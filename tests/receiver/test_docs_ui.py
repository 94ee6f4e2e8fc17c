"""/docs: the OpenAPI document browsable in a real Chromium, from package files only."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from support.browser import chromium, served


def test_docs_page_renders_every_operation_in_chromium_without_csp_errors(make_app):
    app = make_app()
    with served(app) as url, chromium() as browser:
        browser.get(f"{url}/docs")
        WebDriverWait(browser, 30).until(ec.presence_of_element_located(
            (By.CSS_SELECTOR, ".opblock-summary-path")))
        paths = {e.get_attribute("data-path") for e in
                 browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        doc = app.test_client().get("/openapi.json").json
        assert paths == set(doc["paths"])
        assert "ticketmon receiver" in browser.find_element(By.CSS_SELECTOR, ".title").text
        # every file came from us (no CDN), and the page's CSP blocked nothing it needs
        loaded = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(name.startswith(url) for name in loaded), loaded
        errors = [m["message"] for m in browser.get_log("browser") if m["level"] == "SEVERE"]
        assert errors == []


def test_docs_assets_are_served_from_the_package_and_nothing_else(make_app):
    client = make_app().test_client()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "https://" not in page.get_data(as_text=True)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "frame-ancestors 'none'" in csp
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.data) > 100_000
    assert "max-age=86400" in script.headers["Cache-Control"]
    for name in ("index.html", "swagger-ui-bundle.js.map", "%2e%2e%2fapp.py"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name
