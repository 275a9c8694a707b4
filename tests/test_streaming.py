"""The live preview over real WebRTC on loopback: an aiortc client with a synthetic camera
(a real portrait moving across a flat-coloured room) talks to KioskPeers in the same process."""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import gc
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aioice.ice
import cv2
import numpy as np
import pytest
import torch
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_PTIME, VIDEO_TIME_BASE, MediaStreamError
from av import VideoFrame

import streaming
from kiosk.models import ModelStore
from pipeline.faces import MtcnnFaceDetector
from pipeline.matting import SelfieSegmenter
from pipeline.types import Artwork, ArtworkSpec, Framing, NormBox
from streaming.preview import AlphaSmoother, PreviewModels, PreviewRenderer, preview_size, render_offline
from streaming.sessions import KioskPeers, OfferError
from streaming.track import NewestFrameMailbox, PreviewTrack

CAMERA_SIZE = (640, 480)
ROOM = np.array([60, 170, 70])  # the visitor's room: flat green
PAINT = np.array([150, 40, 170])  # the test artwork: flat purple...
CHECKER = (np.array([240, 220, 30]), np.array([20, 40, 200]))  # ...with a yellow/blue checkerboard top left
CHECKER_CELLS = 4  # cells per side, over the top-left quarter of each side
BOX = NormBox(0.3, 0.35, 0.7, 1.0)  # every framing's box: the test does not depend on the framing
STREAMING_DIR = str(Path(streaming.__file__).parent)


def make_artwork(width: int, height: int, paint: np.ndarray, artwork_id: str) -> Artwork:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = paint
    cell_w, cell_h = width // 4 // CHECKER_CELLS, height // 4 // CHECKER_CELLS
    for row in range(CHECKER_CELLS):
        for col in range(CHECKER_CELLS):
            image[row * cell_h : (row + 1) * cell_h, col * cell_w : (col + 1) * cell_w] = CHECKER[(row + col) % 2]
    spec = ArtworkSpec(id=artwork_id, title="Test", artist="Tests", year="2024", boxes={f: BOX for f in Framing})
    return Artwork(spec=spec, image=image)


@pytest.fixture(scope="module")
def artwork() -> Artwork:
    return make_artwork(960, 720, PAINT, "test-purple")


@pytest.fixture(scope="module")
def preview_models(session_settings):
    # Loading the preview's models sets torch's threads for the process: give the rest of the suite its own.
    threads = torch.get_num_threads()
    yield PreviewModels(session_settings)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def person(session_settings, astronaut) -> np.ndarray:
    """The astronaut at 400x400, cut out with the selfie segmenter once, in front of the room.

    The room is one flat colour, so this patch is the visitor wherever she stands in it.
    """
    photo = cv2.resize(astronaut, (400, 400), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = SelfieSegmenter(ModelStore(session_settings).selfie_interpreter())(photo.astype(np.uint8))[:, :, None]
    return np.rint(ROOM + alpha * (photo - ROOM)).astype(np.uint8)


def camera_frame(person: np.ndarray, x: int, size: tuple[int, int] = CAMERA_SIZE) -> np.ndarray:
    """The room with the visitor standing at column ``x``, cut by the frame's bottom edge like a bust."""
    width, height = size
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = ROOM
    ph, pw = person.shape[:2]
    frame[height - ph :, x : x + pw] = person
    return frame


class WalkingVisitorCamera(VideoStreamTrack):
    """A 30 fps camera: the visitor walks to and fro across the room, 3 pixels a frame."""

    def __init__(self, person: np.ndarray) -> None:
        super().__init__()
        self._person = person
        self._frames = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        span = CAMERA_SIZE[0] - self._person.shape[1]
        step = (3 * self._frames) % (2 * span)
        x = step if step <= span else 2 * span - step
        self._frames += 1
        frame = VideoFrame.from_ndarray(camera_frame(self._person, x), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


@pytest.fixture
def loopback_ice(monkeypatch):
    """Host candidates on 127.0.0.1 only.

    aioice gathers host candidates from every interface except 127.0.0.1, which it skips on
    purpose; on a machine with only loopback (a CI sandbox) there would be no candidate at
    all, and on others the test would depend on the LAN. Both peers here live in this process.
    """
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
async def executor():
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="preview-test")
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
async def colour_executor():
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview-colour-test")
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
async def peers(session_settings, preview_models, executor, loopback_ice):
    kiosk_peers = KioskPeers(session_settings, preview_models.renderer, executor)
    yield kiosk_peers
    await kiosk_peers.close_all()


class Kiosk:
    """The browser's side: sends the camera, receives the preview."""

    def __init__(self, camera: VideoStreamTrack) -> None:
        self.connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.connection.addTrack(camera)
        self.preview: asyncio.Future = asyncio.get_running_loop().create_future()
        self.connection.on("track", self.preview.set_result)

    async def connect(self, peers: KioskPeers, kiosk_id: str, artwork: Artwork) -> None:
        await self.connection.setLocalDescription(await self.connection.createOffer())
        offer = self.connection.localDescription
        sdp, kind = await peers.answer(kiosk_id, offer.sdp, offer.type, artwork)
        await self.connection.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))

    async def next_preview_frame(self) -> np.ndarray:
        track = await asyncio.wait_for(self.preview, 20)
        frame = await asyncio.wait_for(track.recv(), 20)
        return frame.to_ndarray(format="rgb24")

    async def close(self) -> None:
        await self.connection.close()


