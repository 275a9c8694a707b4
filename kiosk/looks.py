"""Which look a photo is made in: the artwork's setting, the service's default, the visitor's pick.

Looks (settings.LOOKS): ``realistic`` is colour and light only (the original system's pipeline);
``painted`` is colour and light, then the painterly stylization. An artwork (or, for artworks without
their own setting, the service: ``settings.look``) offers one of them, or ``visitor``: the booth
offers both and the visitor taps one before the countdown. A caller who names no look where the
visitor would choose (the API, the public upload page) gets ``settings.fallback_look``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kiosk.errors import ArtBoothError, ExitCode
from kiosk.settings import ARTWORK_LOOKS, LOOKS, Settings


class LookError(ArtBoothError):
    """A look that is not one of the looks (a usage error: exit 2, HTTP 400)."""

    exit_code = ExitCode.USAGE


def offered_look(artwork_look: str | None, settings: Settings) -> str:
    """What an artwork offers: its own setting (None: the service's), one of ARTWORK_LOOKS."""
    offered = artwork_look or settings.look
    if offered not in ARTWORK_LOOKS:
        raise LookError(f"an artwork's look must be one of {', '.join(ARTWORK_LOOKS)}, not {offered!r}")
    return offered


def resolve_look(artwork_look: str | None, chosen: str | None, settings: Settings) -> str:
    """The look to compose in (one of LOOKS).

    ``chosen`` (the visitor's tap, the API's ``look``, `compose --look`) wins when the artwork leaves
    the choice to the visitor, and also when a caller names a look explicitly for an artwork with a
    fixed one (integrators and staff may ask for either look); None takes what the artwork offers.
    """
    if chosen is not None and chosen not in LOOKS:
        raise LookError(f"look must be one of {', '.join(LOOKS)}, not {chosen!r}")
    if chosen is not None:
        return chosen
    offered = offered_look(artwork_look, settings)
    return settings.fallback_look if offered == "visitor" else offered


@dataclass(frozen=True)
class Harmonization:
    """How a composition is harmonized: the harmonize settings in effect, or what staff chose to
    re-run a photo with."""

    enabled: bool
    targets: str
    strength: float
    look: str = "realistic"  # one of settings.LOOKS, resolved already (kiosk/looks.py): never "visitor"
    stylize_strength: float = 0.8  # the painted look's strength (the artwork's override, or the setting)

    @classmethod
    def from_settings(cls, settings: Settings) -> Harmonization:
        return cls(
            settings.harmonize,
            settings.harmonize_targets,
            settings.harmonize_strength,
            look=settings.fallback_look,
            stylize_strength=settings.stylize_strength,
        )

    def applied_to(self, settings: Settings) -> Settings:
        """``settings`` with these harmonize values (checked as settings values are)."""
        return dataclasses.replace(
            settings,
            harmonize=self.enabled,
            harmonize_targets=self.targets,
            harmonize_strength=self.strength,
            fallback_look=self.look,
            stylize_strength=self.stylize_strength,
        )
