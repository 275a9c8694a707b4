"""Painterly harmonization: does the visitor take on the painting, and stay recognisable?

Two sets, from DATA (default ../shared/data):
  (a) painterly/: existing composites <n>.png with masks <n>_mask.png (thresholded at 127);
  (b) people x paintings: every photo in people/ composed into every image in paintings/ through
      the real pipeline (kiosk.engine.build_compositor), harmonize off for the plain paste.

Methods, side by side in one run (see ``methods``): the plain paste; "pipeline", the capture
pipeline's harmonizer as kiosk.engine builds it (set b: compose with harmonize on; set a: the same
harmonizer run on the composite, score-chosen variant, as bench/harmonization.py does), which is
today's harmonizer until issue 11's changes land in it; and the looks of
kiosk.harmonize.harmonize_composite, "realistic" and "painted", run on the plain paste.

Measured with an independent backbone, ImageNet MobileNetV2 (bench/style_metric.py):
  style     masked-Gram distance relative to the paint's, subject vs a band of paint around it, 5 layers (lower: more
            painted-in), shown as a ratio to the plain paste's;
  content   deep-feature change inside the mask against the plain paste (0 = unchanged);
  faces     MTCNN faces of the plain paste (centre inside the mask) still found after (IoU >= 0.3);
  time      seconds per composite (set a: the harmonization step; set b: the whole compose).
Set b also checks face chroma: a face's mean Lab chroma may drop below the plain paste's by at most
as much as the painting's own chroma (outside the subject) is below the face's.

    .venv/bin/python bench/painterly.py [--data DIR] [--limit N] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harmonization import Runner  # noqa: E402
from bench.people_in_paintings import FaceChroma  # noqa: E402
from bench.style_metric import StyleMetric  # noqa: E402
from kiosk.engine import build_compositor, load_harmonizer  # noqa: E402
from kiosk.models import ModelStore  # noqa: E402
from kiosk.settings import Settings  # noqa: E402
from pipeline.codec import decode_image  # noqa: E402
from pipeline.compose import Composition  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.face_regions import lost_faces  # noqa: E402
from pipeline.placement import placed_alpha, scaled_subject  # noqa: E402
from pipeline.types import Artwork, ArtworkSpec, Face, Framing, NormBox  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared/data"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_PIXELS = 50_000_000
# Where a visitor stands in a painting (as bench/contact_sheet.py places them).
PAINTING_BOXES = {
    Framing.FULL_BODY: NormBox(0.38, 0.25, 0.62, 0.95),
    Framing.HALF_BODY: NormBox(0.28, 0.3, 0.72, 1.0),
    Framing.CLOSE_UP: NormBox(0.3, 0.25, 0.7, 1.0),
}

# A harmonizer of existing composites: (composite RGB uint8, mask float32 in [0, 1]) -> RGB uint8.
CompositeHarmonizer = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Method:
    """One column of the table.

    ``on_composite`` harmonizes an existing composite (set a, and set b starting from the plain
    paste); None is the plain paste itself. ``in_pipeline`` makes set b compose through the real
    pipeline with harmonize on instead (today's harmonizer runs inside compose).
    """

    name: str
    on_composite: CompositeHarmonizer | None
    in_pipeline: bool = False


def pipeline_harmonizer(settings: Settings) -> CompositeHarmonizer:
    runner = Runner(load_harmonizer(settings))
    return lambda composite, mask: runner.run(composite, (mask > 0.5).astype(np.uint8))[1]


def composite_looks(settings: Settings) -> list[Method]:
    """kiosk.harmonize.harmonize_composite's looks (issue 11); none while that module does not exist."""
    try:
        from kiosk.harmonize import LOOKS, CompositeModels, harmonize_composite
    except ImportError:
        return []
    models = CompositeModels.load(settings)

    def look(name: str) -> CompositeHarmonizer:
        return lambda composite, mask: harmonize_composite(composite, mask, models, look=name).image

    return [Method(name, look(name)) for name in LOOKS]


def methods(settings: Settings) -> list[Method]:
    """The table's columns; a new way to harmonize composites is one more entry."""
    return [
        Method("plain paste", None),
        Method("pipeline", pipeline_harmonizer(settings), in_pipeline=True),
        *composite_looks(settings),
    ]


@dataclass
class Case:
    """One composite: its plain paste and mask, and each method's result and seconds."""

    set: str
    name: str
    plain: np.ndarray
    mask: np.ndarray  # float32 in [0, 1], the image's size
    painting: np.ndarray | None = None  # set b: the artwork with nobody in it, the metric's floor
    results: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def read_rgb(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), max_pixels=MAX_PIXELS)


def painterly_cases(folder: Path, chosen: list[Method], limit: int | None) -> Iterator[Case]:
    masks = sorted(folder.glob("*_mask.png"), key=lambda p: (len(p.name), p.name))[:limit]
    for mask_path in masks:
        image_path = mask_path.with_name(mask_path.name.replace("_mask", ""))
        composite = read_rgb(image_path)
        mask_image = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        case = Case("painterly", image_path.stem, composite, (mask_image > 127).astype(np.float32))
        for method in chosen:
            start = time.perf_counter()
            result = composite if method.on_composite is None else method.on_composite(composite, case.mask)
            case.seconds[method.name] = time.perf_counter() - start
            case.results[method.name] = result
        yield case


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def person_painting_pairs(people: list[Path], paintings: list[Path]) -> list[tuple[Path, Path]]:
    """Every person with every painting, ordered so that the first few pairs vary both."""
    return [(people[i], paintings[(i + k) % len(paintings)]) for k in range(len(paintings)) for i in range(len(people))]


def placed_mask(composition: Composition, shape: tuple[int, int]) -> np.ndarray:
    """The subject's alpha where compose put it, at the artwork's size."""
    subject, placement = composition.subject, composition.placement
    _, alpha = scaled_subject(subject.alpha[..., None], subject, placement)
    return placed_alpha(alpha, placement.rect, (shape[1], shape[0]))


def people_cases(data: Path, settings: Settings, chosen: list[Method], limit: int | None) -> Iterator[Case]:
    pairs = person_painting_pairs(image_files(data / "people"), image_files(data / "paintings"))[:limit]
    if not pairs:
        return
    plain = build_compositor(dataclasses.replace(settings, harmonize=False))
    harmonizing = plain.with_harmonizer(load_harmonizer(settings))
    artworks: dict[Path, Artwork] = {}
    for person, painting in pairs:
        if painting not in artworks:
            spec = ArtworkSpec(painting.stem, painting.stem, "", "", PAINTING_BOXES)
            artworks[painting] = Artwork(spec, read_rgb(painting))
        artwork, photo = artworks[painting], read_rgb(person)
        try:
            start = time.perf_counter()
            pasted = plain(photo, artwork)
            paste_seconds = time.perf_counter() - start
        except PipelineError as exc:
            print(f"skipped {person.name} in {painting.name}: {exc}", file=sys.stderr)
            continue
        case = Case(
            "people x paintings", f"{person.stem} in {painting.stem}", pasted.image, placed_mask(pasted, artwork.image.shape[:2]), artwork.image
        )
        for method in chosen:
            start = time.perf_counter()
            if method.in_pipeline:
                result = harmonizing(photo, artwork).image
                seconds = time.perf_counter() - start
            elif method.on_composite is None:
                result, seconds = pasted.image, paste_seconds
            else:
                result = method.on_composite(pasted.image, case.mask)
                seconds = paste_seconds + time.perf_counter() - start
            case.results[method.name], case.seconds[method.name] = result, seconds
        yield case


def subject_faces(faces: list[Face], mask: np.ndarray) -> list[Face]:
    """The faces whose centre lies on the subject (not faces painted in the artwork)."""
    height, width = mask.shape
    kept = []
    for face in faces:
        cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
        if 0 <= cx < width and 0 <= cy < height and mask[int(cy), int(cx)] > 0.5:
            kept.append(face)
    return kept


def chroma(image: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return np.hypot(lab[..., 1], lab[..., 2])


def face_region(face: Face, mask: np.ndarray) -> np.ndarray:
    region = np.zeros(mask.shape, bool)
    x0, y0, x1, y1 = (round(v) for v in face.box)
    region[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return region & (mask > 0.5)


def measure(case: Case, metric: StyleMetric, detector) -> dict[str, object]:
    """Every figure of one case, per method."""
    before = subject_faces(detector.detect(case.plain), case.mask)
    regions = [r for r in (face_region(f, case.mask) for f in before) if r.any()]
    plain_chroma = chroma(case.plain)
    painting_chroma = float(plain_chroma[case.mask < 0.5].mean())
    row: dict[str, object] = {"set": case.set, "name": case.name, "faces_before": len(before), "methods": {}}
    if case.painting is not None:
        row["painting_alone_style"] = metric.style_distance(case.painting, case.mask)
    for name, result in case.results.items():
        after = detector.detect(result)
        kept = len(before) - len(lost_faces(before, after))
        figures: dict[str, object] = {
            "style": metric.style_distance(result, case.mask),
            "content": metric.content_change(result, case.plain, case.mask),
            "faces_kept": kept,
            "seconds": case.seconds[name],
        }
        if case.set == "people x paintings" and regions:
            result_chroma = chroma(result)
            checks = []
            for region in regions:
                face = FaceChroma(painting_chroma, float(plain_chroma[region].mean()), float(result_chroma[region].mean()))
                checks.append({"plain": face.plain, "after": face.after, "painting": face.painting, "ok": not face.greyed})
            figures["face_chroma"] = checks
        row["methods"][name] = figures
    return row


def summarise(rows: list[dict], names: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Per set, per method: means, ratios to the plain paste, face and chroma counts, median time."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for set_name in dict.fromkeys(r["set"] for r in rows):
        subset = [r for r in rows if r["set"] == set_name]
        plain_style = float(np.mean([r["methods"]["plain paste"]["style"] for r in subset]))
        faces_before = sum(r["faces_before"] for r in subset)
        per_method = {}
        for name in names:
            figures = [r["methods"][name] for r in subset]
            style = float(np.mean([f["style"] for f in figures]))
            checks = [c for f in figures for c in f.get("face_chroma", [])]
            per_method[name] = {
                "composites": len(subset),
                "style": round(style, 4),
                "style_ratio": round(style / plain_style, 3) if plain_style > 0 else float("nan"),
                # The ratio per composite, then the mean: no single composite dominates.
                "style_ratio_mean": round(float(np.mean([f["style"] / r["methods"]["plain paste"]["style"] for f, r in zip(figures, subset)])), 3),
                "content": round(float(np.mean([f["content"] for f in figures])), 4),
                "faces_before": faces_before,
                "faces_kept": sum(f["faces_kept"] for f in figures),
                "seconds_median": round(statistics.median(f["seconds"] for f in figures), 3),
                "face_chroma_checks": len(checks),
                "face_chroma_ok": sum(c["ok"] for c in checks),
                "face_chroma_ratio": round(float(np.mean([c["after"] / c["plain"] for c in checks if c["plain"] > 0])), 3) if checks else float("nan"),
                # How far the worst face went below what the rule allows (<= 0: within it), in Lab chroma units.
                "face_chroma_worst_excess": round(max(c["plain"] - c["after"] - max(0.0, c["plain"] - c["painting"]) for c in checks), 2) if checks else float("nan"),
            }
        floors = [r["painting_alone_style"] for r in subset if "painting_alone_style" in r]
        if floors:
            # The paint where the subject stands against the paint around it: what a perfect painted-in subject would score.
            per_method["painting alone"] = {"style": round(float(np.mean(floors)), 4), "style_ratio": round(float(np.mean(floors)) / plain_style, 3)}
        summary[set_name] = per_method
    return summary


def print_table(summary: dict[str, dict[str, dict[str, float]]], names: list[str]) -> None:
    width = max(14, *(len(n) + 2 for n in names))
    for set_name, per_method in summary.items():
        first = per_method[names[0]]
        print(f"\n{set_name}: {first['composites']} composites, {first['faces_before']} faces on the subjects")
        print(f"{'':<28}" + "".join(f"{n:>{width}}" for n in names))
        lines = [
            ("style distance", lambda m: f"{m['style']:.4f}"),
            ("  ratio to plain paste", lambda m: f"{m['style_ratio']:.2f}x"),
            ("  mean of per-image ratios", lambda m: f"{m['style_ratio_mean']:.2f}x"),
            ("content change", lambda m: f"{m['content']:.3f}"),
            ("faces still found", lambda m: f"{m['faces_kept']}/{m['faces_before']}"),
            ("seconds per composite", lambda m: f"{m['seconds_median']:.2f}"),
        ]
        if first["face_chroma_checks"]:
            lines += [
                ("face chroma kept (check)", lambda m: f"{m['face_chroma_ok']}/{m['face_chroma_checks']}"),
                ("face chroma / plain", lambda m: f"{m['face_chroma_ratio']:.2f}x"),
                ("  worst drop beyond allowed", lambda m: f"{m['face_chroma_worst_excess']:.2f}"),
            ]
        for label, cell in lines:
            print(f"{label:<28}" + "".join(f"{cell(per_method[n]):>{width}}" for n in names))
        if "painting alone" in per_method:
            floor = per_method["painting alone"]
            print(f"floor, the painting alone under the same mask: style {floor['style']:.4f} = {floor['style_ratio']:.2f}x the plain paste")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with painterly/, people/ and paintings/")
    parser.add_argument("--limit", type=int, help="at most N composites of each set")
    parser.add_argument("--json", type=Path, help="write the summary and every composite's figures here")
    args = parser.parse_args()

    settings = Settings.load()
    chosen = methods(settings)
    names = [m.name for m in chosen]
    if len(names) == 2:
        print("note: kiosk.harmonize.harmonize_composite not found, its looks are left out", file=sys.stderr)
    metric = StyleMetric.load(settings)
    detector = ModelStore(settings).face_detector()

    rows = []
    cases = [painterly_cases(args.data / "painterly", chosen, args.limit), people_cases(args.data, settings, chosen, args.limit)]
    for case in (c for source in cases for c in source):
        rows.append(measure(case, metric, detector))
        styles = "  ".join(f"{n} {rows[-1]['methods'][n]['style']:.3f}" for n in names)
        print(f"{case.set} / {case.name}: style {styles}", file=sys.stderr)
    if not rows:
        parser.error(f"no composites found under {args.data}")
    summary = summarise(rows, names)
    print_table(summary, names)
    if args.json:
        args.json.write_text(json.dumps({"methods": names, "summary": summary, "composites": rows}, indent=2))


if __name__ == "__main__":
    main()
