"""The staff dashboard's sections as server-rendered HTML: Overview, Photos, Settings, Users and
the audit log. Every value from data is escaped; the chart is inline SVG drawn here, no script."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from html import escape
from urllib.parse import urlencode

from db.reports import AuditEntry, Overview
from db.service import ArtworkRecord, KioskRecord, LinkInfo, LinkState, PhotoInfo
from db.staff import StaffUser
from db.models import StaffRole
from kiosk.auth import MIN_PASSWORD_LENGTH, USERNAME_RULE
from kiosk.settings import DASHBOARD_FIELDS, HARMONIZE_TARGETS, LOOKS, MAX_PRIVACY_NOTICE_CHARS, SOURCE_DASHBOARD, Settings
from pipeline.types import ReferenceMode
from web.dashboard_artworks import LOOK_LABELS
from web.score_words import harmony_in_words, variant_in_words
from web.staff_pages import CSRF_FIELD, dashboard_page


@dataclass(frozen=True)
class Viewer:
    """Who the page is for: what the layout needs to draw the navigation and its forms."""

    username: str
    role: StaffRole
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role is StaffRole.ADMIN


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


# Fixed notices after a redirect: the query names one, so no text from a URL reaches the page.
NOTICES = {
    "deleted": "The photo was deleted.",
    "gone": "That photo was deleted already.",
    "revoked": "The download link was withdrawn; it now answers “withdrawn”.",
    "revoked-already": "That link was withdrawn already.",
    "reharmonized": "The photo was composed again; its download link now serves the new picture.",
    "saved": "Settings saved; they are in effect now.",
    "unchanged": "Nothing was changed.",
    "reset": "The setting is back to the value of the settings file or environment.",
    "created": "The user was created.",
    "role": "The role was changed.",
    "disabled": "The user was disabled and signed out.",
    "enabled": "The user was enabled.",
    "password": "The password was reset; the user's sessions were ended.",
}

# What each dashboard setting is called and means on the Settings page.
SETTING_LABELS = {
    "public_url": ("Public URL", "The address visitors' phones open from the QR code; empty: this machine's address."),
    "photo_retention_days": ("Retention (days)", "Photos older than this are deleted with their files; 0 keeps them."),
    "download_link_hours": ("Download links work for (hours)", "How long a new QR code's link works."),
    "keep_raw_photos": (
        "Keep the camera photo",
        "Also store the visitor's unprocessed photo (personal data); needed to re-run a photo's harmonization.",
    ),
    "harmonize": ("Harmonize", "Match the visitor's colour and light to the painting."),
    "harmonize_targets": (
        "Harmonization targets",
        "fitted (for paintings, the default): take the painting's light and colour, skin kept natural; "
        "learned: a model trained on photos, for artworks that are photographs.",
    ),
    "harmonize_strength": ("Harmonization strength", "0 leaves the visitor as photographed, 1 applies the full correction."),
    "privacy_notice": ("Privacy notice", "What the booth tells visitors before their first photo; empty: the text below."),
    "look": ("Look", "What artworks without a look of their own offer (each artwork's page can choose its own)."),
    "stylize_strength": (
        "Painted strength",
        "How far the painted look takes the visitor into the painting's brushwork: 0 not at all, 1 fully.",
    ),
}

SOURCE_LABELS = {"default": "default", "file": "settings file", "env": "environment", SOURCE_DASHBOARD: "dashboard"}


def _csrf(viewer: Viewer) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(viewer.csrf_token)}">'


def _page(viewer: Viewer, title: str, body: str, section: str) -> str:
    return dashboard_page(
        title, body, username=viewer.username, is_admin=viewer.is_admin, csrf_token=viewer.csrf_token, section=section
    )


def _notice(notice: str | None, error: str | None) -> str:
    parts = []
    if error:
        parts.append(f'<p class="error" role="alert">{escape(error)}</p>')
    if notice in NOTICES:
        parts.append(f'<p class="notice" role="status">{escape(NOTICES[notice])}</p>')
    return "".join(parts)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


def _seconds(ms: float | None) -> str:
    return "–" if ms is None else f"{ms / 1000:.1f} s"


def _options(choices: Sequence[tuple[str, str]], selected: str) -> str:
    return "".join(
        f'<option value="{escape(value)}"{" selected" if value == selected else ""}>{escape(label)}</option>'
        for value, label in choices
    )


def _pager(path: str, query: Mapping[str, str], page: int, pages: int) -> str:
    if pages <= 1:
        return ""

    def link(number: int, label: str, rel: str) -> str:
        return f'<a rel="{rel}" href="{escape(path)}?{escape(urlencode({**query, "page": number}))}">{label}</a>'

    previous = link(page - 1, "← Newer", "prev") if page > 1 else ""
    following = link(page + 1, "Older →", "next") if page < pages else ""
    return f'<nav class="pager" aria-label="Pages">{previous} <span>Page {page} of {pages}</span> {following}</nav>'


# --- Overview ---------------------------------------------------------------------------------------


def overview(
    viewer: Viewer,
    figures: Overview,
    kiosks: Sequence[KioskOnline],
    problems: Sequence[Problem],
    *,
    online_within_s: int,
) -> str:
    online = sum(entry.online for entry in kiosks)
    kiosk_rows = "".join(
        f"<tr><td>{escape(entry.kiosk.id)}</td><td>{escape(entry.kiosk.name)}</td>"
        f'<td class="{"online" if entry.online else "offline"}">{"online" if entry.online else "offline"}'
        f'{" (preview connected)" if entry.connected else ""}</td><td class="when">{_when(entry.kiosk.last_seen)}</td></tr>'
        for entry in kiosks
    )
    kiosk_table = (
        f"""<table class="kiosks"><thead><tr><th>Kiosk</th><th>Name</th><th>State</th><th>Last seen</th></tr></thead>
