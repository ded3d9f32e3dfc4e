"""The web console in a real browser (Debian's headless Chromium) against a real ocigate, on
SQLite and on PostgreSQL: a new account owner goes from sign-in to a first push following only
what the pages show, and the attacks a browser makes possible are refused.

Screenshots of the main pages land in tests/e2e/screenshots/ (not committed).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, Response, Route, expect

from ..servers import ADMIN_PASSWORD, ADMIN_USER, DOMAIN, Gateway
from .browser import DESKTOP, PHONE, browser, open_page, screenshot
from .conftest import Clients
from .images import make_image

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the fixture, imported to be found

SESSION_COOKIE = "ocigate_session"
# a registry's last garbage collection run as the API shows it (null before the first run)
LAST_RUN = {
    "startedAt": "2026-01-04T03:30:00.000Z",
    "finishedAt": "2026-01-04T03:30:07.000Z",
    "manifests": 3,
    "links": 4,
    "blobs": 1,
    "bytes": 2_500_000,
}
NO_TLS = "--dest-tls-verify=false"


@pytest.fixture(params=["sqlite", "postgresql"])
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gateway]:
    """A fresh ocigate (no registries yet) on the embedded SQLite or on PostgreSQL."""
    env = {}
    if request.param == "postgresql":
        env["OCIGATE_METADATA_URL"] = request.getfixturevalue("postgres_url")
    gateway = Gateway(tmp_path / "data", env).start()
    yield gateway
    gateway.stop()


def backend(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["console"])


def session_cookie(page: Page) -> dict[str, Any] | None:
    found = [cookie for cookie in page.context.cookies() if cookie["name"] == SESSION_COOKIE]
    return dict(found[0]) if found else None


def sign_in(page: Page, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def screenshots(page: Page, name: str) -> None:
    """The page on a laptop's screen and on a phone's (each checked: see `screenshot`)."""
    screenshot(page, name)
    page.set_viewport_size(PHONE)
    screenshot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)


def admin_api(gateway: Gateway, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, gateway.url + path, auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=30, **kwargs
    )


def test_from_sign_in_to_a_first_push_and_back(
    browser: Browser, console: Gateway, clients: Clients, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name = backend(request)
    page = open_page(browser, console.url)
    page.goto("/ui/")

    # a wrong password, by keyboard alone (the form has the focus): told so, no session
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type(ADMIN_USER)
    page.keyboard.press("Tab")
    page.keyboard.type("not-the-password")
    page.keyboard.press("Enter")
    expect(page.locator("#sign-in-error")).to_have_text("Wrong username or password.")
    assert session_cookie(page) is None

    sign_in(page)
    expect(page.get_by_role("heading", name="Registries", level=1)).to_be_visible()
    expect(page.locator("#username")).to_have_text(ADMIN_USER)
    cookie = session_cookie(page)
    assert cookie is not None
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP here; over TLS the cookie is Secure
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the session id
    # only the built-in registry that hosts naming no registry reach, which cannot be deleted
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tr[data-registry='default']")).to_contain_text("built in")
    screenshots(page, f"{name}-1-registries")

    # a registry, whose page shows the lines for its own hostname
    page.get_by_label("New registry name").fill("alpha")
    page.get_by_role("button", name="Create registry").click()
    expect(page.get_by_role("heading", name="alpha", level=1)).to_be_visible()
    host = f"alpha.{DOMAIN}:{console.port}"
    first_push = page.locator("#first-push")
    expect(first_push).to_contain_text(f"docker login {host}")
    expect(first_push).to_contain_text(f"docker push {host}/team/alpine:latest")
    expect(first_push).to_contain_text(f'"insecure-registries": ["{host}"]')  # plain HTTP here
    expect(page.locator("#gc-last-run")).to_have_text("never run")
    screenshots(page, f"{name}-2-registry-empty")

    # after a collection the page shows its last run: here the real answer with a run added on
    # its way to the page
    def with_a_run(route: Route) -> None:
        answer = route.fetch()
        registry = answer.json()
        registry["properties"]["lastGarbageCollection"] = LAST_RUN
        route.fulfill(response=answer, json=registry)

    registry_url = re.compile(r".*/api/registries/[0-9a-f]{32}$")
    page.route(registry_url, with_a_run)
    page.reload()
    expect(page.locator("#gc-last-run")).to_have_text(
        re.compile(r".+: 2\.5 MB freed \(3 manifests, 1 blob removed\)$")
    )
    expect(page.locator("#gc-last-run time")).to_have_attribute("datetime", LAST_RUN["finishedAt"])
    page.unroute(registry_url)
    page.reload()
    expect(page.locator("#gc-last-run")).to_have_text("never run")

    # a token for CI: scopes as rows, the password shown once with its docker login line
    page.get_by_role("link", name="Tokens").click()
    expect(page.locator("#no-tokens")).to_be_visible()
    page.get_by_label("Name (the username clients log in with)").fill("ci")
    page.locator(".scope-pattern").first.fill("team/*")
    page.get_by_role("button", name="Add scope").click()
    page.locator(".scope-type").nth(1).select_option("registry")
    page.get_by_role("button", name="Create token").click()
    login_line = page.locator("#token-docker-login code").inner_text()
    shown = re.fullmatch(rf"docker login {re.escape(host)} -u (\S+) -p (\S+)", login_line)
    assert shown is not None, login_line
    username, password = shown.groups()
    assert username == "ci"
    page.locator("#token-docker-login button").click()
    assert page.evaluate("navigator.clipboard.readText()") == login_line
    row = page.locator("tr[data-token='ci']")
    expect(row).to_contain_text("team/*: pull, push")
    expect(row).to_contain_text("catalog: pull")
    expect(row).to_contain_text("never used")
    screenshot(page, f"{name}-3-token-created")

    # the shown credentials push with skopeo: an image, and a two-platform index
    layout = tmp_path / "layout"
    image = make_image(layout, "v1", layers=2, layer_size=200_000, seed="console-v1")
    multi = make_image(layout, "multi", archs=("amd64", "arm64"), layer_size=50_000, seed="console-multi")
    creds = f"{username}:{password}"
    clients.skopeo("copy", NO_TLS, "--dest-creds", creds, image.oci_ref, f"docker://{host}/team/app:v1")
    clients.skopeo(
        "copy", "--all", NO_TLS, "--dest-creds", creds, multi.oci_ref, f"docker://{host}/team/app:multi"
    )

    # the pushed tag appears, with its size
    page.get_by_role("link", name="Repositories").click()
    page.get_by_role("link", name="team/app").click()
    expect(page.get_by_role("heading", name="team/app", level=1)).to_be_visible()
    (manifest,) = image.manifests
    expected = image.descriptor.size + sum(blob.size for blob in manifest.blobs)
    tagged = page.locator("tr[data-tags='v1']")
    expect(tagged.locator(".size")).to_have_attribute("title", f"{expected} bytes")
    expect(tagged).to_contain_text(image.digest.split(":")[1][:12])
    expect(page.locator("tr[data-tags='multi']")).to_contain_text("linux/amd64, linux/arm64")
    expect(page.get_by_text(f"docker pull {host}/team/app:")).to_be_visible()
    expect(page.get_by_text(f"ctr images pull --plain-http --user USERNAME {host}/team/app:")).to_be_visible()
    screenshots(page, f"{name}-4-repository")

    # a tag deleted leaves its manifest untagged; the manifest deleted is gone
    v1 = page.locator(f"tr[data-digest='{image.digest}']")
    v1.get_by_role("button", name="Delete tag v1").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete tag").click()
    expect(v1).to_contain_text("untagged")
    v1.get_by_role("button", name=re.compile("^Delete manifest")).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete manifest").click()
    expect(v1).to_have_count(0)
    expect(page.locator("tbody tr")).to_have_count(3)  # the index and its two platforms

    # the registry's repositories, searched by the start of their names
    page.get_by_role("link", name="alpha").click()
    expect(page.locator("tr[data-repository='team/app']")).to_be_visible()
    screenshot(page, f"{name}-5-registry")
    page.get_by_label("Repository name starts with").fill("other/")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#repository-count")).to_have_text("no repository starts with other/")
    page.get_by_label("Repository name starts with").fill("team/")
    page.keyboard.press("Enter")
    expect(page.locator("#repository-count")).to_have_text("1-1 of 1")

    # disabled in the console, the token pushes no more
    page.get_by_role("link", name="Tokens").click()
    expect(page.locator("tr[data-token='ci']")).not_to_contain_text("never used")  # its pushes
    page.get_by_role("button", name="Disable token ci").click()
    expect(page.locator("tr[data-token='ci']")).to_contain_text("disabled")
    refused = clients.skopeo(
        "copy", NO_TLS, "--dest-creds", creds, image.oci_ref, f"docker://{host}/team/app:v2", check=False
    )
    assert refused.returncode != 0, refused.stdout

    # a one-time token: marked, and shown as spent once it has written its tag
    page.get_by_label("Name (the username clients log in with)").fill("release")
    page.get_by_label("One-time: usable until it writes its first tag (a CI release job)").check()
    page.get_by_role("button", name="Create token").click()
    once = page.locator("#token-password").inner_text()
    expect(page.locator("tr[data-token='release']")).to_contain_text("one-time")
    expect(page.locator("tr[data-token='release']")).to_contain_text("enabled")
    clients.skopeo(
        "copy", NO_TLS, "--dest-creds", f"release:{once}", image.oci_ref, f"docker://{host}/team/app:rc"
    )
    page.get_by_role("link", name="Repositories").click()
    page.get_by_role("link", name="Tokens").click()
    release = page.locator("tr[data-token='release']")
    expect(release).to_contain_text("spent")
    expect(release.get_by_role("button", name="Disable token release")).to_be_disabled()
    screenshots(page, f"{name}-6-tokens")

    # the audit log, filtered to what the admin did to tokens (the token's own logins, by `ci`,
    # are there too: each push fetched bearer tokens)
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Who").fill(ADMIN_USER)
    page.get_by_label("Action").select_option("token.")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-total")).to_have_text("3 entries")
    actions = page.locator("tbody tr").evaluate_all("rows => rows.map(row => row.dataset.action)")
    assert actions == ["token.create", "token.update", "token.create"]
    screenshots(page, f"{name}-7-audit")
    # a time range (the form speaks local time, the API and the address a moment in UTC)
    page.get_by_label("From").fill("2099-01-01T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-empty")).to_have_text("No entries match.")
    expect(page.locator("#audit-total")).to_have_text("0 entries")
    page.reload()  # the filters live in the address
    expect(page.get_by_label("From")).to_have_value("2099-01-01T00:00")
    expect(page.get_by_label("Who")).to_have_value(ADMIN_USER)

    # deleting a registry asks for its name, typed; by keyboard alone, and Escape changes nothing
    page.get_by_role("link", name="Registries").click()
    doomed = page.locator("tr[data-registry='alpha']")
    for typed in ("alph", "alpha"):
        doomed.get_by_role("button", name="Delete registry alpha").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_label("Type alpha to confirm")).to_be_focused()
        page.keyboard.type(typed)
        confirm = page.get_by_role("dialog").get_by_role("button", name="Delete registry")
        if typed == "alph":
            expect(confirm).to_be_disabled()
            page.keyboard.press("Escape")
            expect(page.get_by_role("dialog")).to_have_count(0)
            expect(doomed).to_have_count(1)
        else:
            expect(confirm).to_be_enabled()
            page.keyboard.press("Enter")
    expect(doomed).to_have_count(0)
    assert [
        r["properties"]["name"] for r in admin_api(console, "GET", "/api/registries").json()["items"]
    ] == ["default"]

    # sign out: back to the sign-in form, and the session id is dead for good
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to ocigate")).to_be_visible()
    assert session_cookie(page) is None
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to ocigate")).to_be_visible()
    replayed = requests.get(
        f"{console.url}/api/sessions/current", cookies={SESSION_COOKIE: cookie["value"]}, timeout=30
    )
    assert replayed.status_code == 401
    screenshots(page, f"{name}-0-sign-in")
    assert page.script_errors == []  # type: ignore[attr-defined]


@contextmanager
def other_origin(html: str) -> Iterator[str]:
    """A page served from another origin (another port: the same site, so the browser sends the
    console's SameSite=Strict cookie along and only the server's own checks stand between)."""
    body = html.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


ATTACK = """<!doctype html><title>attack</title>
<form id="form" method="POST" action="{api}" enctype="text/plain">
  <input name='{{"name":"evil-form","location":"local","x":"' value='"}}'>
