"""Hold N live streams open (GET /api/v1/stream) from one thread, reading and dropping
what arrives: the load of N idle-to-busy browsers on a stream server, at the least CPU
on the client side so what a benchmark measures is the server's cost.

    python3 bench/stream_holders.py URL TOKEN N SECONDS      # on its own, for a look
"""

from __future__ import annotations

import selectors
import socket
import sys
import threading
import time
from urllib.parse import urlsplit


class StreamHolders:
    def __init__(self, url: str, token: str, count: int) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname, parts.port)
        self.request = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
                        ).encode()
        self.count = count
        self.selector = selectors.DefaultSelector()
        self.received = 0  # bytes
        self.closed = 0  # streams the server ended
        self.refused = 0  # answered anything but 200
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def open(self, timeout: float = 30.0) -> None:
        for _ in range(self.count):
            sock = socket.create_connection(self.address, timeout=timeout)
            sock.sendall(self.request)
            head = sock.recv(4096)
            if not head.startswith(b"HTTP/1.1 200"):
                self.refused += 1
                sock.close()
                continue
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(1 << 16)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    self.received += len(data)
                else:
                    self.closed += 1
                    self.selector.unregister(key.fileobj)
                    key.fileobj.close()

    def open_now(self) -> int:
        return len(self.selector.get_map())

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()


if __name__ == "__main__":
    url, token, n, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    holders = StreamHolders(url, token, n)
    holders.open()
    time.sleep(seconds)
    print(f"open {holders.open_now()} refused {holders.refused} closed by server "
          f"{holders.closed} bytes {holders.received}")
    holders.close()
