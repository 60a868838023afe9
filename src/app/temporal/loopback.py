"""Whether a URL's host names this machine: what may go without TLS, since it never leaves it."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a URL's, without brackets) is ``localhost`` (or a name under it, which
    resolves to loopback), or a loopback address (127.0.0.0/8, ``::1``).
    """
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
