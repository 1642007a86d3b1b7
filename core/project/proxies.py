"""Who a request comes from: the connection's own address, unless it is a trusted proxy.

Any script that opens the websocket can send an ``X-Forwarded-For`` header, so the header is
believed only from the proxies named in ``CERVIXSCOPE_TRUSTED_PROXIES`` (comma-separated
addresses or networks, ``localhost`` for the loopback addresses; default none), the same rule as
uvicorn's ``--forwarded-allow-ips``. Behind trusted proxies the client is the right-most hop that
is not one of them: the address the outermost trusted proxy saw, which a client cannot forge.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache

TRUSTED_PROXIES_ENV = "CERVIXSCOPE_TRUSTED_PROXIES"
LOCALHOST = "localhost"  # Streamlit names no address for a loopback connection
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_trusted_proxies(value: str | None) -> tuple[Network, ...]:
    """The networks of a ``CERVIXSCOPE_TRUSTED_PROXIES`` value (empty or None: trust none).

    Raises
    ------
    ValueError
        Naming the setting and the entry that is neither an address, a network nor ``localhost``.
    """
    networks: list[Network] = []
    for entry in (value or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        if entry.lower() == LOCALHOST:
            networks.extend(_LOOPBACK)
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{TRUSTED_PROXIES_ENV}: {entry!r} is not an IP address, a network such as "
                "10.0.0.0/8, or localhost (separate several with commas)"
            ) from None
    return tuple(networks)


def trusted_proxies() -> tuple[Network, ...]:
    """The trusted proxies this server is configured with (see the module docstring)."""
    return parse_trusted_proxies(os.environ.get(TRUSTED_PROXIES_ENV))


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    if address == LOCALHOST:
        address = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(address: str | None, forwarded: str | None, trusted: tuple[Network, ...]) -> str:
    """The client a request is counted as, for the sign-in limits and the audit.

    Parameters
    ----------
    address : str or None
        The connection's own address (None for a loopback connection: ``localhost``).
    forwarded : str or None
        The ``X-Forwarded-For`` header as received, hops separated by commas.
    trusted : tuple of networks
        From :func:`trusted_proxies`.

    Returns
    -------
    str
        ``address`` unless it is a trusted proxy; then the right-most forwarded hop that is not
        a trusted proxy (``address`` when there is none).
    """
    peer = (address or "").strip() or LOCALHOST
    if not forwarded or not _is_trusted(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded.split(",")]):
        if hop and not _is_trusted(hop, trusted):
            return hop
    return peer