<tbody>{kiosk_rows}</tbody></table>"""
        if kiosks
        else '<p class="empty">No kiosk yet: register one on the <a href="/staff/kiosks">Kiosks</a> page, '
        "then pair its screen.</p>"
    )
    problem_rows = "".join(
        f'<tr class="{escape(p.level.lower())}"><td class="when">{_when(p.at)}</td><td>{escape(p.level)}</td>'
        f"<td>{escape(p.logger)}</td><td>{escape(p.message)}</td></tr>"
        for p in reversed(problems)
    )
    problem_table = (
        f"""<table class="problems"><thead><tr><th>When</th><th>Level</th><th>Where</th><th>Message</th></tr></thead>
<tbody>{problem_rows}</tbody></table>"""
        if problems
        else "<p>No warnings or errors since the service started.</p>"
    )
    body = f"""<h1>Overview</h1>
<p class="whoami">Welcome, {escape(viewer.username)} ({escape(viewer.role.value)}).</p>
<dl class="figures">
  <div><dt>Kiosks online</dt><dd id="kiosks-online">{online} of {len(kiosks)}</dd></div>
  <div><dt>Photos today</dt><dd id="captures-today">{figures.captures_today}</dd></div>
  <div><dt>Photos in {len(figures.captures_by_day)} days</dt><dd id="captures-period">{figures.captures_in_period}</dd></div>
  <div><dt>Pipeline time p50</dt><dd id="pipeline-p50">{_seconds(figures.pipeline_p50_ms)}</dd></div>
  <div><dt>Pipeline time p95</dt><dd id="pipeline-p95">{_seconds(figures.pipeline_p95_ms)}</dd></div>
