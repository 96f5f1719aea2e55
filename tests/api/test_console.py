"""The web console's files, served by a real node over HTTP: its pages answer index.html
(revalidated), hashed assets are immutable, its CSP allows nothing from other hosts, and
API paths keep their JSON errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.console import CONSOLE_POLICY
from tests.support.node import Node, NodeSettings

INDEX = '<!doctype html><html><head><script type="module" src="/assets/app-1a2b.js"></script>'


@pytest.fixture
def node_settings(tmp_path: Path) -> NodeSettings:
    build = tmp_path / "dist"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text(INDEX)
    (build / "assets" / "app-1a2b.js").write_text("console.log('console')")
    (build / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return NodeSettings(api={"console_dir": str(build)})


@pytest.mark.parametrize("page", ["/", "/login", "/fleet", "/vehicles/WVWZZZ1JZXW000001"])
async def test_every_console_page_answers_its_index_revalidated(node: Node, page: str) -> None:
    response = await node.http.get(page)
    assert response.status_code == 200, response.text
    assert response.text == INDEX
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Content-Security-Policy"] == CONSOLE_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_hashed_assets_are_cached_for_a_year_and_top_files_are_served(node: Node) -> None:
    asset = await node.http.get("/assets/app-1a2b.js")
    assert asset.status_code == 200
    assert asset.text == "console.log('console')"
    assert "javascript" in asset.headers["Content-Type"]
    assert set(asset.headers["Cache-Control"].split(", ")) == {
        "public",
        "max-age=31536000",
        "immutable",
    }
    icon = await node.http.get("/favicon.svg")
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg")


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/assets/missing.js", "not_found"),
        ("GET", "/assets/../../../etc/passwd", "not_found"),
        ("GET", "/api/v1/nothing-here", "not_found"),
        ("POST", "/fleet/nothing", "not_found"),
        ("GET", "/index.html/x", "not_found"),
    ],
)
async def test_other_paths_keep_the_api_json_errors(
    node: Node, method: str, path: str, code: str
) -> None:
    response = await node.http.request(method, path)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == code


async def test_an_api_route_is_not_shadowed_by_the_console(node: Node) -> None:
    response = await node.http.get("/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


class TestNotBuilt:
    @pytest.fixture
    def node_settings(self, tmp_path: Path) -> NodeSettings:
        return NodeSettings(api={"console_dir": str(tmp_path / "missing")})

    async def test_a_console_that_is_not_built_says_how_to_build_it(
        self, node: Node, tmp_path: Path
    ) -> None:
        response = await node.http.get("/fleet")
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "console_not_built"
        assert error["message"] == (
            f"the web console is not built in {tmp_path / 'missing'}: run `make console` "
            "(needs Node.js 20 and npm), or set console_dir to a built console"
        )
