"""The staff dashboard's sections as pages: Overview, Photos, Settings, Users and the audit log.
Each function gathers what its template (web/templates/staff/) shows and renders it in the
request's language; the chart is inline SVG drawn by its template, no script."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode

from aiohttp import web
from babel.dates import format_date
from markupsafe import Markup

from db.models import StaffRole
from db.reports import AuditEntry, Overview
from db.service import ArtworkRecord, KioskRecord, LinkInfo, LinkState, PhotoInfo
from db.staff import StaffUser
from kiosk.auth import MIN_PASSWORD_LENGTH
from kiosk.settings import DASHBOARD_FIELDS, HARMONIZE_TARGETS, LOOKS, MAX_PRIVACY_NOTICE_CHARS, SOURCE_DASHBOARD, Settings
from pipeline.types import ReferenceMode
from web import staff_pages
from web.score_words import harmony_in_words, variant_in_words
from web.staff_pages import Viewer
from web.staff_text import (
    FRAMING_LABELS,
    LOOK_LABELS,
    NOTICES,
    PHOTO_REFERENCE_LABELS,
    SETTING_LABELS,
    SOURCE_LABELS,
    TARGET_LABELS,
)

__all__ = ["KioskOnline", "PhotoFilters", "Problem", "Viewer"]


@dataclass(frozen=True)
class Problem:
    """A recent warning or error from the service's log."""

    at: datetime
    level: str
    logger: str
    message: str


@dataclass(frozen=True)
class KioskOnline:
    kiosk: KioskRecord
    online: bool
    connected: bool  # its live preview is connected to this server now
    camera: str  # its camera as the booth last reported it: one of kiosk.booths.CAMERA_STATES


@dataclass(frozen=True)
class PhotoFilters:
    kiosk: str = ""
    artwork: str = ""
    since: str = ""  # YYYY-MM-DD, a UTC day
    until: str = ""  # YYYY-MM-DD, the last UTC day included

    def query(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items() if value}


def link_state(link: LinkInfo, now: datetime) -> LinkState:
    if link.revoked:
        return LinkState.REVOKED
    return LinkState.EXPIRED if link.expires_at <= now else LinkState.VALID


def _notice(notice: str | None) -> str | None:
    """A notice's message (untranslated: the template translates it), or None for an unknown name."""
    return NOTICES.get(notice or "")


# --- Overview ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartBar:
    day: date
    count: int
    label: str  # the day, short, in the page's language
    x: float
    y: float
    width: float
    height: float
    centre: float


def _chart(days: Sequence[tuple[date, int]], language: str) -> dict[str, object]:
    """A bar per day: the geometry of the Overview's chart (its template draws the SVG)."""
    width, height, top, bottom = 560, 200, 22, 34
    slot = width / max(len(days), 1)
    peak = max((count for _, count in days), default=0) or 1
    bars = []
    for index, (day, count) in enumerate(days):
        bar_height = (height - top - bottom) * count / peak
        bars.append(
            ChartBar(
                day=day,
                count=count,
                label=format_date(day, "EEE d", locale=language),
                x=index * slot + slot * 0.15,
                y=height - bottom - bar_height,
                width=slot * 0.7,
                height=bar_height,
                centre=index * slot + slot / 2,
            )
        )
    return {"width": width, "height": height, "baseline": height - bottom, "bars": bars}


def overview(
    request: web.Request,
    viewer: Viewer,
    figures: Overview,
    kiosks: Sequence[KioskOnline],
    problems: Sequence[Problem],
    *,
    online_within_s: int,
) -> web.Response:
    return staff_pages.html(
        request,
        "staff/overview.html",
        viewer=viewer,
        section="/staff/",
        figures=figures,
        kiosks=kiosks,
        online=sum(entry.online for entry in kiosks),
        problems=list(reversed(problems)),
        online_within_s=online_within_s,
        chart=_chart(figures.captures_by_day, staff_pages.language(request)),
    )


# --- Photos -----------------------------------------------------------------------------------------