</dl>
<p class="note">Days are UTC days. Photos deleted since are not counted. A kiosk is online when its preview is
connected or it checked in within the last {online_within_s} seconds.</p>
<h2>Photos per day</h2>
{captures_chart(figures.captures_by_day)}
<h2>Kiosks</h2>
{kiosk_table}
<h2>Recent warnings and errors</h2>
{problem_table}"""
    return _page(viewer, "Overview", body, "/staff/")


def captures_chart(days: Sequence[tuple[date, int]]) -> str:
    """A bar per day as inline SVG, with the count above each bar and the day below it."""
    width, height, top, bottom = 560, 200, 22, 34
    slot = width / max(len(days), 1)
    peak = max((count for _, count in days), default=0) or 1
    bars = []
    for index, (day, count) in enumerate(days):
        bar_height = (height - top - bottom) * count / peak
        x = index * slot + slot * 0.15
        y = height - bottom - bar_height
        centre = index * slot + slot / 2
        label = f"{day:%a} {day.day}"
        plural = "s" if count != 1 else ""
        bars.append(
            f'<g class="day"><title>{escape(f"{day:%Y-%m-%d}: {count} photo{plural}")}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{bar_height:.1f}"></rect>'
            f'<text class="count" x="{centre:.1f}" y="{y - 6:.1f}" text-anchor="middle">{count}</text>'
            f'<text class="label" x="{centre:.1f}" y="{height - 12}" text-anchor="middle">{escape(label)}</text></g>'
        )
    summary = ", ".join(f"{day:%Y-%m-%d}: {count}" for day, count in days)
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape("Photos per day: " + summary)}">'
        f'<line x1="0" y1="{height - bottom}" x2="{width}" y2="{height - bottom}"></line>{"".join(bars)}</svg>'
    )


# --- Photos -----------------------------------------------------------------------------------------


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


def _link_summary(link: LinkInfo, now: datetime) -> str:
    state = link_state(link, now)
    described = {
        LinkState.VALID: f"valid until {_when(link.expires_at)}",
        LinkState.EXPIRED: f"expired {_when(link.expires_at)}",
        LinkState.REVOKED: "withdrawn",
    }[state]
    downloads = f"{link.download_count} download{'s' if link.download_count != 1 else ''}"
    return f'<span class="link-state {state.value}">Link {escape(described)}</span>, {downloads}'


def _revoke_form(viewer: Viewer, photo: PhotoInfo, link: LinkInfo, back: str) -> str:
    return (
        f'<form class="inline" method="post" action="/staff/photos/{escape(photo.id)}/links/{link.id}/revoke">'
        f'{_csrf(viewer)}<input type="hidden" name="back" value="{escape(back)}">'
        f'<button type="submit">Withdraw link</button></form>'
    )


def _artwork_title(artworks: Mapping[str, ArtworkRecord], artwork_id: str) -> str:
    record = artworks.get(artwork_id)
    return record.spec.title if record is not None else artwork_id


def _variant_name(photo: PhotoInfo) -> str:
    return str((photo.variant or {}).get("name", "not harmonized"))


def _score(photo: PhotoInfo) -> str:
    return "–" if photo.score is None else f"{photo.score:.2f}"


def photos(
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
) -> str:
    back = "/staff/photos" + (f"?{urlencode({**filters.query(), 'page': page})}" if filters.query() or page > 1 else "")
    cards = []
    for photo in found:
        photo_links = links.get(photo.id, [])
        link_lines = "".join(
            f"<li>{_link_summary(link, now)}"
            + (_revoke_form(viewer, photo, link, back) if link_state(link, now) is LinkState.VALID else "")
            + "</li>"
            for link in photo_links
        ) or "<li>No download link</li>"
        cards.append(
            f"""<li class="photo" data-photo="{escape(photo.id)}">
  <a href="/staff/photos/{escape(photo.id)}"><img src="/staff/photos/{escape(photo.id)}/thumbnail.jpg" alt="Photo {escape(photo.id[:8])}" loading="lazy"></a>
  <p class="meta"><strong>{escape(_artwork_title(artworks, photo.artwork_id))}</strong><br>
  {_when(photo.created_at)} · kiosk {escape(photo.kiosk_id or "none (upload)")}</p>
  <p class="meta">{escape(photo.framing.value)} · {photo.people} {"person" if photo.people == 1 else "people"} ·
  {escape(harmony_in_words(photo.score))} · {escape(variant_in_words(photo.variant))}</p>
  <ul class="links">{link_lines}</ul>
  <p class="actions"><a class="button" href="/staff/photos/{escape(photo.id)}">Details</a>
  <a class="button danger" href="/staff/photos/{escape(photo.id)}/delete">Delete</a></p>