</form>
<script>
(async () => {{
  // a simple request: sent without a preflight, with the cookie
  await fetch("{api}", {{method: "POST", mode: "no-cors", credentials: "include",
    headers: {{"Content-Type": "text/plain"}},
    body: JSON.stringify({{name: "evil-fetch", location: "local"}})}});
  // a JSON request needs a CORS preflight, which the API does not grant
  try {{
    await fetch("{api}", {{method: "POST", credentials: "include",
      headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{name: "evil-json", location: "local"}})}});
  }} catch (e) {{ document.title = "json refused"; }}
  document.getElementById("form").submit();
}})();
</script>"""


def test_changes_need_the_csrf_token_and_the_consoles_origin(
    browser: Browser, console: Gateway, request: pytest.FixtureRequest
) -> None:
    page = open_page(browser, console.url)
    page.goto("/ui/")
    sign_in(page)
    expect(page.get_by_role("heading", name="Registries", level=1)).to_be_visible()

    # the console's own origin, with the cookie but without the CSRF token
    status, text = page.evaluate(
        """async () => {
          const r = await fetch("/api/registries", {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({name: "no-token", location: "local"})});
          return [r.status, await r.text()];
        }"""
    )
    assert status == 403
    assert "CSRF token" in text

    # a page of another origin posting to the API with the visitor's cookie
    api = f"{console.url}/api/registries"
    seen: list[Response] = []
    page.on("response", lambda response: seen.append(response) if response.url == api else None)
    with other_origin(ATTACK.format(api=api)) as attacker:
        with page.expect_navigation(url=api):
            page.goto(attacker)
        expect(page.locator("body")).to_contain_text("cross-origin request refused")
    posts = [response for response in seen if response.request.method == "POST"]
    assert len(posts) == 2, [(r.request.method, r.status) for r in seen]  # the no-cors fetch, the form
    # refused as requests that came with the session (the page the form landed on says why);
    # without the cookie they would have been 401s, for want of credentials
    assert [response.status for response in posts] == [403, 403]
    # nothing was created, and the trail shows no attempt that got through
    listed = admin_api(console, "GET", "/api/registries").json()
    assert [item["properties"]["name"] for item in listed["items"]] == ["default"]
    created = admin_api(console, "GET", "/api/audit", params={"action": "registry.create"}).json()
    assert created["total"] == 0
    assert page.script_errors == []  # type: ignore[attr-defined]


def test_a_registry_token_cannot_sign_in(
    browser: Browser, console: Gateway, request: pytest.FixtureRequest
) -> None:
    registry = admin_api(console, "POST", "/api/registries", json={"name": "alpha", "location": "local"})
    token = admin_api(
        console,
        "POST",
        registry.json()["href"] + "/tokens",
        json={"name": "robot", "scopes": [{"name": "*", "type": "repository", "actions": ["pull", "push"]}]},
    ).json()
    credentials = token["properties"]["credentials"]
    page = open_page(browser, console.url)
    page.goto("/ui/")
    sign_in(page, credentials["username"], credentials["password"])
    expect(page.locator("#sign-in-error")).to_contain_text("registry tokens cannot use the management API")
    assert session_cookie(page) is None
    screenshot(page, f"{backend(request)}-8-robot-token-refused")


@pytest.mark.parametrize("console", ["sqlite"], indirect=True)
def test_tokens_come_in_pages(browser: Browser, console: Gateway) -> None:
    registry = admin_api(
        console, "POST", "/api/registries", json={"name": "alpha", "location": "local"}
    ).json()
    scopes = [{"name": "*", "type": "repository", "actions": ["pull"]}]
    names = [f"robot-{n:02}" for n in range(51)]  # one more than a page
    for name in names:
        made = admin_api(console, "POST", registry["href"] + "/tokens", json={"name": name, "scopes": scopes})
        assert made.status_code == 201, made.text
    page = open_page(browser, console.url)
    page.goto(f"/ui/#/registries/{registry['id']}/tokens")
    sign_in(page)
    rows = page.locator("tr[data-token]")
    expect(page.locator("#token-count")).to_have_text("1-50 of 51")
    expect(rows).to_have_count(50)
    first_page = set(rows.evaluate_all("rows => rows.map(row => row.dataset.token)"))

    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#token-count")).to_have_text("51-51 of 51")
    (last,) = rows.evaluate_all("rows => rows.map(row => row.dataset.token)")
    assert first_page | {last} == set(names)  # every token is on one page or the other

    # deleting the only token of the last page goes back to the page before
    page.get_by_role("button", name=f"Delete token {last}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete token").click()
    expect(rows).to_have_count(50)
    expect(page.get_by_role("button", name="Next page")).to_have_count(0)
    assert page.locator("#token-count").count() == 0  # one page: no pager
    assert page.script_errors == []  # type: ignore[attr-defined]
