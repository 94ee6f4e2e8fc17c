#!/usr/bin/env python3
"""Generator-ceiling target: a stdlib asyncio HTTP/1.1 sink. Reads each request (headers +
Content-Length body), answers 200 with keep-alive, parses nothing else. Not a receiver: it only
shows how many requests/s amload itself can push on this box.
usage: python3 bench/baselines/sink.py [port=18090] [max_seconds=900]   (127.0.0.1 only)"""

import asyncio
import sys

RESP = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    n = int(line[15:])
            if n:
                await reader.readexactly(n)
            writer.write(RESP)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port, max_s):
    srv = await asyncio.start_server(handle, "127.0.0.1", port, limit=1 << 20)
    async with srv:
        await asyncio.sleep(max_s)  # bounded lifetime


if __name__ == "__main__":
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 18090,
            float(sys.argv[2]) if len(sys.argv) > 2 else 900,
        )
    )