</li>
"""
        )
    kiosk_choices = [("", "All kiosks")] + [(k.id, k.id) for k in kiosks]
    artwork_choices = [("", "All artworks")] + [(a.spec.id, a.spec.title) for a in artworks.values()]
    count = f'<p class="count" id="photo-count">{total} photo{"s" if total != 1 else ""} (dates are UTC days)</p>'
    if error:
        # The page's values could not be read: nothing is listed, so no list passes for a filtered one.
        count = ""
        listing = '<p class="empty">No photos are listed until the error above is corrected. <a href="/staff/photos">Show all photos</a>.</p>'
    elif cards:
        listing = f'<ul class="gallery">\n{"".join(cards)}</ul>'
    elif filters.query() or page > 1:
        listing = '<p class="empty">No photos match these filters. <a href="/staff/photos">Show all photos</a>.</p>'
    else:
        listing = '<p class="empty">No photos yet. They appear here as visitors take them at the kiosks.</p>'
    body = f"""<h1>Photos</h1>
{_notice(notice, error)}
<form class="filters" method="get" action="/staff/photos">
  <label>Kiosk <select name="kiosk">{_options(kiosk_choices, filters.kiosk)}</select></label>
  <label>Artwork <select name="artwork">{_options(artwork_choices, filters.artwork)}</select></label>
  <label>From <input type="date" name="since" value="{escape(filters.since)}"></label>
  <label>To <input type="date" name="until" value="{escape(filters.until)}"></label>
  <button type="submit">Filter</button> <a href="/staff/photos">Clear</a>
</form>
{count}
{listing}
{_pager("/staff/photos", filters.query(), page, pages)}"""
    return _page(viewer, "Photos", body, "/staff/photos")


def photo_detail(
    viewer: Viewer,
    photo: PhotoInfo,
    links: Sequence[LinkInfo],
    artwork: ArtworkRecord | None,
    *,
    defaults: Settings,
    now: datetime,
    notice: str | None = None,
    error: str | None = None,
) -> str:
    back = f"/staff/photos/{photo.id}"
    link_lines = "".join(
        f"<li>{_link_summary(link, now)}"
        + (_revoke_form(viewer, photo, link, back) if link_state(link, now) is LinkState.VALID else "")
        + "</li>"
        for link in links
    ) or "<li>No download link</li>"
    scores = "".join(
        f"<li>{escape(str(name))}: {escape(str(value))}</li>" for name, value in sorted((photo.scores or {}).items())
    ) or "<li>none</li>"
    timings = ", ".join(f"{escape(str(stage))} {escape(str(ms))} ms" for stage, ms in photo.timings.items())
    variant = escape(json.dumps(photo.variant, indent=1)) if photo.variant else "not harmonized"
    captured = "Captured at {}x{}".format(*photo.capture_size) if photo.capture_size else "Size not recorded"
    body = f"""<h1>Photo {escape(photo.id[:8])}</h1>
{_notice(notice, error)}
<figure class="photo-large"><img src="/staff/photos/{escape(photo.id)}/result.jpg" alt="The composed photo"></figure>
<dl class="facts">
  <dt>Artwork</dt><dd>{escape(artwork.spec.title if artwork else photo.artwork_id)}</dd>
  <dt>Taken</dt><dd>{_when(photo.created_at)} at kiosk {escape(photo.kiosk_id or "none (upload)")}</dd>
  <dt>Camera photo</dt><dd id="capture-size">{captured}</dd>
  <dt>Framing</dt><dd>{escape(photo.framing.value)}, {photo.people} {"person" if photo.people == 1 else "people"}</dd>
  <dt>How well the visitor blends in</dt><dd id="harmony-words">{escape(harmony_in_words(photo.score))}</dd>
  <dt>What was done to the visitor</dt><dd id="variant-words">{escape(variant_in_words(photo.variant))}</dd>
  <dt>Download links</dt><dd><ul class="links">{link_lines}</ul></dd>
