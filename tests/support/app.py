"""The app as a node builds it, to look at its routes (OpenAPI, metrics, roles), and its rules."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from quart_trio import QuartTrio

from api import ApiConfig, create_app
from hub import Hub, HubConfig
from storage import Database
from tests.support.node import JWT_SECRET

#: Routes that exist but are not API operations: the document itself, its UI, metrics.
UNDOCUMENTED = {"openapi", "metrics", "static", "docs.swagger_ui", "docs.swagger_ui_init"}
UNDOCUMENTED_PREFIXES = ("docs.", "console.")  # pages and files, not API
#: The document does not depend on the database: one backend is enough.
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def build_app(**api: Any) -> QuartTrio:
    """An app as a node builds it, on a stand-in hub: to look at its routes, not to serve."""

    class _Journal:
        observer: object = None

    class _Hub:
        journal = _Journal()

        def mailbox_depths(self) -> list[int]:
            return []

    config = ApiConfig(jwt_secret=JWT_SECRET, **api)
    return create_app(cast(Hub, _Hub()), cast(Database, None), config, HubConfig())


def app_rules() -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every HTTP route of an app built like a node's."""
    app = build_app()
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.websocket or rule.endpoint in UNDOCUMENTED:
            continue
        if rule.endpoint.startswith(UNDOCUMENTED_PREFIXES):
            continue
        path = re.sub(r"<(?:[^:<>]*:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((path, method.lower()))
    return found
