"""A Server-Sent Events client for tests: one connection, parsed in a background thread.

Speaks plain HTTP/1.1 through http.client (read1 hands over each chunk as it arrives),
so what the tests see is what a browser's EventSource would be sent.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Block:
    """One blank-line-terminated block: fields and comment lines."""

    fields: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def event(self) -> str | None:
        return self.fields.get("event")

    @property
    def id(self) -> int | None:
        return int(self.fields["id"]) if "id" in self.fields else None

    @property
    def data(self) -> dict:
        return json.loads(self.fields["data"])


def parse_blocks(text: str) -> tuple[list[Block], str]:
    """Complete blocks of `text`, and the unfinished rest."""
    *done, rest = text.split("\n\n")
    blocks = []
    for raw in done:
        block = Block()
        for line in raw.split("\n"):
            if line.startswith(":"):
                block.comments.append(line[1:].strip())
            elif line:
                name, _, value = line.partition(":")
                block.fields[name] = value[1:] if value.startswith(" ") else value
        blocks.append(block)
    return blocks, rest


class SseClient:
    def __init__(self, url: str, headers: dict[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.conn.request("GET", path, headers={"Accept": "text/event-stream",
                                                **(headers or {})})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.blocks: queue.Queue[Block | None] = queue.Queue()
        self.ended = threading.Event()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def json(self) -> dict:
        return json.loads(self.response.read())

    def _read(self) -> None:
        rest = ""
        try:
            while chunk := self.response.read1(65536):
                blocks, rest = parse_blocks(rest + chunk.decode())
                for block in blocks:
                    self.blocks.put(block)
        except (OSError, http.client.HTTPException, ValueError, AttributeError):
            # AttributeError: http.client, when close() came first
            pass
        finally:
            self.ended.set()
            self.blocks.put(None)

    def next_block(self, timeout: float) -> Block | None:
        """The next block, or None when the stream ended; AssertionError on timeout."""
        try:
            return self.blocks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no block within {timeout} s") from None

    def events(self, count: int, timeout: float, kind: str = "incident") -> list[Block]:
        """The next `count` events of `kind`, skipping comments and other blocks."""
        deadline = time.monotonic() + timeout
        found: list[Block] = []
        while len(found) < count:
            block = self.next_block(max(0.0, deadline - time.monotonic()))
            if block is None:
                raise AssertionError(f"the stream ended after {len(found)} of {count} events")
            if block.event == kind:
                found.append(block)
        return found

    def quiet(self, seconds: float, kind: str = "incident") -> bool:
        """No event of `kind` arrives for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                block = self.blocks.get(timeout=left)
            except queue.Empty:
                return True
            if block is not None and block.event == kind:
                return False
        return True

    def close(self) -> None:
        self.conn.close()