</dl>
<details class="technical" id="photo-technical"><summary>Technical details (for operators)</summary>
<dl class="facts">
  <dt>Harmony score</dt><dd>{_score(photo)} (variant {escape(_variant_name(photo))})</dd>
  <dt>Candidates' scores</dt><dd><ul>{scores}</ul></dd>
  <dt>Chosen variant</dt><dd><pre>{variant}</pre></dd>
  <dt>Pipeline</dt><dd>{timings or "–"}</dd>
</dl>
</details>
<h2>Compose again with other harmonization</h2>
{_reharmonize_form(viewer, photo, artwork, defaults)}
<p class="actions"><a class="button danger" href="/staff/photos/{escape(photo.id)}/delete">Delete this photo</a>
<a href="/staff/photos">Back to the photos</a></p>"""
    return _page(viewer, f"Photo {photo.id[:8]}", body, "/staff/photos")


def _reharmonize_form(viewer: Viewer, photo: PhotoInfo, artwork: ArtworkRecord | None, defaults: Settings) -> str:
    if photo.raw_key is None:
        return (
            '<p class="unavailable" id="reharmonize-unavailable">Not available for this photo: the camera photo was not '
            "kept (the setting “Keep the camera photo” was off when it was taken), and composing again needs it.</p>"
        )
    references = [("", "the artwork's own choice"), (ReferenceMode.ARTWORK.value, "the whole artwork"),
                  (ReferenceMode.RING.value, "a ring around the visitor")]
    if artwork is not None and artwork.spec.reference_region is not None:
        references.append((ReferenceMode.REGION.value, "the artwork's reference region"))
    targets = [(name, name) for name in HARMONIZE_TARGETS]
    looks = [("", "the artwork's look"), *((look, LOOK_LABELS[look]) for look in LOOKS)]
    painted_strength = artwork.stylize_strength if artwork is not None and artwork.stylize_strength is not None else None
    if painted_strength is None:
        painted_strength = defaults.stylize_strength
    return f"""<form class="panel" method="post" action="/staff/photos/{escape(photo.id)}/reharmonize">
  {_csrf(viewer)}
  <label>Harmonize <select name="harmonize">{_options([("on", "on"), ("off", "off")], "on" if defaults.harmonize else "off")}</select></label>
  <label>Targets <select name="targets">{_options(targets, defaults.harmonize_targets)}</select></label>
  <label>Strength <input type="number" name="strength" min="0" max="1" step="0.05" value="{defaults.harmonize_strength:g}"></label>
  <label>Reference region <select name="reference">{_options(references, "")}</select></label>
  <label>Look <select name="look">{_options(looks, "")}</select></label>
  <label>Painted strength <input type="number" name="stylize_strength" min="0" max="1" step="0.05" value="{painted_strength:g}"></label>
  <p class="note">The new picture replaces this photo's result; its download link stays the same.</p>
  <button type="submit">Compose again</button>
</form>"""


def photo_not_found(viewer: Viewer) -> str:
    body = '<h1>No such photo</h1><p>It may have been deleted.</p><p><a href="/staff/photos">Back to the photos</a></p>'
    return _page(viewer, "Not found", body, "/staff/photos")


def confirm_delete(viewer: Viewer, photo: PhotoInfo, artwork: ArtworkRecord | None) -> str:
    body = f"""<h1>Delete this photo?</h1>
<figure><img src="/staff/photos/{escape(photo.id)}/thumbnail.jpg" alt="The photo to delete"></figure>
<p>{escape(artwork.spec.title if artwork else photo.artwork_id)}, {_when(photo.created_at)}. The photo and its files
are deleted at once; its download link will answer that the photo was deleted. This cannot be undone.</p>
<form class="confirm" method="post" action="/staff/photos/{escape(photo.id)}/delete">
  {_csrf(viewer)}
  <button type="submit" class="danger">Delete the photo</button>
  <a href="/staff/photos/{escape(photo.id)}">Cancel</a>
