"""The body of POST /api/v1/fraud/check; unknown or ill-typed fields are a 400 naming them."""

from __future__ import annotations

import socket
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
)
from pydantic_core import core_schema


def _id_text(value: object) -> object:
    """Platform ids may be numbers or strings; both become strings, nothing else does."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _ip_text(value: str) -> str:
    """An IPv4 or IPv6 address in its canonical text; the C parser is much quicker than
    the ipaddress module (IPvAnyAddress) on this per-check path."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_ntop(family, socket.inet_pton(family, value))
        except (OSError, ValueError):
            continue
    raise ValueError("not an IPv4 or IPv6 address")


def _storable(value: str) -> str:
    """PostgreSQL text cannot hold NUL: one such check would fail the recorder's whole
    batch, so it is a 400 here (pydantic already refuses lone surrogates as bad JSON)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL")
    return value


# the document (exporters/fraud/openapi.py) says so too
NO_NUL = Field(json_schema_extra={"pattern": "^[^\\u0000]*$"})
IpAddress = Annotated[str, Field(max_length=64), AfterValidator(_ip_text), Field(
    json_schema_extra={"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})]
Id = Annotated[str, BeforeValidator(_id_text), Field(min_length=1, max_length=128),
               AfterValidator(_storable), NO_NUL,
               Field(json_schema_extra={"type": ["string", "integer"]})]

# a tenant name; '*' is a scope, never a tenant a check can belong to
Tenant = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^*\s]+$"),
                   AfterValidator(_storable)]


class _WholeNumber:
    """An integer as JSON Schema counts them: 5, and 5.0 or 1e3 too, never "5" or true.

    Validated by pydantic-core alone (a Python validator per field was most of a
    check's parsing time): an exact int, else a float with no fractional part made an
    int, then the field's own bounds, which the document shows as a plain integer."""

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        bounded = handler(source)  # int with the Field's bounds, which come before this
        whole = core_schema.union_schema(
            [core_schema.int_schema(strict=True),
             core_schema.chain_schema([core_schema.float_schema(strict=True),
                                       core_schema.int_schema(strict=False)])],
            mode="left_to_right", custom_error_type="whole_number",
            custom_error_message="Input should be a whole number, not text, a boolean or "
                                 "a fraction")
        return core_schema.chain_schema([whole, bounded])

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict:
        return handler(schema["steps"][-1])


WHOLE = _WholeNumber()


class Strict(BaseModel):
    """Numbers are JSON numbers ("5" and true are not, as the document says): strict
    mode, with integer fields as `WHOLE` numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Geo(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PreviousGeo(Geo):
    at: float = Field(gt=0, description="unix time of the previous purchase")


class Session(Strict):
    duration_seconds: float | None = Field(None, ge=0, le=86_400 * 7)
    mouse_movements: Annotated[int, Field(ge=0), WHOLE] | None = None
    keystroke_intervals_ms: list[Annotated[float, Field(ge=0, le=600_000)]] | None = Field(
        None, max_length=1000)


class CheckRequest(Strict):
    tenant: Tenant | None = None  # the caller's tenant when left out (see app.py)
    user_id: Id
    event_id: Id
    quantity: Annotated[int, Field(ge=1, le=10_000), WHOLE]
    requests_per_minute: float | None = Field(None, ge=0, le=1_000_000)
    payment_methods_recent: Annotated[int, Field(ge=0, le=10_000), WHOLE] | None = None
    ip: IpAddress | None = None
    geo: Geo | None = None
    previous_geo: PreviousGeo | None = None
    user_agent: Annotated[str, AfterValidator(_storable), NO_NUL] | None = Field(
        None, max_length=2048)
    session: Session | None = None


def parse(body: bytes) -> CheckRequest:
    return CheckRequest.model_validate_json(body)


def describe(exc: ValidationError) -> list[dict]:
    """[{field, message}] with dotted field paths, for the 400 body."""
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        out.append({"field": ".".join(loc) or "(body)", "message": err["msg"]})
    return out
