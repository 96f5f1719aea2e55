"""Headers every answer carries so that browsers and caches treat it safely.

- `Cache-Control: no-store` (and `Pragma: no-cache` for HTTP/1.0 caches) on
  every answer that sets no cache policy of its own: logins, refreshes,
  vehicle registrations and token rotations carry secrets, and the other
  answers carry fleet data no shared cache should keep. Only Swagger UI's
  static files set their own (public, cacheable).
- `X-Content-Type-Options: nosniff`: a JSON answer is never run as a script
  or rendered as a page.
- `X-Frame-Options: DENY` and a Content-Security-Policy with
  `frame-ancestors 'none'`: no page can frame the hub (clickjacking). The
  API's policy allows nothing else (`default-src 'none'`); `/docs` allows
  Swagger UI's own files from the hub, its inline styles and its `data:`
  images, and calls to the hub itself (its "Try it out").
- `Referrer-Policy: no-referrer`.

hypercorn's `Server` header is turned off where it is configured
(`sovd_hub.node`), so answers do not say what serves them.
"""

from __future__ import annotations

from werkzeug.datastructures import Headers

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
_EVERY_ANSWER = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)


def add_security_headers(headers: Headers, path: str) -> None:
    """Add the headers above to the answer to a request for `path` (those it lacks)."""
    for name, value in _EVERY_ANSWER:
        headers.setdefault(name, value)
    is_docs = path == "/docs" or path.startswith("/docs/")
    headers.setdefault("Content-Security-Policy", DOCS_POLICY if is_docs else API_POLICY)
    if "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
