"""ICE candidates on loopback, for a booth whose browser runs on the server's own machine.

aioice leaves 127.0.0.1 out of its host candidates, and aiortc offers no way to pass
addresses in, so the one function aioice gathers them with is wrapped, once per process.
Chromium needs ``--allow-loopback-in-peer-connection`` for its side of the same path.
"""

from __future__ import annotations

import functools

import aioice.ice

LOOPBACK = "127.0.0.1"


def include_loopback_candidates() -> None:
    """Make every later ICE gathering in this process offer 127.0.0.1 too (idempotent)."""
    gather = aioice.ice.get_host_addresses
    if getattr(gather, "includes_loopback", False):
        return

    @functools.wraps(gather)
    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = gather(use_ipv4, use_ipv6)
        return addresses + [LOOPBACK] if use_ipv4 and LOOPBACK not in addresses else addresses

    with_loopback.includes_loopback = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = with_loopback
