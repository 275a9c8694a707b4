"""An artwork as JSON: the booth's page, /api/artworks and the REST API describe artworks alike."""

from __future__ import annotations

from pipeline.types import ArtworkSpec


def spec_json(spec: ArtworkSpec) -> dict[str, object]:
    return spec.to_json() | {"thumbnail_url": f"/artworks/{spec.id}/thumbnail.jpg"}
