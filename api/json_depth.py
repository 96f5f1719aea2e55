"""A bound on how deep a request's JSON may nest, checked before the parser recurses.

Python's `json` parser recurses once per level: a body of 10,000 `[` is a
`RecursionError` (a 500 with a traceback) before any validation runs, on
every route that takes JSON, login included. `DepthLimitedJSONProvider`
measures the nesting first and refuses a body deeper than `max_json_depth`
with 400 `json_too_deep`.

The measure is cheap where it matters: a body with no more `[` and `{` than
the limit (every normal one) costs two `str.count` calls, well under a
microsecond; only bodies with more brackets are scanned (strings removed,
then the running depth of the brackets left), a few milliseconds at most
for a `max_body_bytes` body.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from flask.json.provider import JSONProvider
from quart import Quart
from werkzeug.sansio.response import Response

from api.errors import ApiError

#: A JSON string (escapes included), in the "unrolled loop" form that needs no backtracking.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth_exceeds(text: str, max_depth: int) -> bool:
    """True if the JSON `text` nests arrays and objects deeper than `max_depth` levels.

    Brackets inside strings do not count. For text that is not JSON, the
    answer is about its brackets (the parser refuses it anyway); it is never
    False for text on which the parser would recurse deeper than `max_depth`.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > max_depth


def too_deep(max_depth: int) -> ApiError:
    """The 400 of a body nested deeper than `max_depth`."""
    return ApiError(
        400,
        "json_too_deep",
        f"the request body nests JSON deeper than {max_depth} levels (max_json_depth); "
        "send a flatter body",
    )


class DepthLimitedJSONProvider(JSONProvider):
    """The app's JSON provider (`inner`, quart-schema's) whose `loads` refuses JSON nested
    deeper than `max_depth`; everything else is `inner`'s."""

    def __init__(self, app: Quart, inner: JSONProvider, max_depth: int) -> None:
        super().__init__(app)
        self.inner = inner
        self.max_depth = max_depth

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """`inner`'s serialisation."""
        return self.inner.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse `s`; raises `ApiError` 400 `json_too_deep` (not a ValueError, which Quart
        would turn into a generic 400) when it nests deeper than `max_depth`."""
        text = s if isinstance(s, str) else bytes(s).decode("utf-8", "replace")
        if json_depth_exceeds(text, self.max_depth):
            raise too_deep(self.max_depth)
        return self.inner.loads(s, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """`inner`'s JSON response (what `jsonify` returns)."""
        return self.inner.response(*args, **kwargs)


def limit_json_depth(app: Quart, max_depth: int) -> None:
    """Make every `request.get_json()` of `app` refuse JSON nested deeper than `max_depth`.

    Call it after `QuartSchema(app)`, which installs its own provider (kept, wrapped).
    """
    app.json = DepthLimitedJSONProvider(app, app.json, max_depth)
