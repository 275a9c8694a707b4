"""Server-rendered HTML. Every value from data is escaped; assets are local (booths are often offline)."""

from __future__ import annotations

import base64
from html import escape

from pipeline.types import ArtworkSpec


def spec_json(spec: ArtworkSpec) -> dict[str, object]:
    return {
        "id": spec.id,
        "title": spec.title,
        "artist": spec.artist,
        "year": spec.year,
        "demo": spec.demo,
        "thumbnail": f"/artworks/{spec.id}/thumbnail.jpg",
        "boxes": {framing.value: box.to_list() for framing, box in spec.boxes.items()},
        "reference_region": spec.reference_region.to_list() if spec.reference_region else None,
    }


def _layout(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · ArtBooth</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<header><a class="brand" href="/">ArtBooth</a></header>
<main>
{body}
</main>
</body>
</html>
"""


def _credit(spec: ArtworkSpec) -> str:
    year = f", {escape(spec.year)}" if spec.year else ""
    return f"{escape(spec.artist)}{year}"


def _compose_form(specs: list[ArtworkSpec], selected: str | None = None) -> str:
    options = "\n".join(
        f'<option value="{escape(spec.id)}"{" selected" if spec.id == selected else ""}>'
        f'{escape(spec.title)}{" (demo)" if spec.demo else ""}</option>'
        for spec in specs
    )
    return f"""<form class="compose" method="post" action="/compose" enctype="multipart/form-data">
  <h2>Try it with a photo</h2>
  <label>Your photo <input type="file" name="photo" accept="image/*" required></label>
  <label>Artwork <select name="artwork" required>{options}</select></label>
  <button type="submit">Place me in the painting</button>
</form>"""


def gallery(specs: list[ArtworkSpec], *, error: str | None = None) -> str:
    cards = "\n".join(
        f"""<figure class="card">
  <img src="/artworks/{escape(spec.id)}/thumbnail.jpg" alt="{escape(spec.title)}" loading="lazy">
  <figcaption><strong>{escape(spec.title)}</strong>{'<span class="badge">Demo</span>' if spec.demo else ''}
  <span class="credit">{_credit(spec)}</span></figcaption>
</figure>"""
        for spec in specs
    )
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = f"""<h1>Artworks</h1>
{alert}
<section class="gallery">
{cards}
</section>
{_compose_form(specs)}"""
    return _layout("Artworks", body)


def result(report: dict[str, object], jpeg: bytes, specs: list[ArtworkSpec]) -> str:
    spec = next((s for s in specs if s.id == report["artwork"]), None)
    caption = f"{escape(spec.title)} — {_credit(spec)}" if spec else escape(str(report["artwork"]))
    people = int(report["people"])
    timings = report["timings_ms"]
    rows = "".join(f"<tr><th>{escape(stage)}</th><td>{ms:.0f} ms</td></tr>" for stage, ms in timings.items())
    data_url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    body = f"""<h1>You, in {caption}</h1>
<img class="result" src="{data_url}" alt="The composed photo">
<p>{people} {'person' if people == 1 else 'people'} found, framed as <strong>{escape(str(report['framing']))}</strong>.</p>
<details><summary>Timings</summary><table>{rows}</table></details>
{_compose_form(specs, selected=str(report['artwork']))}"""
    return _layout("Your photo", body)