</form>"""
    return _page(viewer, "Delete photo", body, "/staff/photos")


# --- Settings ---------------------------------------------------------------------------------------


def _setting_input(name: str, settings: Settings, generated_privacy: str) -> str:
    value = getattr(settings, name)
    if isinstance(value, bool):
        return f'<select name="{name}">{_options([("true", "on"), ("false", "off")], "true" if value else "false")}</select>'
    if name == "harmonize_targets":
        return f'<select name="{name}">{_options([(t, t) for t in HARMONIZE_TARGETS], value)}</select>'
    if name in ("harmonize_strength", "stylize_strength"):
        return f'<input type="number" name="{name}" min="0" max="1" step="0.05" value="{value:g}">'
    if name == "look":
        return f'<select name="{name}">{_options(list(LOOK_LABELS.items()), value)}</select>'
    if isinstance(value, int):
        return f'<input type="number" name="{name}" min="0" step="1" value="{value}">'
    if name == "privacy_notice":
        return (
            f'<textarea name="{name}" rows="4" maxlength="{MAX_PRIVACY_NOTICE_CHARS}" '
            f'placeholder="{escape(generated_privacy)}">{escape(value)}</textarea>'
        )
    return f'<input type="url" name="{name}" value="{escape(str(value))}" placeholder="{escape(settings.resolved_public_url)}">'


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value) if value != "" else "(empty)"


def settings_page(
    viewer: Viewer,
    settings: Settings,
    loaded: Settings,
    *,
    generated_privacy: str,
    notice: str | None = None,
    error: str | None = None,
) -> str:
    rows = []
    resets = []
    for name in DASHBOARD_FIELDS:
        label, help_text = SETTING_LABELS[name]
        source = settings.source(name)
        from_dashboard = source == SOURCE_DASHBOARD
        origin = (
            f"set in the dashboard; without it: {escape(_shown(getattr(loaded, name)))} "
            f"({SOURCE_LABELS[loaded.source(name)]})"
            if from_dashboard
            else SOURCE_LABELS[source]
        )
        rows.append(
            f"""<tr data-setting="{name}"><th scope="row"><label for="setting-{name}">{escape(label)}</label>
<p class="note">{escape(help_text)}</p></th>
<td id="setting-{name}">{_setting_input(name, settings, generated_privacy)}</td>
<td class="source">{origin}</td></tr>"""
        )
        if from_dashboard:
            resets.append(
                f'<form class="inline" method="post" action="/staff/settings/reset">{_csrf(viewer)}'
                f'<input type="hidden" name="name" value="{name}">'
                f'<button type="submit">Reset “{escape(label)}” to the {SOURCE_LABELS[loaded.source(name)]} value</button></form>'
            )
    reset_block = f'<h2>Reset</h2><div class="resets">{"".join(resets)}</div>' if resets else ""
    body = f"""<h1>Settings</h1>
{_notice(notice, error)}
<p>These settings take effect at once and win over the settings file and the environment. The others
(<code>artbooth settings</code> lists them all) need a restart.</p>
<form method="post" action="/staff/settings">
  {_csrf(viewer)}
  <table class="settings"><thead><tr><th>Setting</th><th>Value</th><th>Comes from</th></tr></thead>
  <tbody>{"".join(rows)}</tbody></table>
  <button type="submit">Save settings</button>
</form>
<h2>The booth's privacy notice now</h2>
<blockquote id="privacy-now">{escape(settings.privacy_notice or generated_privacy)}</blockquote>
{reset_block}"""
    return _page(viewer, "Settings", body, "/staff/settings")


# --- Users ------------------------------------------------------------------------------------------


def users_page(
    viewer: Viewer,
    users: Sequence[StaffUser],
    *,
    notice: str | None = None,
    error: str | None = None,
    typed_username: str = "",
) -> str:
    roles = [(role.value, role.value) for role in StaffRole]
    rows = []
    for user in users:
        base = f"/staff/users/{escape(user.username)}"
        toggle = "enable" if user.disabled else "disable"
        rows.append(
            f"""<tr data-user="{escape(user.username)}"><td>{escape(user.username)}</td>
