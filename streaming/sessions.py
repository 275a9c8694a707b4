"""Signalling for the live preview: one WebRTC peer connection per kiosk.

A kiosk posts its SDP offer (camera video, sendrecv); ``KioskPeers.answer`` returns the SDP
answer and sends the preview back on the same video section. A kiosk that reconnects (a
reloaded page) replaces its older connection, which is closed. A connection that fails or
closes is forgotten and its preview stopped.

No STUN or TURN servers: booths and server share a LAN, and the service must not reach out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription

from kiosk.settings import Settings
from pipeline.types import Artwork
from streaming.preview import PreviewRenderer
from streaming.track import PreviewTrack

RendererFactory = Callable[[Artwork], PreviewRenderer]
# How much nicer the colour refit thread is than the process: at +10 the scheduler gives a busy
# render thread about nine times the refit's share of a contended core.
COLOUR_REFIT_NICENESS = 10


class OfferError(ValueError):
    """The kiosk's offer cannot be answered; the message says why (for an HTTP 400)."""


@dataclass(eq=False)
class _KioskPeer:
    connection: RTCPeerConnection
    preview: PreviewTrack | None = None


class KioskPeers:
    """The live kiosk connections of this server, by kiosk id. Use from one event loop.

    Previews render (and find faces) in ``executor``; their colour refits run one at a time in
    a thread of their own, so a refit never takes a render's thread (streaming/track.py), at a
    lower CPU priority: on busy cores the frames go first, and the colour follows a little later.
    """

    def __init__(self, settings: Settings, renderer_factory: RendererFactory, executor: Executor) -> None:
        self._stats_window = settings.preview_stats_window
        self._renderer_factory = renderer_factory
        self._executor = executor
        # Threads start on the first refit and end with this object; each preview has at most one
        # refit queued, so the queue is bounded by the connections.
        self._colour_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="preview-colour", initializer=_yield_to_the_frames
        )
        self._peers: dict[str, _KioskPeer] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def kiosk_ids(self) -> list[str]:
        return sorted(self._peers)

    async def answer(self, kiosk_id: str, offer_sdp: str, offer_type: str, artwork: Artwork) -> tuple[str, str]:
        """Answer the kiosk's offer: returns the answer's (sdp, type). Raises OfferError for a bad offer.

        An older connection of the same kiosk is closed once the new one is answered; a bad
        offer leaves it alone.
        """
        _check_offer(offer_sdp, offer_type)
        loop = asyncio.get_running_loop()
        # Building a renderer reads model files and sets up networks: not event-loop work.
        renderer = await loop.run_in_executor(self._executor, self._renderer_factory, artwork)
        connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peer = _KioskPeer(connection)

        @connection.on("connectionstatechange")
        def forget_when_over() -> None:
            if connection.connectionState in ("failed", "closed"):
                self._retire(kiosk_id, peer)

        try:
            with _blaming_the_offer("cannot be used"):
                await connection.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type=offer_type))
            self._attach_preview(peer, renderer)
            with _blaming_the_offer("cannot be answered"):
                await connection.setLocalDescription(await connection.createAnswer())
        except BaseException:
            await self._close(peer)
            raise
        previous = self._peers.get(kiosk_id)
        self._peers[kiosk_id] = peer
        if previous is not None:
            await self._close(previous)
        return connection.localDescription.sdp, connection.localDescription.type

    def set_artwork(self, kiosk_id: str, artwork: Artwork) -> bool:
        """Switch the kiosk's preview to ``artwork`` from its next frame; False when it has no preview."""
        preview = self._preview(kiosk_id)
        if preview is None:
            return False
        preview.set_artwork(artwork)
        return True

    def pause_rendering(self, kiosk_id: str, paused: bool) -> bool:
        """Hold (or resume) the kiosk's preview rendering; False when it has no preview."""
        preview = self._preview(kiosk_id)
        if preview is None:
            return False
        preview.pause_rendering(paused)
        return True

    def stats(self, kiosk_id: str) -> dict[str, object] | None:
        """The connection state and the preview's statistics; None when the kiosk is not connected."""
        peer = self._peers.get(kiosk_id)
        if peer is None or peer.preview is None:
            return None
        return {"connection": peer.connection.connectionState} | peer.preview.stats().as_dict()

    def latest_frame(self, kiosk_id: str) -> np.ndarray | None:
        """The kiosk's newest rendered camera frame (RGB uint8), for capturing without an upload."""
        preview = self._preview(kiosk_id)
        return preview.latest_camera_frame() if preview is not None else None

    async def close(self, kiosk_id: str) -> bool:
        """Close the kiosk's connection; False when it had none."""
        peer = self._peers.pop(kiosk_id, None)
        if peer is None:
            return False
        await self._close(peer)
        return True

    async def close_all(self) -> None:
        """Close every connection and wait until their previews have stopped (server shutdown)."""
        peers = list(self._peers.values())
        self._peers.clear()
        await asyncio.gather(*(self._close(peer) for peer in peers), *self._closing)

    def _preview(self, kiosk_id: str) -> PreviewTrack | None:
        peer = self._peers.get(kiosk_id)
        return peer.preview if peer is not None else None

    def _attach_preview(self, peer: _KioskPeer, renderer: PreviewRenderer) -> None:
        """Send the preview back on the first camera's video section; turn every other section off."""
        for transceiver in peer.connection.getTransceivers():
            camera = transceiver.receiver.track
            if peer.preview is None and transceiver.kind == "video" and camera is not None:
                peer.preview = PreviewTrack(
                    camera,
                    renderer,
                    self._executor,
                    colour_executor=self._colour_executor,
                    stats_window=self._stats_window,
                )
                transceiver.sender.replaceTrack(peer.preview)
                transceiver.direction = "sendrecv"
            else:
                # Audio or a second camera: aiortc would decode it into a queue nobody reads.
                transceiver.direction = "inactive"

    def _retire(self, kiosk_id: str, peer: _KioskPeer) -> None:
        # Only the kiosk's current peer: a replaced or never-registered one is closed by its owner.
        if self._peers.get(kiosk_id) is not peer:
            return
        del self._peers[kiosk_id]
        task = asyncio.get_running_loop().create_task(self._close(peer), name=f"kiosk-peer-close-{kiosk_id}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, peer: _KioskPeer) -> None:
        await peer.connection.close()
        if peer.preview is not None:
            peer.preview.stop()
            await peer.preview.wait_stopped()


def _yield_to_the_frames() -> None:
    """Lower the calling thread's CPU priority (Linux: a thread's own nice value; elsewhere the
    call would lower the whole process, so it is left alone)."""
    if sys.platform == "linux":
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + COLOUR_REFIT_NICENESS))


