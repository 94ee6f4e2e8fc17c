"""What the fraud service keeps of an IP address: personal data, so as little as it needs.

`truncate` (default) keeps the network, /24 for IPv4 and /48 for IPv6: enough to see a
burst from one provider or site, not enough to name a household. `hmac` keeps a keyed
hash (HMAC-SHA256, 128 bits): the same address always gives the same value, so repeats
stay visible, but it cannot be reversed without the key, and rotating the key unlinks the
past. `full` keeps the address (needs a reason and a shorter retention); `drop` keeps none.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from collections.abc import Callable

IP_STORAGE = ("truncate", "hmac", "full", "drop")


def truncate_ip(ip: str) -> str:
    """203.0.113.7 -> 203.0.113.0/24; 2001:db8:1:2::9 -> 2001:db8:1::/48."""
    if ":" in ip:
        packed = socket.inet_pton(socket.AF_INET6, ip)
        return socket.inet_ntop(socket.AF_INET6, packed[:6] + bytes(10)) + "/48"
    head, _, _ = ip.rpartition(".")
    return f"{head}.0/24"


def ip_transform(mode: str, key: bytes | None = None) -> Callable[[str | None], str | None]:
    """The function the recorder applies to each address before it is written."""
    if mode == "truncate":
        return lambda ip: truncate_ip(ip) if ip else None
    if mode == "hmac":
        if not key:
            raise ValueError("ip_storage hmac needs ip_hmac_key")
        return lambda ip: ("hmac:" + hmac.new(key, ip.encode(), hashlib.sha256)
                           .hexdigest()[:32]) if ip else None
    if mode == "full":
        return lambda ip: ip
    if mode == "drop":
        return lambda ip: None
    raise ValueError(f"ip_storage must be one of {', '.join(IP_STORAGE)}")
