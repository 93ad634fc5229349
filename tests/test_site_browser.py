"""The built site in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
playwright) loads the small registry's site from a local HTTP server on 127.0.0.1, with every
other address failing. No request may fail, no console error appear; the registry table filters
and sorts, the search finds FLUX.1, and a series page is screenshotted into test-artifacts/."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Request, Response, Route, sync_playwright

from compiler.cli import build_parser
from compiler.site import build_site
from tests.conftest import ROOT
from tests.site_support import site_registry

CHROMIUM = Path("/usr/bin/chromium")
# This machine's notes: without the background-networking flags Chromium tries to reach
# Google's hosts at every start; the resolver rule makes any other host fail at the browser too.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
ARTIFACTS = ROOT / "test-artifacts" / "site"


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Browser:
    """One Chromium for the module, and what went wrong in the page under test."""

    def __init__(self, context: BrowserContext, origin: str) -> None:
        self.context = context
        self.origin = origin
        self.problems: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route: Route, request: Request) -> None:
        if request.url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.problems.append(f"request outside the site: {request.url}")
            route.abort()

    def open(self, path: str) -> Page:
        page = self.context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on("response", self._response)
        page.goto(f"{self.origin}/{path}")
        page.wait_for_load_state("networkidle")
        return page

    def _console(self, message: object) -> None:
        if getattr(message, "type", "") == "error":
            self.problems.append(f"console error: {getattr(message, 'text', '')}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    assert CHROMIUM.is_file(), "the browser tests need Debian's chromium: apt-get install chromium"
    root = tmp_path_factory.mktemp("browser")
    result = build_site(site_registry(root), root / "out", build_parser())
    assert result.ok, [d.message for d in result.diagnostics]
    handler = functools.partial(Quiet, directory=str(root / "out"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(root / "profile"),  # a fresh --user-data-dir
                executable_path=str(CHROMIUM),
                headless=True,
                args=FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            yield Browser(context, origin)
            context.close()
    finally:
        server.shutdown()


@pytest.fixture
def site(browser: Browser) -> Iterator[Browser]:
    """The module's browser, checked for failed requests and console errors after each test."""
    browser.problems.clear()
    yield browser
    assert browser.problems == []


def test_home_page_loads(site: Browser) -> None:
    page = site.open("index.html")
    assert "MIR registry" in page.title()
    assert page.locator("h1").first.inner_text().startswith("The MIR registry")
    page.close()


def test_registry_table_filters_by_architecture_and_sorts(site: Browser) -> None:
    page = site.open("registry/index.html")
    rows = page.locator("#registry-table tbody tr")
    assert rows.count() == 7
    page.select_option("#filter-arch", "dit")
    visible = page.locator("#registry-table tbody tr:visible")
    assert visible.count() == 1 and "mir:info.dit.flux-1-dev" in visible.inner_text()
    hidden = [rows.nth(i) for i in range(7) if "flux-1-dev" not in rows.nth(i).inner_text()]
    assert len(hidden) == 6 and all(row.is_hidden() for row in hidden)
    assert page.locator("#registry-count").inner_text() == "1 of 7 shown"
    assert page.url.endswith("#arch=dit")
    page.select_option("#filter-arch", "")
    variants = page.locator("#registry-table thead button", has_text="Variants")
    variants.click()
    variants.click()  # descending
    assert "flux-1-dev" in rows.first.inner_text()
    page.close()


def test_registry_filter_from_the_address(site: Browser) -> None:
    page = site.open("registry/index.html#arch=unet")
    visible = page.locator("#registry-table tbody tr:visible")
    assert visible.count() == 1 and "toy-unet" in visible.inner_text()
    page.close()


def test_series_page_and_screenshot(site: Browser) -> None:
    page = site.open("models/dit/flux-1-dev.html")
    for fit in ("fits", "needs-offload", "does-not-fit"):
        assert page.locator(f".fit-{fit}").first.is_visible()
    page.get_by_text("Every decision and its reason, per target").first.click()
    assert page.get_by_text("TF32 tensor cores speed up").first.is_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "flux-1-dev.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.close()


def test_search_finds_flux(site: Browser) -> None:
    page = site.open("index.html")
    page.locator("label.md-search__icon, .md-search__input").first.click()
    # typed key by key: Material searches on key events, which fill() does not send
    page.locator("input.md-search__input").press_sequentially("flux", delay=30)
    result = page.locator(".md-search-result__item a[href*='models/dit/flux-1-dev.html']")
    result.first.wait_for(timeout=15_000)
    assert "FLUX.1 [dev]" in page.locator(".md-search-result").inner_text()
    page.close()