def our_tasks() -> list[asyncio.Task]:
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "cr_code", None) is not None
        and task.get_coro().cr_code.co_filename.startswith(STREAMING_DIR)
    ]


def open_peer_connections() -> list[RTCPeerConnection]:
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is RTCPeerConnection and o.connectionState != "closed"]


def live_resident_bytes() -> int:
    """Resident memory after garbage collection and after glibc gave back the free heap.

    Every connection brings new threads (aiortc's decoder thread, encoder jobs), and glibc
    keeps freed memory in per-thread arenas: without the trim, RSS drifts up by tens of MB
    and plateaus even when nothing leaks.
    """
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def patch_mean(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    return image[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b).max())


def assert_visitor_inside_the_artwork(preview: np.ndarray) -> None:
    """The room is gone, the painting is around the visitor, the visitor stands in the box."""
    height, width = preview.shape[:2]
    assert (width, height) == CAMERA_SIZE  # the 4:3 artwork fills the 4:3 camera frame
    bx0, by0, bx1, by1 = BOX.to_pixels(width, height)
    # Left and right of the box, below the checkerboard: the camera saw the room there.
    left = patch_mean(preview, 20, by0, bx0 - 20, height - 10)
    right = patch_mean(preview, bx1 + 20, by0, width - 20, height - 10)
    for margin in (left, right):
        assert colour_distance(margin, PAINT) < 20, margin
    near_room = np.all(np.abs(preview.astype(int) - ROOM) < 35, axis=2)
    assert near_room.mean() < 0.005, "the room's colour must not reach the preview"
    # The visitor's chest, at the middle of the box and low in it: her suit, not paint, not room.
    centre_x = (bx0 + bx1) // 2
    chest = patch_mean(preview, centre_x - 15, height - 80, centre_x + 15, height - 50)
    assert colour_distance(chest, PAINT) > 60 and colour_distance(chest, ROOM) > 60, chest
    # The checkerboard: scaled with the painting, neither stretched nor moved.
    cell_w, cell_h = width // 4 // CHECKER_CELLS, height // 4 // CHECKER_CELLS
    for row in range(CHECKER_CELLS):
        for col in range(CHECKER_CELLS):
            cx, cy = col * cell_w + cell_w // 2, row * cell_h + cell_h // 2
            cell = patch_mean(preview, cx - 3, cy - 3, cx + 3, cy + 3)
            assert colour_distance(cell, CHECKER[(row + col) % 2]) < 40, (row, col, cell)


async def test_preview_shows_the_moving_visitor_inside_the_artwork(peers, person, artwork):
    kiosk = Kiosk(WalkingVisitorCamera(person))
    try:
        await kiosk.connect(peers, "kiosk-1", artwork)
        for _ in range(10):  # let the encoder's first, coarse frames pass
            await kiosk.next_preview_frame()
        loop = asyncio.get_running_loop()
        started = loop.time()
        frames = [await kiosk.next_preview_frame() for _ in range(30)]
        received_fps = (len(frames) - 1) / (loop.time() - started)
        print(f"preview frames received: {received_fps:.1f} fps")
        for preview in frames:
            assert_visitor_inside_the_artwork(preview)

        stats = peers.stats("kiosk-1")
        print("preview stats:", stats)
        assert stats["connection"] == "connected"
        assert stats["fps_in"] > 0 and stats["fps_out"] > 0 and stats["processing_ms_p50"] > 0
        assert stats["render_errors"] == 0
        # Every camera frame read was rendered or counted as a drop, except one waiting in the
        # mailbox and one being rendered.
        assert 0 <= stats["frames_in"] - stats["frames_rendered"] - stats["drops"] <= 2, stats
        assert stats["frames_out"] >= 40
        camera = peers.latest_frame("kiosk-1")
        assert camera.shape == (CAMERA_SIZE[1], CAMERA_SIZE[0], 3) and camera.dtype == np.uint8
    finally:
        await kiosk.close()


async def test_a_reconnecting_kiosk_replaces_its_old_connection_and_close_all_leaves_nothing(
    peers, person, artwork
):
    first, second = Kiosk(WalkingVisitorCamera(person)), Kiosk(WalkingVisitorCamera(person))
    try:
        await first.connect(peers, "kiosk-1", artwork)
        await first.next_preview_frame()
        await second.connect(peers, "kiosk-1", artwork)
        await second.next_preview_frame()
        # The old connection's preview has ended on the kiosk's side.
        old_preview = first.preview.result()
        with pytest.raises(MediaStreamError):
            while True:
                await asyncio.wait_for(old_preview.recv(), 20)
        assert peers.kiosk_ids() == ["kiosk-1"]
        assert peers.stats("kiosk-1")["connection"] == "connected"

        await peers.close_all()
        assert peers.kiosk_ids() == [] and peers.stats("kiosk-1") is None
        assert our_tasks() == []
    finally:
        await first.close()
        await second.close()
    assert open_peer_connections() == []


async def test_set_artwork_switches_the_live_preview(peers, person, artwork):
    gold = make_artwork(960, 720, np.array([220, 180, 40]), "test-gold")
    kiosk = Kiosk(WalkingVisitorCamera(person))
    try:
        await kiosk.connect(peers, "kiosk-1", artwork)
        await kiosk.next_preview_frame()
        assert peers.set_artwork("kiosk-1", gold) and not peers.set_artwork("nobody", gold)
        for _ in range(30):
            frame = await kiosk.next_preview_frame()
            if colour_distance(patch_mean(frame, 20, 300, 150, 460), gold.image[-1, 0]) < 20:
                break
        else:
            pytest.fail("the preview never switched to the new artwork")
    finally:
        await kiosk.close()


@pytest.mark.parametrize(
    "sdp, kind, message",
    [
        ("this is not SDP", "offer", "no video"),
        ("", "offer", "no SDP"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "offer", "ICE"),
        ("v=0\r\nm=video x\r\n", "offer", "cannot be parsed"),
        ("v=0\r\n", "answer", "type 'offer'"),
    ],
)
async def test_a_malformed_offer_is_refused_with_a_reason(peers, sdp, kind, message):
    with pytest.raises(OfferError, match=message):
        await peers.answer("kiosk-1", sdp, kind, None)
    assert peers.kiosk_ids() == []


async def test_an_offer_without_camera_or_without_a_way_back_is_refused(peers, artwork):
    receive_only = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    send_only = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        receive_only.addTransceiver("video", direction="recvonly")
        send_only.addTransceiver(VideoStreamTrack(), direction="sendonly")
        for client, direction in ((receive_only, "recvonly"), (send_only, "sendonly")):
            await client.setLocalDescription(await client.createOffer())
            with pytest.raises(OfferError, match=f"must be sendrecv.*not {direction}"):
                await peers.answer("kiosk-1", client.localDescription.sdp, "offer", artwork)
    finally:
        await receive_only.close()
        await send_only.close()


async def test_connect_disconnect_cycles_leave_no_tasks_connections_or_memory_behind(peers, person, artwork):
    rss_after: dict[int, int] = {}
    for cycle in range(1, 51):
        kiosk = Kiosk(WalkingVisitorCamera(person))
        try:
            await kiosk.connect(peers, "kiosk-1", artwork)
            await kiosk.next_preview_frame()
        finally:
            await kiosk.close()
        # The kiosk went away: the server notices (its connection closes) and forgets it.
        async with asyncio.timeout(20):
            while peers.kiosk_ids():
                await asyncio.sleep(0.01)
        if cycle in (10, 50):
            while our_tasks():
                await asyncio.sleep(0.01)
            rss_after[cycle] = live_resident_bytes()
    assert open_peer_connections() == []
    assert our_tasks() == []
    growth_mb = (rss_after[50] - rss_after[10]) / 2**20
    print(f"RSS after 10 cycles {rss_after[10] / 2**20:.0f} MB, after 50 {rss_after[50] / 2**20:.0f} MB")
    # A renderer's state alone (networks, scaled artwork, smoothing buffers) is a few MB, so
    # leaking one per connection would show as 100+ MB here; measured noise is about 20 MB.
    assert growth_mb < 50, f"memory grew by {growth_mb:.0f} MB over 40 connections"


async def test_the_track_keeps_the_cameras_pace_and_timestamps_and_stopping_it_ends_its_tasks(
    preview_models, executor, colour_executor, person, artwork
):
    camera = WalkingVisitorCamera(person)
    track = PreviewTrack(
        camera, preview_models.renderer(artwork), executor, colour_executor=colour_executor, stats_window=30
    )
    try:
        frames = [await asyncio.wait_for(track.recv(), 20) for _ in range(15)]
    finally:
        track.stop()
        await track.wait_stopped()
    stamps = [frame.pts for frame in frames]
    # One frame out per camera frame at most, each with a camera frame's own timestamp, and
    # a repeated picture does not restamp the frames handed out before it.
    assert all(later > earlier for earlier, later in zip(stamps, stamps[1:]))
    assert all(frame.time_base == VIDEO_TIME_BASE for frame in frames)
    assert all(pts % round(VIDEO_CLOCK_RATE * VIDEO_PTIME) == 0 for pts in stamps)
    stats = track.stats()
    assert stats.frames_out == 15 and stats.frames_in >= 15
    assert set(stats.as_dict()) >= {"fps_in", "fps_out", "drops", "processing_ms_p50", "processing_ms_p95"}

    assert our_tasks() == []  # stopping the track ended its reader and render tasks
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_a_paused_preview_keeps_flowing_without_rendering_and_resumes(
    preview_models, executor, colour_executor, person, artwork
):
    # What a capture does: the booth shows "processing", the preview's cores go to the capture.
    track = PreviewTrack(
        WalkingVisitorCamera(person), preview_models.renderer(artwork), executor, colour_executor=colour_executor, stats_window=30
    )
    try:
        for _ in range(3):
            await asyncio.wait_for(track.recv(), 20)
        track.pause_rendering(True)
        # A render already under way may still finish (none starts after the pause): wait until it has.
        rendered = -1
        while track.stats().frames_rendered != rendered:
            rendered = track.stats().frames_rendered
            await asyncio.wait_for(track.recv(), 20)
            await asyncio.sleep(0.5)
        for _ in range(10):
            await asyncio.wait_for(track.recv(), 20)
        paused = track.stats()
        assert paused.frames_rendered == rendered and paused.frames_repeated >= 10
        track.pause_rendering(False)
        for _ in range(10):
            await asyncio.wait_for(track.recv(), 20)
        assert track.stats().frames_rendered > rendered
    finally:
        track.stop()
        await track.wait_stopped()


class HeldHarmonizer:
    """The preview's real harmonizer, each call held until the test lets it go: a colour refit
    that lasts as long as the test wants."""

    def __init__(self, harmonizer) -> None:
        self._harmonizer = harmonizer
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args, **kwargs):
        self.started.set()
        if not self.release.wait(60):
            raise TimeoutError("the test never let the colour refit go")
        return self._harmonizer(*args, **kwargs)


async def test_frames_and_faces_keep_coming_while_the_colour_is_refitted(
    session_settings, preview_models, executor, colour_executor, person, artwork
):
    store = ModelStore(session_settings)
    held = HeldHarmonizer(preview_models.harmonizer)
    renderer = PreviewRenderer(
        session_settings,
        artwork,
        portrait_segmenter=SelfieSegmenter(store.selfie_interpreter()),
        landscape_segmenter=SelfieSegmenter(store.selfie_interpreter(landscape=True)),
        face_detector=MtcnnFaceDetector(*store.mtcnn_states()),
        harmonizer=held,
    )
    track = PreviewTrack(WalkingVisitorCamera(person), renderer, executor, colour_executor=colour_executor, stats_window=30)
    try:
        async with asyncio.timeout(60):
            while not held.started.is_set():  # faces found, the visitor shown, then the first refit
                await track.recv()
            rendered, detections = track.stats().frames_rendered, renderer.face_detections
            # The visitor walks on: new frames, and new faces for them, while the refit runs.
            while track.stats().frames_rendered < rendered + 10 or renderer.face_detections < detections + 1:
                await track.recv()
        assert renderer.colour is None and renderer.colour_refreshes == 0, "the refit is still held"
        assert track.stats().render_errors == 0

        held.release.set()
        async with asyncio.timeout(60):
            while renderer.colour is None:  # the frames after the refit are corrected
                await track.recv()
        assert renderer.colour_refreshes >= 1
    finally:
        held.release.set()
        track.stop()
        await track.wait_stopped()