def _photo_words(request: web.Request, photo: PhotoInfo) -> dict[str, str]:
    gettext = lambda message: staff_pages.gettext(request, message)  # noqa: E731
    return {
        "harmony": harmony_in_words(photo.score, gettext),
        "variant": variant_in_words(photo.variant, gettext),
        "framing": gettext(FRAMING_LABELS.get(photo.framing.value, photo.framing.value)),
    }


def photos(
    request: web.Request,
    viewer: Viewer,
    found: Sequence[PhotoInfo],
    total: int,
    links: Mapping[str, list[LinkInfo]],
    *,
    filters: PhotoFilters,
    kiosks: Sequence[KioskRecord],
    artworks: Mapping[str, ArtworkRecord],
    page: int,
    pages: int,
    now: datetime,
    notice: str | None = None,
    error: str | None = None,
) -> web.Response:
    back = "/staff/photos" + (f"?{urlencode({**filters.query(), 'page': page})}" if filters.query() or page > 1 else "")
    cards = [
        {
            "photo": photo,
            "title": artworks[photo.artwork_id].spec.title if photo.artwork_id in artworks else photo.artwork_id,
            "links": [(link, link_state(link, now).value) for link in links.get(photo.id, [])],
            "words": _photo_words(request, photo),
        }
        for photo in found
    ]
    return staff_pages.html(
        request,
        "staff/photos.html",
        viewer=viewer,
        section="/staff/photos",
        status=400 if error else 200,
        cards=cards,
        total=total,
        back=back,
        filters=filters,
        kiosk_choices=[(kiosk.id, kiosk.id) for kiosk in kiosks],
        artwork_choices=[(record.spec.id, record.spec.title) for record in artworks.values()],
        page=page,
        pages=pages,
        notice=_notice(notice),
        error=error,
    )


