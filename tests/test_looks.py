"""The two looks as users meet them: `artbooth compose --look`, the REST API's `look`, and the compose
workers warmed up before the service says it is ready. Package images only (the astronaut), real
models, a real server on loopback."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import pytest_asyncio
import skimage.data
from PIL import Image

from cli_helpers import run
from booth_helpers import paired_booth
from api_helpers import ADMIN, CHEAP_HASHES, bearer, browser, new_token, running_with_staff, sign_in
from db import service
from imagefiles import encoded
from kiosk.errors import ExitCode
from pipeline.harmonize.harmonizer import SWITCH_MARGIN
from servers import loopback_settings
from web.keys import CATALOGUE_KEY, POOL_KEY, STORAGE_KEY


@pytest.fixture(scope="module")
def painting_files(tmp_path_factory) -> Path:
    """A strongly coloured painting-like artwork (broad red and blue strokes) given as files."""
    folder = tmp_path_factory.mktemp("painting")
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    coarse[..., 1] //= 4  # little green: a palette far from the photo's
    painting = cv2.GaussianBlur(cv2.resize(coarse, (960, 720), interpolation=cv2.INTER_NEAREST), (0, 0), 4)
    Image.fromarray(painting).save(folder / "strokes.png")
    boxes = {"close-up": [0.3, 0.3, 0.7, 1.0], "half-body": [0.3, 0.25, 0.7, 1.0], "full-body": [0.4, 0.2, 0.6, 0.95]}
    (folder / "strokes.json").write_text(json.dumps({"title": "Strokes", "artist": "test", "year": "2026", "boxes": boxes}))
    return folder / "strokes.png"


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory, models_dir) -> dict[str, str]:
    return os.environ | {
        "ARTBOOTH_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "ARTBOOTH_MODELS_DIR": str(models_dir),
    }


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    path.write_bytes(encoded(skimage.data.astronaut(), quality=95))
    return path


def compose(look: str, photo: Path, artwork: Path, env: dict[str, str], out: Path) -> dict:
    done = run(["compose", str(photo), "--artwork", str(artwork), "-o", str(out), "--look", look, "--json"], env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_kept_by_the_switch_rule(candidates: list[dict]) -> None:
    """One kept; it is the default (the first) unless another scores clearly higher, then the best."""
    kept = [c for c in candidates if c["kept"]]
    assert len(kept) == 1, candidates
    assert all(isinstance(c["score"], float) and 0.0 <= c["score"] <= 1.0 for c in candidates), candidates
    best = max(candidates, key=lambda c: c["score"])
    expected = best if best["score"] > candidates[0]["score"] + SWITCH_MARGIN else candidates[0]
    assert kept[0]["name"] == expected["name"], candidates


def test_compose_painted_repaints_only_the_visitor_and_reports_every_candidate(cli_env, photo, painting_files, tmp_path):
    artwork = np.asarray(Image.open(painting_files).convert("RGB"))
    results = {}
    for look in ("realistic", "painted"):
        report = compose(look, photo, painting_files, cli_env, tmp_path / f"{look}.png")
        image = np.asarray(Image.open(tmp_path / f"{look}.png").convert("RGB"))
        results[look] = (report, image)
        assert report["look"] == look
        # Outside the visitor's rect the painting is as it was, bit for bit.
        x0, y0, x1, y1 = report["placement"]["rect"]
        outside = np.ones(artwork.shape[:2], bool)
        outside[max(y0, 0) : y1, max(x0, 0) : x1] = False
        assert np.array_equal(image[outside], artwork[outside])
        stages = {c["stage"] for c in report["candidates"]}
        assert stages == ({"colour_light", "painted"} if look == "painted" else {"colour_light"})
        for stage in stages:
            assert_kept_by_the_switch_rule([c for c in report["candidates"] if c["stage"] == stage])
        assert {"segmentation", "harmonize", "blend"} <= set(report["timings_ms"]) and "faces" in report["timings_beside_ms"]

    painted_report, painted = results["painted"]
    _, realistic = results["realistic"]
    kept = next(c for c in painted_report["candidates"] if c["stage"] == "painted" and c["kept"])
    assert painted_report["score"] == kept["score"]
    assert painted_report["stylize"]["strength"] == pytest.approx(0.8)
    assert {"painting_style", "stylize", "painted_variants"} <= set(painted_report["timings_ms"])
    # The visitor is visibly repainted.
    x0, y0, x1, y1 = painted_report["placement"]["rect"]
    inside = (slice(max(y0, 0), y1), slice(max(x0, 0), x1))
    difference = np.abs(painted[inside].astype(int) - realistic[inside].astype(int)).mean()
    assert difference > 3.0, difference


def test_compose_refuses_an_unknown_look_or_strength(cli_env, photo, painting_files, tmp_path):
    done = run(["compose", str(photo), "--artwork", str(painting_files), "-o", str(tmp_path / "x.png"), "--look", "oil"], cli_env)
    assert done.returncode == ExitCode.USAGE
    assert "look must be one of realistic, painted, not 'oil'" in done.stderr
    done = run(
        ["compose", str(photo), "--artwork", str(painting_files), "-o", str(tmp_path / "x.png"), "--look", "painted",
         "--stylize-strength", "1.5"],
        cli_env,
    )
    assert done.returncode == ExitCode.USAGE
    assert "--stylize-strength must be from 0 to 1" in done.stderr
    assert not (tmp_path / "x.png").exists()


# --- the service -----------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory, models_dir):
    settings = loopback_settings(
        tmp_path_factory.mktemp("looks-api"),
        models_dir,
        **CHEAP_HASHES,
        ARTBOOTH_KEEP_RAW_PHOTOS="true",
        ARTBOOTH_COMPOSE_WARM_UP="true",  # as a booth runs: the warm-up test below checks it
    )
    async with running_with_staff(settings) as test_server:
        yield test_server


def upload(photo: bytes, artwork: str, **fields: str):
    import aiohttp

    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("photo", photo, filename="me.jpg", content_type="image/jpeg")
    form.add_field("artwork", artwork)
    for name, value in fields.items():
        form.add_field(name, value)
    return form


@pytest.mark.asyncio(loop_scope="module")
async def test_the_service_is_ready_only_once_each_worker_has_composed(server):
    warm_ups = server.app[POOL_KEY].warm_ups
    assert len(warm_ups) == server.app[STORAGE_KEY].settings.compose_workers == 1
    [warm_up] = warm_ups
    # Every model loaded (the stylization networks too) and a photo composed through every stage.
    assert warm_up["ms"]["models"] > 0 and warm_up["ms"]["dummy_compose"] > 0
    assert {"dummy_faces", "dummy_segmentation", "dummy_harmonize", "dummy_stylize"} <= set(warm_up["ms"])


@pytest.mark.asyncio(loop_scope="module")
async def test_api_composes_in_the_look_asked_for_and_refuses_another(server):
    import aiohttp

    token = await new_token(server)
    photo = encoded(skimage.data.astronaut())
    async with aiohttp.ClientSession(headers=bearer(token)) as http:
        url = server.make_url("/api/v1/compositions")
        async with http.post(url, data=upload(photo, "demo-golden-meadow", look="painted")) as response:
            body = await response.json()
            assert response.status == 201, body
        assert body["look"] == "painted" and body["options"]["look"] == "painted"
        assert body["options"]["stylize_strength"] == pytest.approx(0.8)
        painted = [c for c in body["candidates"] if c["stage"] == "painted"]
        assert painted and sum(c["kept"] for c in painted) == 1
        assert body["score"] == next(c["score"] for c in painted if c["kept"])

        async with http.post(url, data=upload(photo, "demo-golden-meadow", look="bogus")) as response:
            problem = await response.json(content_type=None)
            assert response.status == 400, problem
        assert response.content_type == "application/problem+json"
        assert "look must be one of realistic, painted" in problem["detail"]

    # Staff compose the painted photo again in the realistic look: its scores lose the painted variants.
    photo_id = body["photo"]["id"]
    sessions = server.app[STORAGE_KEY].sessions
    assert "painted" in (await service.get_photo(sessions, photo_id)).scores
    async with browser() as staff:
        csrf = await sign_in(staff, server, ADMIN)
        form = {"csrf_token": csrf, "harmonize": "on", "targets": "fitted", "strength": "1", "reference": "",
                "look": "realistic", "stylize_strength": "0.8"}
        url = server.make_url(f"/staff/photos/{photo_id}/reharmonize")
        async with staff.post(url, data=form, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        assert "painted" not in (await service.get_photo(sessions, photo_id)).scores
        async with staff.post(url, data=form | {"look": "sketch"}, allow_redirects=False) as response:
            assert response.status == 400 and "look must be one of realistic, painted" in await response.text()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_booth_choosing_an_artwork_readies_its_painted_style_before_the_capture(server):
    pool, catalogue = server.app[POOL_KEY], server.app[CATALOGUE_KEY]
    painted = dataclasses.replace(pool.harmonization, look="painted")
    photo = encoded(skimage.data.astronaut())

    async def compose_on(artwork_id: str) -> dict:
        source = await catalogue.source_of(await catalogue.offered_at_kiosk("gallery-2", artwork_id))
        outcome = await pool.compose(photo, source, harmonization=painted)
        assert outcome.ok, outcome.error
        return outcome.report["stylize"]

    # An artwork no booth chose: its first painted photo computes the style.
    assert (await compose_on("demo-velvet-studio"))["style_ready"] is False

    booth = await paired_booth(server, "gallery-2")
    async with booth:
        url = server.make_url("/api/kiosks/gallery-2/artwork")
        async with booth.post(url, json={"artwork": "demo-midnight-harbour"}) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["look"] == "visitor"
    await pool.prepared()
    # The booth's choice readied it in the worker: the visitor's photo finds the style there.
    assert (await compose_on("demo-midnight-harbour"))["style_ready"] is True