async def test_a_slow_consumer_gets_the_newest_frame_and_each_overwritten_frame_is_a_drop():
    mailbox: NewestFrameMailbox[int] = NewestFrameMailbox()
    waiting = asyncio.ensure_future(mailbox.take())
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing to take yet
    mailbox.put(1)
    assert await waiting == 1 and mailbox.drops == 0
    for frame in range(2, 11):  # the consumer is busy: nine frames arrive
        mailbox.put(frame)
    assert await mailbox.take() == 10
    assert mailbox.drops == 8  # frames 2..9 were overwritten unread
    mailbox.put(11)
    assert await mailbox.take() == 11 and mailbox.drops == 8


def test_renderer_switches_artwork_on_the_next_frame_and_maps_faces_to_a_new_frame_size(
    session_settings, person, artwork
):
    store = ModelStore(session_settings)
    renderer = PreviewRenderer(
        # Faces and matte on the whole camera frame, so the halved frame below is another size to them.
        dataclasses.replace(session_settings, preview_matte_long_side=640),
        artwork,
        portrait_segmenter=SelfieSegmenter(store.selfie_interpreter()),
        landscape_segmenter=SelfieSegmenter(store.selfie_interpreter(landscape=True)),
        face_detector=MtcnnFaceDetector(*store.mtcnn_states()),
        clock=lambda: 0.0,  # time stands still: faces are detected once, on the first frame
    )
    frame = camera_frame(person, 120)
    first = render_offline(renderer, frame)
    bx0, _, bx1, _ = BOX.to_pixels(*CAMERA_SIZE)
    chest = patch_mean(first, (bx0 + bx1) // 2 - 15, CAMERA_SIZE[1] - 80, (bx0 + bx1) // 2 + 15, CAMERA_SIZE[1] - 50)
    assert colour_distance(chest, PAINT) < 20, "no faces known yet: the bare artwork"
    assert renderer.face_detections == 1  # found on the first frame, used from the second
    assert_visitor_inside_the_artwork(render_offline(renderer, frame))
    faces = renderer.faces
    assert len(faces) == 1

    portrait = make_artwork(600, 800, np.array([30, 90, 200]), "test-blue-portrait")
    renderer.set_artwork(portrait)
    preview = render_offline(renderer, frame)
    assert preview.shape == (480, 360, 3)  # the 3:4 artwork fitted into the 4:3 camera frame
    assert colour_distance(patch_mean(preview, 5, 300, 60, 470), portrait.image[-1, 0]) < 5

    # The browser halves its sending size: the same view, so the faces are mapped, not re-detected.
    half = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)
    preview = render_offline(renderer, half)
    assert preview.shape == (240, 180, 3)
    assert renderer.face_detections == 1
    np.testing.assert_allclose(renderer.faces[0].box, np.array(faces[0].box) / 2, rtol=1e-6)
    np.testing.assert_allclose(renderer.faces[0].landmarks, faces[0].landmarks / 2, rtol=1e-6)
    bx0, by0, bx1, by1 = BOX.to_pixels(180, 240)
    chest = patch_mean(preview, (bx0 + bx1) // 2 - 5, 200, (bx0 + bx1) // 2 + 5, 215)
    assert colour_distance(chest, portrait.image[-1, 0]) > 60, "the visitor is placed on the smaller frame too"


def test_alpha_smoothing_steadies_a_still_edge_and_follows_motion_at_once():
    smoother = AlphaSmoother(still_weight=0.35, motion_levels=24.0)
    still = np.full((120, 160, 3), 100, np.uint8)
    flicker = [np.full((120, 160), v, np.float32) for v in (0.6, 0.3)]
    smoothed = [smoother(still, flicker[i % 2])[60, 80] for i in range(20)]
    assert np.ptp(smoothed[-6:]) < 0.5 * 0.3  # the network's 0.3 flicker, more than halved

    moved = still.copy()
    moved[:, :80] = 200  # the image changed on the left half
    settled = smoother(moved, np.ones((120, 160), np.float32))
    assert settled[60, 10] == 1.0  # moving pixels take the new alpha at once
    assert settled[60, 150] < 0.9  # still pixels only move part of the way


def test_preview_size_fits_the_artworks_aspect_with_even_sides():
    assert preview_size(640, 480, 960, 720) == (640, 480)
    assert preview_size(640, 480, 600, 800) == (360, 480)
    assert preview_size(640, 480, 1920, 1080) == (640, 360)
    assert preview_size(641, 481, 960, 720) == (640, 480)  # odd sides are trimmed to even
