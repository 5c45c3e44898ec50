"""Browser tests: the real ASGI app (HTTP + WebSockets) under uvicorn, driven by Playwright.

- `asgi_server` serves campus_errand.asgi.application in a background thread on a free
  127.0.0.1 port, once per session. pytest-django's live_server speaks WSGI only: no sockets.
- `live` is what a test asks for: the server plus a transactional database (the server's threads
  must see committed rows; on SpatiaLite the test database is a file, on PostgreSQL a real one).
- `browser_page` opens a phone-sized page on Debian's chromium (`playwright install` cannot
  download browsers here). Every request that leaves 127.0.0.1 is blocked and fails the test, as
  do uncaught page errors.
- `api_as(username)` is a token-authenticated HTTP client for the rider's side of a scenario:
  the push to the student's page must originate inside the server (the in-memory channel layer
  only reaches consumers in the server's own event loop), so riders act over real HTTP.

Playwright's sync API keeps an asyncio loop running in the test's thread while it is started,
and Django refuses ORM calls there (SynchronousOnlyOperation). So a test creates its rows in
fixtures listed before `browser_page` (or before the page is opened), and afterwards checks the
server's state through HTTP, like a real client.
"""

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connections

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {"width": 360, "height": 740}
LOCAL_HOSTS = {"127.0.0.1"}
SCREENSHOT_DIR = Path(settings.BASE_DIR) / "var" / "screenshots"


@dataclass
class LiveServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url


@pytest.fixture(scope="session")
def asgi_server():
    """uvicorn serving the project's ASGI app in a thread, for the whole session."""
    import uvicorn

    from campus_errand.asgi import application

    # Django's ASGI handler runs every request in a thread of its own that ends with the request:
    # persistent connections would outlive it and keep PostgreSQL from dropping the test database.
    db_settings = connections.settings["default"]
    old_max_age = db_settings.get("CONN_MAX_AGE", 0)
    db_settings["CONN_MAX_AGE"] = 0

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # a free port, held from now on: no race with other processes
    host, port = sock.getsockname()
    config = uvicorn.Config(
        application,
        host=host,
        port=port,
        log_level="warning",
        ws="websockets-sansio",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="e2e-uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the e2e uvicorn server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(host, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        db_settings["CONN_MAX_AGE"] = old_max_age


@pytest.fixture
def live(asgi_server, transactional_db) -> LiveServer:
    return asgi_server


@dataclass
class HttpResponse:
    status: int
    data: dict | list | None

    def __repr__(self) -> str:
        return f"<HTTP {self.status} {self.data!r}>"


class ApiClient:
    """A real HTTP client (urllib) against the live server, as a phone app would be."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url
        self.token = token

    def request(self, method: str, path: str, data: dict | None = None) -> HttpResponse:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(self.base_url + path, data=body, method=method)
        req.add_header("Accept", "application/json")
        req.add_header("Accept-Language", "en")
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = {"raw": raw.decode(errors="replace")[:500]}
        return HttpResponse(status, payload)

    def get(self, path: str) -> HttpResponse:
        return self.request("GET", path)

    def post(self, path: str, data: dict | None = None) -> HttpResponse:
        return self.request("POST", path, data if data is not None else {})

    def ok(self, path: str, data: dict | None = None) -> dict:
        """POST and insist on 2xx: a scenario step that must work."""
        resp = self.post(path, data)
        assert 200 <= resp.status < 300, f"POST {path} {data} -> {resp!r}"
        return resp.data


@pytest.fixture
def api_as(live):
    """api_as(username, password="pw-123456") -> an ApiClient holding that user's token."""

    def make(username: str, password: str = "pw-123456") -> ApiClient:
        resp = ApiClient(live.url).post(
            "/api/auth/token/", {"username": username, "password": password}
        )
        assert resp.status == 200, f"token for {username}: {resp!r}"
        return ApiClient(live.url, resp.data["token"])

    return make


@dataclass
class PageWatch:
    """What the page did that a test must not allow: off-site requests, uncaught errors."""

    offsite: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sockets: list = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.offsite, f"requests left 127.0.0.1: {self.offsite}"
        assert not self.errors, f"page errors: {self.errors}"


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in LOCAL_HOSTS


@pytest.fixture
def playwright_browser(live):
    """Chromium for one test (the driver's event loop must be gone before the DB is flushed)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page_watch() -> PageWatch:
    return PageWatch()


def phone_context(browser, live, page_watch, *, timeout_ms: int = 10_000, **options):
    """A phone-sized English browser context on the live server; off-site requests are aborted
    and counted in `page_watch` (they fail the test). `options`: geolocation, permissions..."""
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        timezone_id="Asia/Shanghai",
        base_url=live.url,
        **options,
    )
    context.set_default_timeout(timeout_ms)

    def guard(route):
        if _is_local(route.request.url):
            route.continue_()
        else:
            page_watch.offsite.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    return context


@pytest.fixture
def browser_page(live, playwright_browser, page_watch):
    """A phone-sized English page; off-site requests are aborted and fail the test."""
    context = phone_context(playwright_browser, live, page_watch)
    page = context.new_page()

    def on_socket(ws):
        page_watch.sockets.append(ws)
        if not _is_local(ws.url):
            page_watch.offsite.append(ws.url)

    page.on("websocket", on_socket)
    page.on("pageerror", lambda exc: page_watch.errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: (
            page_watch.errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error"
            else None
        ),
    )
    try:
        yield page
    finally:
        context.close()
    page_watch.assert_clean()


@pytest.fixture
def login(live):
    """login(page, username): through the real login form, as a student would."""

    def do(page, username: str, password: str = "pw-123456") -> None:
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        with page.expect_navigation():
            page.click("form.form button[type=submit]")
        assert "/accounts/login/" not in page.url, f"login failed for {username}"

    return do


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR
