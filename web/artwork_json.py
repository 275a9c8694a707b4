"""An artwork as JSON: the booth's page, /api/artworks and the REST API describe artworks alike."""

from __future__ import annotations

from pipeline.types import ArtworkSpec


def spec_json(spec: ArtworkSpec) -> dict[str, object]:
    return {
        "id": spec.id,
        "title": spec.title,
        "artist": spec.artist,
        "year": spec.year,
        "demo": spec.demo,
        "thumbnail_url": f"/artworks/{spec.id}/thumbnail.jpg",
        "boxes": {framing.value: box.to_list() for framing, box in spec.boxes.items()},
        "reference_region": spec.reference_region.to_list() if spec.reference_region else None,
        "reference_mode": spec.reference_mode.value,
    }
