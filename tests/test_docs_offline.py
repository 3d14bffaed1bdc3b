"""``/docs`` and ``/redoc`` on a node without internet: assets from the service itself, checked in a real browser.

Headless Chromium (Debian's package, installed by ``make chromium``, run by ``make test``) loads the page
with every host but the server's made unresolvable, so a page that needed a CDN would stay blank, and
the Swagger UI operations must be in the rendered DOM.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_service import Server

EXTERNAL = re.compile(r"(?:https?:)?//[\w.-]+", re.IGNORECASE)
ASSET = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.fixture(scope="module")
def keyed_url(tiny_model: Path) -> Iterator[str]:
    """A server with an API key: the documentation and its assets must stay open."""
    with Server(tiny_model, api_key="s3cret") as url:
        yield url


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_name_no_external_url_and_their_assets_are_served_openly(keyed_url: str, page: str) -> None:
    html = httpx.get(keyed_url + page).text
    assert not EXTERNAL.findall(html), EXTERNAL.findall(html)
    assets = ASSET.findall(html)
    assert len(assets) >= 2, html  # the script (and for Swagger UI its stylesheet) and the icon
    for asset in assets:
        response = httpx.get(keyed_url + asset)  # no Authorization header
        assert response.status_code == 200 and len(response.content) > 1000, asset
    assert httpx.get(keyed_url + "/v1/model").status_code == 401  # the key still guards the API


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed and could not be (`make chromium` installs Debian's package as root)")
    return found


def rendered(url: str, profile: Path) -> str:
    """The DOM of ``url`` after scripts ran, in headless Chromium that can reach only 127.0.0.1."""
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",  # it runs as root here (CI)
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # a batch node without internet
        "--virtual-time-budget=20000",  # virtual time also waits for the page's own fetches (openapi.json)
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_swagger_ui_renders_every_operation_offline(base_url: str, tmp_path: Path) -> None:
    paths = httpx.get(base_url + "/openapi.json").json()["paths"]
    dom = rendered(base_url + "/docs", tmp_path / "profile")
    shown = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert shown == set(paths), dom[-3000:]
    assert "Plain muons (weight 1)" in dom


def test_redoc_renders_the_operations_offline(base_url: str, tmp_path: Path) -> None:
    dom = rendered(base_url + "/redoc", tmp_path / "profile")
    summaries = [
        operation["summary"]
        for methods in httpx.get(base_url + "/openapi.json").json()["paths"].values()
        for operation in methods.values()
    ]
    assert all(summary in dom for summary in summaries), dom[-3000:]
