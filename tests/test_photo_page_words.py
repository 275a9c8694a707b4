"""The staff photo page tells staff in words how well the visitor blends in and what was done,
and keeps the raw numbers and operator JSON folded away. A real server on loopback with a real
SQLite file and photo folder; photos are stored through the service's own save call."""

from __future__ import annotations

import re

import numpy as np
import pytest
import pytest_asyncio

from api_helpers import ADMIN, CHEAP_HASHES, browser, running_with_staff, sign_in
from imagefiles import encoded
from servers import loopback_settings
from web.keys import STORAGE_KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")

MEADOW = "demo-golden-meadow"


def _report(score: float, variant: str) -> dict:
    return {
        "framing": "half-body",
        "people": 1,
        "timings_ms": {"faces": 100.0, "segmentation": 300.0, "harmonize": 80.0},
        "variant": {"name": variant, "targets": "fitted", "reference": "ring", "strength": 0.7, "operators": {"gain": [1.1, 1.0, 0.9]}},
        "scores": {"default": 0.123, variant: score},
        "score": score,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory, models_dir):
    settings = loopback_settings(tmp_path_factory.mktemp("photo-words"), models_dir, **CHEAP_HASHES)
    async with running_with_staff(settings) as test_server:
        yield test_server


async def _photo_page(server, score: float, variant: str) -> str:
    rng = np.random.default_rng(5)
    picture = encoded(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    saved = await server.app[STORAGE_KEY].save(picture, _report(score, variant), artwork_id=MEADOW)
    async with browser() as client:
        await sign_in(client, server, ADMIN)
        async with client.get(server.make_url(f"/staff/photos/{saved.photo_id}")) as response:
            assert response.status == 200
            return await response.text()


def _visible(page: str) -> str:
    """The page without its folded technical details."""
    return re.sub(r"<details.*?</details>", "", page, flags=re.S)


def _figure(page: str, name: str) -> str:
    return re.search(rf'<dd id="{name}">([^<]*)</dd>', page).group(1)


async def test_a_well_blended_photo_is_described_in_words(server) -> None:
    page = await _photo_page(server, 0.87, "gentle")
    assert _figure(page, "harmony-words") == "Blends in very well"
    assert _figure(page, "variant-words") == "Gentle colour-and-light match to the artwork"
    visible = _visible(page)
    # Staff see no score, no operator parameters, no JSON; operators can unfold them.
    for raw in ("0.87", "0.123", "operators", "&quot;targets&quot;", "{"):
        assert raw not in visible, raw
    details = re.search(r'<details class="technical" id="photo-technical">.*?</details>', page, re.S).group(0)
    assert "0.87" in details and "operators" in details


async def test_a_pasted_looking_photo_says_so(server) -> None:
    page = await _photo_page(server, 0.04, "untouched")
    assert _figure(page, "harmony-words") == "Looks pasted on"
    assert _figure(page, "variant-words") == "Colours left as photographed"
