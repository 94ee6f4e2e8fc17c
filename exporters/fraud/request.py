"""The body of POST /api/v1/fraud/check; unknown or ill-typed fields are a 400 naming them."""

from __future__ import annotations

import socket
from typing import Annotated, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)


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


def _numeric(annotation: object) -> bool:
    """int or float, optional, annotated, or a list of them."""
    if annotation in (int, float):
        return True
    return any(_numeric(arg) for arg in get_args(annotation) if arg is not type(None))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_not_text(cls, value: object, info: ValidationInfo) -> object:
        """"5" and true are not numbers, as the document (JSON Schema) says; 5.0 is an
        integer there, so pydantic's lax mode stays for numbers."""
        numeric = _numeric(cls.model_fields[info.field_name].annotation)
        items = value if isinstance(value, list) else [value]
        if numeric and any(isinstance(v, str | bool) for v in items):
            raise ValueError("must be a number, not a string")
        return value


class Geo(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PreviousGeo(Geo):
    at: float = Field(gt=0, description="unix time of the previous purchase")


class Session(Strict):
    duration_seconds: float | None = Field(None, ge=0, le=86_400 * 7)
    mouse_movements: int | None = Field(None, ge=0)
    keystroke_intervals_ms: list[Annotated[float, Field(ge=0, le=600_000)]] | None = Field(
        None, max_length=1000)


class CheckRequest(Strict):
    tenant: Tenant | None = None  # the caller's tenant when left out (see app.py)
    user_id: Id
    event_id: Id
    quantity: int = Field(ge=1, le=10_000)
    requests_per_minute: float | None = Field(None, ge=0, le=1_000_000)
    payment_methods_recent: int | None = Field(None, ge=0, le=10_000)
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
