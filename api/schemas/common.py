"""What the REST bodies share: the strict body base, the page query, the VIN and text patterns."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"


class Strict(BaseModel):
    """Bodies we accept: unknown properties are an error, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


#: Text a query may carry: no control characters (Postgres refuses NUL in text).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


class PageQuery(BaseModel):
    """Query strings: unknown parameters are an error; values are converted from text."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=500, description="page size (1-500)")
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="items to skip")
