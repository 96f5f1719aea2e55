"""The web console (`console/`, built by Vite) served at `/`, on the API's own origin.

- `/assets/<name>`: Vite's content-hashed files, cached for a year as
  `immutable` (a new build has new names).
- The console's own pages (`CONSOLE_PAGES`: `/`, `/login`, `/fleet`,
  `/vehicles/<vin>`, ...) answer `index.html`, revalidated on every load
  (`no-cache`), so that a reload of any page works and a new build shows at
  once. Any other path keeps the API's JSON 404: the console does not
  swallow unknown API routes.
- Files at the build's top level (`favicon.svg`, ...) are served by name.
- Its Content-Security-Policy allows scripts only from the hub (Vite's build
  has no inline script), styles from the hub and the inline styles Material
  UI injects, images from the hub and `data:`, and connections (REST and the
  WebSocket) to the hub alone: nothing from any other host, so the console
  works on an air-gapped site.
- Not built: its pages are 404 `console_not_built`, saying how to build it.

Where the build is: `console_dir`, else `console/dist` beside the packages.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Quart, Response, current_app, request, send_from_directory
from quart_schema import hide
from werkzeug.exceptions import NotFound

from api.errors import ApiError

CONSOLE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
#: The console's client-side routes, each answered with its `index.html`.
CONSOLE_PAGES = (
    "/",
    "/login",
    "/fleet",
    "/history",
    "/audit",
    "/admin",
    "/admin/<path:section>",
    "/vehicles/<vin>",
    "/commands/<command_id>",
)
#: Hashed assets may be cached this long (a year), never revalidated.
ASSET_MAX_AGE_S = 365 * 24 * 3600
_KEY = "sovd_hub_console_dir"


def default_console_dir() -> Path:
    """`console/dist` beside the `api` package (the repository, or the image's /app)."""
    return Path(__file__).resolve().parents[1] / "console" / "dist"


def install_console(app: Quart, console_dir: str) -> None:
    """Serve the console built in `console_dir` ("" for `default_console_dir`)."""
    directory = Path(console_dir) if console_dir else default_console_dir()
    app.extensions[_KEY] = directory
    blueprint = Blueprint("console", __name__)
    for page in CONSOLE_PAGES:
        blueprint.add_url_rule(page, "page", _page, methods=["GET"])
    blueprint.add_url_rule("/assets/<path:name>", "asset", _asset, methods=["GET"])
    if directory.is_dir():
        tops = [t.name for t in sorted(directory.iterdir()) if t.is_file()]
        for number, name in enumerate(n for n in tops if n != "index.html"):
            blueprint.add_url_rule(f"/{name}", f"file_{number}", _top_file, methods=["GET"])
    app.register_blueprint(blueprint)


def _directory() -> Path:
    directory = current_app.extensions[_KEY]
    assert isinstance(directory, Path)
    return directory


@hide
async def _page(**_: str) -> Response:
    directory = _directory()
    if not (directory / "index.html").is_file():
        raise ApiError(
            404,
            "console_not_built",
            f"the web console is not built in {directory}: run `make console` "
            "(needs Node.js 20 and npm), or set console_dir to a built console",
        )
    response = await send_from_directory(directory, "index.html")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = CONSOLE_POLICY
    return response


@hide
async def _asset(name: str) -> Response:
    try:
        response = await send_from_directory(_directory() / "assets", name)
    except NotFound:
        raise ApiError(404, "not_found", f"no console asset {name!r}") from None
    response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE_S}, immutable"
    response.headers["Content-Security-Policy"] = CONSOLE_POLICY
    return response


@hide
async def _top_file() -> Response:
    response = await send_from_directory(_directory(), request.path.lstrip("/"))
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = CONSOLE_POLICY
    return response