@contextlib.contextmanager
def _blaming_the_offer(what_failed: str) -> Iterator[None]:
    """Turn aiortc's failures on the offer's content into an OfferError.

    aiortc reports SDP it cannot parse or use with whatever its failing statement raised:
    ValueError, IndexError, KeyError, AttributeError, AssertionError, even StopIteration.
    """
    try:
        yield
    except Exception as exc:
        raise OfferError(f"the offer {what_failed} ({type(exc).__name__}: {exc})") from exc


def _check_offer(offer_sdp: str, offer_type: str) -> None:
    """Refuse what aiortc would accept silently: it takes any text as an SDP with no media."""
    if offer_type != "offer":
        raise OfferError(f"expected an SDP offer (type 'offer'), got type {offer_type!r}")
    if not isinstance(offer_sdp, str) or not offer_sdp.strip():
        raise OfferError("the offer has no SDP")
    with _blaming_the_offer("cannot be parsed"):
        description = SessionDescription.parse(offer_sdp)
    videos = [media for media in description.media if media.kind == "video"]
    if not videos:
        raise OfferError("the offer has no video: the preview needs the kiosk's camera")
    # The preview goes back on the first video section. An absent direction means sendrecv (RFC 4566).
    direction = videos[0].direction or "sendrecv"
    if direction != "sendrecv":
        raise OfferError(
            f"the offer's video must be sendrecv (camera to the server, preview back), not {direction}"
        )