<td><form class="inline" method="post" action="{base}/role">{_csrf(viewer)}
<select name="role" aria-label="Role of {escape(user.username)}">{_options(roles, user.role.value)}</select>
<button type="submit">Change role</button></form></td>
<td>{"disabled" if user.disabled else "active"}
<form class="inline" method="post" action="{base}/{toggle}">{_csrf(viewer)}<button type="submit">{toggle.capitalize()}</button></form></td>
<td><form class="inline" method="post" action="{base}/password">{_csrf(viewer)}
<input type="password" name="password" autocomplete="new-password" minlength="{MIN_PASSWORD_LENGTH}" required
 aria-label="New password for {escape(user.username)}" placeholder="new password">
<button type="submit">Reset password</button></form></td>
<td>{_when(user.created_at)}</td></tr>"""
        )
    body = f"""<h1>Users</h1>
{_notice(notice, error)}
<table class="users"><thead><tr><th>Username</th><th>Role</th><th>Status</th><th>Password</th><th>Created</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p class="note">The last active administrator cannot be demoted or disabled. A reset password or a disabled
account ends the user's sessions.</p>
<h2>Add a user</h2>
<form class="panel" method="post" action="/staff/users">
  {_csrf(viewer)}
  <label>Username <input name="username" value="{escape(typed_username)}" autocomplete="off" autocapitalize="none" required></label>
  <p class="note">Usernames are {escape(USERNAME_RULE)}.</p>
  <label>Role <select name="role">{_options(roles, StaffRole.OPERATOR.value)}</select></label>
  <label>Initial password <input type="password" name="password" autocomplete="new-password" minlength="{MIN_PASSWORD_LENGTH}" required></label>
  <p class="note">At least {MIN_PASSWORD_LENGTH} characters; tell it to the user in person.</p>
  <button type="submit">Add user</button>
</form>"""
    return _page(viewer, "Users", body, "/staff/users")


# --- Audit log --------------------------------------------------------------------------------------


def audit_page(
    viewer: Viewer,
    entries: Sequence[AuditEntry],
    total: int,
    *,
    actions: Sequence[str],
    action: str,
    actor: str,
    page: int,
    pages: int,
    error: str | None = None,
) -> str:
    rows = "".join(
        f'<tr><td class="when">{_when(entry.at)}</td><td>{escape(entry.actor)}</td>'
        f"<td>{escape(entry.action)}</td>"
        f"<td>{escape(entry.subject)}</td><td><code>{escape(json.dumps(entry.detail, sort_keys=True)) if entry.detail else ''}</code></td></tr>"
        for entry in entries
    )
    table = (
        f"""<table class="audit"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Subject</th><th>Detail</th></tr></thead>
<tbody>{rows}</tbody></table>"""
        if entries
        else '<p class="empty">No entries match.</p>'
    )
    if error:  # the page asked for could not be read: the error instead of a list
        summary = _notice(None, error)
    else:
        summary = f'<p class="count">{total} entr{"ies" if total != 1 else "y"}, newest first</p>\n{table}'
    query = {name: value for name, value in (("action", action), ("actor", actor)) if value}
    body = f"""<h1>Audit log</h1>
<form class="filters" method="get" action="/staff/audit">
  <label>Action <select name="action">{_options([("", "All actions")] + [(a, a) for a in actions], action)}</select></label>
  <label>Who <input name="actor" value="{escape(actor)}"></label>
  <button type="submit">Filter</button> <a href="/staff/audit">Clear</a>
</form>
{summary}
{_pager("/staff/audit", query, page, pages)}"""
    return _page(viewer, "Audit log", body, "/staff/audit")