def photo_detail(
    request: web.Request,
    viewer: Viewer,
    photo: PhotoInfo,
    links: Sequence[LinkInfo],
    artwork: ArtworkRecord | None,
    *,
    defaults: Settings,
    now: datetime,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> web.Response:
    modes = [ReferenceMode.ARTWORK, ReferenceMode.RING]
    if artwork is not None and artwork.spec.reference_region is not None:
        modes.append(ReferenceMode.REGION)
    references = [(mode.value, PHOTO_REFERENCE_LABELS[mode.value]) for mode in modes]
    painted_strength = artwork.stylize_strength if artwork is not None else None
    return _photo_page(
        request,
        "staff/photo.html",
        viewer,
        photo,
        artwork,
        status=status,
        links=[(link, link_state(link, now).value) for link in links],
        words=_photo_words(request, photo),
        scores=sorted((photo.scores or {}).items()),
        variant_json=json.dumps(photo.variant, indent=1) if photo.variant else "",
        score=None if photo.score is None else f"{photo.score:.2f}",
        variant_name=str((photo.variant or {}).get("name", "")),
        defaults=defaults,
        targets=[(name, TARGET_LABELS.get(name, name)) for name in HARMONIZE_TARGETS],
        references=references,
        looks=[(look, LOOK_LABELS[look]) for look in LOOKS],
        painted_strength=painted_strength if painted_strength is not None else defaults.stylize_strength,
        notice=_notice(notice),
        error=error,
    )


def photo_not_found(request: web.Request, viewer: Viewer) -> str:
    return staff_pages.render(request, "staff/photo_not_found.html", viewer=viewer, section="/staff/photos")


def confirm_delete(request: web.Request, viewer: Viewer, photo: PhotoInfo, artwork: ArtworkRecord | None) -> web.Response:
    return _photo_page(request, "staff/photo_delete.html", viewer, photo, artwork)


def new_link(
    request: web.Request, viewer: Viewer, photo: PhotoInfo, artwork: ArtworkRecord | None, link: LinkInfo, *, url: str, qr: str
) -> web.Response:
    return _photo_page(
        request,
        "staff/link_new.html",
        viewer,
        photo,
        artwork,
        link=link,
        url=url,
        # Our own QR encoder's SVG (kiosk/qr.py) of our own link: markup, not data.
        qr=Markup(qr),
    )


def confirm_revoke(
    request: web.Request, viewer: Viewer, photo: PhotoInfo, artwork: ArtworkRecord | None, link: LinkInfo, *, back: str
) -> web.Response:
    return _photo_page(request, "staff/link_revoke.html", viewer, photo, artwork, link=link, back=back)


def _photo_page(
    request: web.Request,
    template: str,
    viewer: Viewer,
    photo: PhotoInfo,
    artwork: ArtworkRecord | None,
    **context: object,
) -> web.Response:
    """A page about one photo, under Photos, titled by its artwork (or its id once the artwork is gone)."""
    return staff_pages.html(
        request,
        template,
        viewer=viewer,
        section="/staff/photos",
        photo=photo,
        title=artwork.spec.title if artwork else photo.artwork_id,
        **context,
    )


# --- Settings ---------------------------------------------------------------------------------------


def settings_page(
    request: web.Request,
    viewer: Viewer,
    settings: Settings,
    loaded: Settings,
    *,
    generated_privacy: str,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> web.Response:
    rows = []
    for name in DASHBOARD_FIELDS:
        label, help_text = SETTING_LABELS[name]
        value = getattr(settings, name)
        if isinstance(value, bool):
            kind = "bool"
        elif name == "harmonize_targets":
            kind = "targets"
        elif name in ("harmonize_strength", "stylize_strength"):
            kind = "fraction"
        elif name == "look":
            kind = "look"
        elif isinstance(value, int):
            kind = "count"
        elif name == "privacy_notice":
            kind = "text"
        else:
            kind = "url"
        rows.append(
            {
                "name": name,
                "label": label,
                "help": help_text,
                "kind": kind,
                "value": value,
                "source": SOURCE_LABELS[settings.source(name)],
                "from_dashboard": settings.source(name) == SOURCE_DASHBOARD,
                "loaded_value": getattr(loaded, name),
                "loaded_source": SOURCE_LABELS[loaded.source(name)],
            }
        )
    return staff_pages.html(
        request,
        "staff/settings.html",
        viewer=viewer,
        section="/staff/settings",
        status=status,
        rows=rows,
        settings=settings,
        targets=list(TARGET_LABELS.items()),
        looks=list(LOOK_LABELS.items()),
        max_privacy_notice_chars=MAX_PRIVACY_NOTICE_CHARS,
        generated_privacy=generated_privacy,
        notice=_notice(notice),
        error=error,
    )


# --- Users ------------------------------------------------------------------------------------------


def users_page(
    request: web.Request,
    viewer: Viewer,
    users: Sequence[StaffUser],
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    typed_username: str = "",
) -> web.Response:
    return staff_pages.html(
        request,
        "staff/users.html",
        viewer=viewer,
        section="/staff/users",
        status=status,
        users=users,
        roles=[role.value for role in StaffRole],
        operator=StaffRole.OPERATOR.value,
        min_password_length=MIN_PASSWORD_LENGTH,
        typed_username=typed_username,
        notice=_notice(notice),
        error=error,
    )


# --- Audit log --------------------------------------------------------------------------------------


def audit_page(
    request: web.Request,
    viewer: Viewer,
    entries: Sequence[AuditEntry],
    total: int,
    *,
    actions: Sequence[str],
    action: str,
    actor: str,
    page: int,
    pages: int,
    status: int = 200,
    error: str | None = None,
) -> web.Response:
    return staff_pages.html(
        request,
        "staff/audit.html",
        viewer=viewer,
        section="/staff/audit",
        status=status,
        entries=[(entry, json.dumps(entry.detail, sort_keys=True) if entry.detail else "") for entry in entries],
        total=total,
        actions=actions,
        action=action,
        actor=actor,
        query={name: value for name, value in (("action", action), ("actor", actor)) if value},
        page=page,
        pages=pages,
        error=error,
    )
