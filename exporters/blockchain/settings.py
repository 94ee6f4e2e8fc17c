"""Settings of the blockchain exporter: which RPC endpoints, wallets and programs to watch."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator
from solders.pubkey import Pubkey

from exporters.framework import HttpSettings
from ticketmon.core.config import Settings

NAME = r"^[A-Za-z0-9_.-]{1,64}$"


def _pubkey(value: str) -> str:
    try:
        return str(Pubkey.from_string(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a base-58 Solana address") from None


class EndpointSettings(Settings):
    name: str = Field(pattern=NAME)
    url: str = Field(pattern=r"^https?://")
    timeout: float = Field(2.0, gt=0, le=60, description="seconds per RPC call")


class BlockchainHttpSettings(HttpSettings):
    port: int = Field(10193, ge=0, le=65535)


class BlockchainSettings(Settings):
    http: BlockchainHttpSettings = Field(default_factory=BlockchainHttpSettings)
    # the first endpoint is the primary: wallets, programs and epoch are read from it
    # while it answers, else from the next one that does
    endpoints: list[EndpointSettings] = Field(
        default_factory=lambda: [
            EndpointSettings(name="primary", url="http://127.0.0.1:10197/"),
            EndpointSettings(name="reference", url="http://127.0.0.1:10197/reference"),
        ],
        min_length=1,
    )
    interval: float = Field(10.0, gt=0, le=3600)
    timeout: float = Field(8.0, gt=0, le=3600, description="bound on one whole collection")
    max_backoff: float = Field(120.0, gt=0, description="longest pause of a failing endpoint")
    wallets: dict[str, str] = Field(default_factory=dict, description="label -> address")
    programs: dict[str, str] = Field(default_factory=dict, description="label -> address")
    signatures_per_page: int = Field(1000, ge=1, le=1000)
    max_pages: int = Field(5, ge=1, le=100)
    performance_samples: int = Field(5, ge=1, le=720)
    # where the platform writes its submission time into a memo (SPL Memo program)
    memo_submitted_pattern: str = r"submitted_at=(\d+(?:\.\d+)?)"

    @field_validator("wallets", "programs")
    @classmethod
    def _addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for label in value:
            if not re.match(NAME, label):
                raise ValueError(f"label {label!r} must match {NAME}")
        return {label: _pubkey(addr) for label, addr in value.items()}

    @field_validator("memo_submitted_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            if re.compile(value).groups != 1:
                raise ValueError("needs exactly one capture group (the unix time)")
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _unique(self) -> BlockchainSettings:
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint names must be unique: {names}")
        slowest = max(e.timeout for e in self.endpoints)
        if self.timeout < 3 * slowest:
            raise ValueError(
                f"timeout ({self.timeout:g}s) must be at least 3x the slowest endpoint "
                f"timeout ({slowest:g}s): one collection makes several calls in a row"
            )
        return self
