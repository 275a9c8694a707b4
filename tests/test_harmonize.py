"""Harmonization on photos shipped in packages: what a visitor would notice in the result."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from kiosk.engine import load_harmonizer, reference_cache
from pipeline.harmonize.boundary import decontaminate_edge
from pipeline.harmonize.fit import fit_operators
from pipeline.harmonize.harmonizer import choose, standard_variants
from pipeline.harmonize.operators import BOUNDS, apply
from pipeline.harmonize.reference import reference_weights
from pipeline.harmonize.stats import region_stats, to_lab
from pipeline.harmonize.synthetic import perturb_region
from pipeline.harmonize.texture import high_frequency_energy, match_texture
from pipeline.placement import composite_layer, scaled_subject
from pipeline.types import Artwork, ArtworkSpec, Face, Framing, NormBox, ReferenceMode


@pytest.fixture(scope="module")
def harmonizer(session_settings):
    # Photos, not paintings: the learned targets are the photographic artworks' harmonizer.
    return load_harmonizer(session_settings, targets="learned")


def _fmse(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    inside = mask > 0
    return float(((result[inside].astype(float) - truth[inside]) ** 2).mean())


def _object_mask(shape, box) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 1
    return mask


CASES = [
    (skimage.data.astronaut, (150, 30, 330, 300), skimage.data.coffee),
    (skimage.data.chelsea, (100, 60, 330, 300), skimage.data.astronaut),
    (skimage.data.coffee, (180, 60, 450, 300), skimage.data.chelsea),
]


def test_harmonizing_a_perturbed_composite_brings_it_back_toward_the_original(harmonizer):
    before, after = [], []
    for seed in range(3):
        for make_photo, box, make_source in CASES:
            photo = make_photo()
            mask = _object_mask(photo.shape[:2], box)
            composite, _ = perturb_region(photo, mask, make_source(), np.random.default_rng(seed))
            alpha = mask.astype(np.float32)
            references = {
                ReferenceMode.ARTWORK: harmonizer.describe(composite, 1.0 - alpha),
                ReferenceMode.RING: harmonizer.describe(composite, 1.0 - alpha),
            }
            variants = standard_variants("learned", ReferenceMode.ARTWORK, 1.0)
            # As the product does: every candidate scored, the best one kept.
            chosen = choose(harmonizer.candidates(composite, composite, alpha, references, variants))
            harmonized = np.rint(apply(composite, chosen.params) * 255).astype(np.uint8)
            before.append(_fmse(composite, photo, mask))
            after.append(_fmse(harmonized, photo, mask))
    assert np.mean(after) < 0.85 * np.mean(before), (before, after)


def test_operator_parameters_stay_within_bounds_for_extreme_targets():
    photo = skimage.data.astronaut()
    mask = _object_mask(photo.shape[:2], (150, 30, 330, 300)).astype(np.float32)
    extremes = [
        np.full((64, 64, 3), (255, 255, 255), np.uint8),
        np.zeros((64, 64, 3), np.uint8),
        np.full((64, 64, 3), (0, 40, 255), np.uint8),
        np.tile(np.array([[0], [255]], np.uint8), (32, 64))[..., None].repeat(3, axis=2),
    ]
    for reference in extremes:
        target = region_stats(reference, np.ones(reference.shape[:2], np.float32))
        params = fit_operators(photo.astype(np.float32) / 255, mask, target, strength=1.0)
        assert params.within(BOUNDS), params


def test_a_foreground_that_already_matches_its_reference_is_left_nearly_unchanged():
    photo = skimage.data.chelsea()
    mask = _object_mask(photo.shape[:2], (100, 60, 330, 300)).astype(np.float32)
    fg = photo.astype(np.float32) / 255
    params = fit_operators(fg, mask, region_stats(photo, mask), strength=1.0)
    changed = np.abs(apply(photo, params) * 255 - photo)[mask > 0]
    assert changed.mean() < 1.5 and np.percentile(changed, 99) < 6


def test_a_paintings_dominant_hue_does_not_turn_a_face_blue(compositor, astronaut):
    starry = _starry_night_like()
    result = compositor(astronaut, starry)
    face = result.subject.faces[0]
    x0, y0, x1, y1 = (int(v) for v in face.box)
    rx0, ry0, rx1, ry1 = result.placement.rect
    scale = result.placement.scale
    sx0, sy0 = result.subject.box[:2]
    # The face's centre in the result.
    cx = int(rx0 + ((x0 + x1) / 2 - sx0) * scale)
    cy = int(ry0 + ((y0 + y1) / 2 - sy0) * scale)
    half = int((x1 - x0) * scale / 5)
    lab = to_lab(result.image[cy - half : cy + half, cx - half : cx + half])
    hue = np.degrees(np.arctan2(lab[..., 2].mean(), lab[..., 1].mean()))
    assert 10 < hue < 90, f"skin hue {hue:.0f} degrees: no longer a warm skin tone"
    assert result.harmonized is not None


def _starry_night_like() -> Artwork:
    height, width = 720, 1280
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    swirl = np.sin(xx / 37 + 3 * np.sin(yy / 53)) * 0.5 + 0.5
    image = np.stack([20 + 40 * swirl, 50 + 70 * swirl, 120 + 110 * swirl], axis=2).astype(np.uint8)
    boxes = {f: NormBox(0.3, 0.2, 0.7, 1.0) for f in Framing}
    return Artwork(ArtworkSpec("starry", "Starry", "V", "1889", boxes), image)


def test_reference_modes_mark_the_whole_artwork_a_ring_or_the_staff_region():
    boxes = {f: NormBox(0.4, 0.4, 0.6, 1.0) for f in Framing}
    spec = ArtworkSpec("a", "A", "B", "1", boxes, reference_region=NormBox(0.0, 0.0, 0.5, 0.25))
    artwork = Artwork(spec, np.zeros((100, 200, 3), np.uint8))
    box = spec.boxes[Framing.HALF_BODY].to_pixels(200, 100)
    whole = reference_weights(artwork, box, ReferenceMode.ARTWORK)
    ring = reference_weights(artwork, box, ReferenceMode.RING)
    region = reference_weights(artwork, box, ReferenceMode.REGION)
    assert whole.all()
    assert ring[box[1] : box[3], box[0] : box[2]].sum() == 0 and ring.sum() > 0
    assert ring[0, 0] == 0, "the ring stays near the box"
    assert region[:25, :100].all() and region.sum() == 25 * 100


def test_an_artworks_reference_regions_are_described_once_and_a_new_image_is_described_anew(session_settings):
    """A booth captures into the same artwork all day: its reference regions are described once
    (readied when the booth chooses it), and an artwork whose image changed is described again."""
    harmonizer = load_harmonizer(session_settings)
    starry = _starry_night_like()
    box = starry.spec.boxes[Framing.HALF_BODY].to_pixels(starry.width, starry.height)
    assert harmonizer.prepare(starry, box) == 2  # the ring and the whole artwork (the standard variants' two)
    assert harmonizer.prepare(starry, box) == 0
    described = harmonizer.reference(starry, box, ReferenceMode.RING)
    assert harmonizer.reference(starry, box, ReferenceMode.RING) is described
    fresh = harmonizer.describe(starry.image, reference_weights(starry, box, ReferenceMode.RING))
    assert described.stats == fresh.stats and described.chroma == fresh.chroma
    repainted = Artwork(starry.spec, starry.image[:, ::-1].copy())  # same id, another picture
    assert harmonizer.prepare(repainted, box) == 2
    assert harmonizer.reference(repainted, box, ReferenceMode.RING).stats != described.stats


def test_harmonizers_sharing_a_cache_describe_an_artwork_once(session_settings):
    """The engine's harmonizers (the settings', the dashboard's defaults, the learned targets) share
    one cache: a booth's choice readies the artwork for whichever composes the photo."""
    shared = reference_cache(session_settings)
    fitted = load_harmonizer(session_settings, targets="fitted", references=shared)
    learned = load_harmonizer(session_settings, targets="learned", references=shared)
    starry = _starry_night_like()
    box = starry.spec.boxes[Framing.CLOSE_UP].to_pixels(starry.width, starry.height)
    assert fitted.prepare(starry, box) == 2
    assert learned.prepare(starry, box) == 0
    assert learned.reference(starry, box, ReferenceMode.RING) is fitted.reference(starry, box, ReferenceMode.RING)


def test_a_sharp_subject_is_softened_to_a_soft_paintings_detail():
    rng = np.random.default_rng(3)
    sharp = np.clip(128 + rng.normal(0, 40, (200, 200, 3)), 0, 255).astype(np.uint8)
    soft_paint = np.full((300, 300, 3), 120, np.uint8) + (rng.normal(0, 1.0, (300, 300, 1))).astype(np.uint8)
    alpha = np.ones((200, 200), np.float32)
    out, match = match_texture(sharp, alpha, soft_paint, np.ones((300, 300), np.float32))
    assert match.blur_sigma > 0 and match.grain_std == 0
    before = abs(high_frequency_energy(_luminance(sharp)) - match.artwork_energy)
    after = abs(high_frequency_energy(_luminance(out)) - match.artwork_energy)
    assert after < before / 2


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _chroma(rgb: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return np.hypot(lab[..., 1], lab[..., 2])


def test_softening_keeps_colour_and_leaves_faces_more_detail():
    """A crisp, finely patterned face (skin and dark features) under soft paint: the softening
    takes detail from the luminance only, so the skin keeps its colour, and the face keeps more
    of its detail than the clothes do."""
    rng = np.random.default_rng(5)
    subject = np.zeros((240, 240, 3), np.uint8)
    subject[:] = (205, 150, 120)  # skin
    speckles = rng.random((240, 240)) < 0.3
    subject[speckles] = (60, 40, 30)  # dark features and hair, finely mixed in
    alpha = np.ones((240, 240), np.float32)
    soft_paint = np.full((300, 300, 3), 120, np.uint8)
    face = Face(box=(20.0, 20.0, 100.0, 120.0), probability=0.99, landmarks=np.zeros((5, 2)))
    out, match = match_texture(subject, alpha, soft_paint, np.ones((300, 300), np.float32), faces=[face])
    assert match.blur_sigma > 0
    skin = ~speckles
    assert _chroma(out)[skin].mean() >= 0.9 * _chroma(subject)[skin].mean(), "softening must not grey the skin"
    face_part, clothes = (slice(50, 90), slice(45, 75)), (slice(180, 230), slice(150, 230))
    face_detail = high_frequency_energy(_luminance(out[face_part]))
    clothes_detail = high_frequency_energy(_luminance(out[clothes]))
    assert face_detail > 1.5 * clothes_detail


def test_a_smooth_subject_gets_grain_to_match_a_rough_painting():
    rng = np.random.default_rng(4)
    smooth = np.full((200, 200, 3), 140, np.uint8)
    smooth[:, :100] = 100
    rough_paint = np.clip(128 + rng.normal(0, 10, (300, 300, 3)), 0, 255).astype(np.uint8)
    out, match = match_texture(smooth, np.ones((200, 200), np.float32), rough_paint, np.ones((300, 300), np.float32))
    assert match.grain_std > 0 and match.blur_sigma == 0
    assert high_frequency_energy(out[..., 0]) > 0.5 * match.artwork_energy


def test_edge_decontamination_takes_the_interior_colour_and_keeps_brightness():
    size = 200
    yy, xx = np.mgrid[:size, :size]
    alpha = np.clip((70 - np.hypot(xx - 100, yy - 100)) / 12 + 0.5, 0, 1).astype(np.float32)
    fg = np.zeros((size, size, 3), np.uint8)
    fg[:] = (200, 150, 120)
    band = (alpha > 0.05) & (alpha < 0.9)
    fg[band] = (60, 220, 60)  # the old green wall left in the edge
    clean = decontaminate_edge(fg, alpha)
    green_excess = clean[band][:, 1].astype(int) - clean[band][:, 0]
    assert np.median(green_excess) < 0, "edge pixels lean toward the skin's colour, not the wall's"
    assert np.array_equal(clean[alpha >= 0.98], fg[alpha >= 0.98])


def test_a_subject_shot_against_a_green_wall_leaves_no_green_in_the_boundary_band(compositor, astronaut):
    alpha = compositor._segmenter(astronaut)[..., None]
    green_wall = np.array([20, 200, 40], np.float32)
    photo = np.clip(np.rint(alpha * astronaut + (1 - alpha) * green_wall), 0, 255).astype(np.uint8)
    grey = Artwork(
        ArtworkSpec("grey", "Grey", "G", "2000", {f: NormBox(0.25, 0.1, 0.75, 1.0) for f in Framing}),
        np.full((720, 1280, 3), 128, np.uint8),
    )
    result = compositor(photo, grey)
    raw_layer, alpha_layer = scaled_subject(photo, result.subject, result.placement)
    x0, y0, x1, y1 = result.placement.rect
    band = np.zeros(grey.image.shape[:2], bool)
    band[y0:y1, x0:x1] = (alpha_layer > 0.02) & (alpha_layer < 0.98)

    def green_excess(image: np.ndarray) -> np.ndarray:
        pixels = image[band].astype(int)
        return pixels[:, 1] - np.maximum(pixels[:, 0], pixels[:, 2])

    naive = composite_layer(grey.image, raw_layer, alpha_layer, result.placement.rect)
    assert np.percentile(green_excess(naive), 90) > 20, "control: pasting the raw photo does fringe green"
    assert np.percentile(green_excess(result.image), 90) <= 4
    assert green_excess(result.image).mean() <= 2
