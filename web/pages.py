"""Server-rendered HTML. Every value from data is escaped; assets are local (booths are often offline)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from html import escape

from db.service import LinkState
from kiosk.settings import Settings
from kiosk.storage import SavedDownload
from pipeline.types import ArtworkSpec


# Characters that could end or comment out a <script> (<, >), start an entity (&), or end a line
# inside older JavaScript string literals (U+2028, U+2029): written as JSON escapes instead.
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value: object) -> str:
    """``value`` as JSON that is safe inside an HTML <script> element: no string in it, whatever
    staff typed, can close the element or open a comment; JSON.parse reads the same value back."""
    return json.dumps(value).translate(_SCRIPT_ESCAPES)


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


def layout(
    title: str,
    body: str,
    *,
    header: str = '<a class="brand" href="/">ArtBooth</a>',
    body_class: str = "",
    site: str = "ArtBooth",
    referrer: str = "no-referrer",
    robots: str | None = None,
) -> str:
    """The page around ``body``; ``header`` is trusted HTML, everything else is escaped."""
    robots_meta = f'<meta name="robots" content="{escape(robots)}">\n' if robots else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="{escape(referrer)}">
{robots_meta}<title>{escape(title)} · {escape(site)}</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body{f' class="{escape(body_class)}"' if body_class else ''}>
<header>{header}</header>
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
    return layout("Artworks", body)


def result(report: dict[str, object], jpeg: bytes, specs: list[ArtworkSpec], saved: SavedDownload) -> str:
    spec = next((s for s in specs if s.id == report["artwork"]), None)
    caption = f"{escape(spec.title)} — {_credit(spec)}" if spec else escape(str(report["artwork"]))
    people = int(report["people"])
    timings = report["timings_ms"]
    rows = "".join(f"<tr><th>{escape(stage)}</th><td>{ms:.0f} ms</td></tr>" for stage, ms in timings.items())
    data_url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    body = f"""<h1>You, in {caption}</h1>
<img class="result" src="{data_url}" alt="The composed photo">
<div class="take-home">
  <img class="qr" src="/p/{escape(saved.token)}/qr.svg" alt="QR code of the download link" width="200" height="200">
  <p>Scan to download, or open <a href="{escape(saved.url)}">{escape(saved.url)}</a>.<br>
  Available until {_when(saved.expires_at)}.</p>
</div>
<p>{people} {'person' if people == 1 else 'people'} found, framed as <strong>{escape(str(report['framing']))}</strong>.</p>
<details><summary>Timings</summary><table>{rows}</table></details>
{_compose_form(specs, selected=str(report['artwork']))}"""
    return layout("Your photo", body)


def _when(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def _visitor_layout(title: str, body: str) -> str:
    # The visitor reached us from a QR code: no way into the staff side from here.
    return layout(title, body, header='<span class="brand">ArtBooth</span>', body_class="visitor")


def visitor_photo(token: str, spec: ArtworkSpec, expires_at: datetime) -> str:
    base = f"/p/{escape(token)}"
    body = f"""<figure class="photo">
  <img src="{base}/photo.jpg" alt="You, in {escape(spec.title)}">
  <figcaption><strong>{escape(spec.title)}</strong> <span class="credit">{_credit(spec)}</span></figcaption>
</figure>
<a class="button" href="{base}/download" download>Download photo</a>
<p class="note">This link works until {_when(expires_at)}.</p>
<p class="note"><a href="{base}/delete">Delete my photo now</a></p>"""
    return _visitor_layout("Your photo", body)


def visitor_confirm_delete(token: str, spec: ArtworkSpec) -> str:
    base = f"/p/{escape(token)}"
    body = f"""<h1>Delete your photo?</h1>
<p>Your photo in <strong>{escape(spec.title)}</strong> will be deleted from ArtBooth at once and this link will stop working.
Copies you have already downloaded stay yours.</p>
<form method="post" action="{base}/delete">
  <button type="submit" class="danger">Yes, delete my photo</button>
</form>
<p><a class="button secondary" href="{base}">No, keep it</a></p>"""
    return _visitor_layout("Delete your photo?", body)


def visitor_deleted() -> str:
    body = """<h1>Your photo has been deleted</h1>
<p>The photo and every copy we kept of it are gone, and its link no longer works.</p>"""
    return _visitor_layout("Photo deleted", body)


_GONE_REASONS = {
    LinkState.EXPIRED: "Photos can be downloaded for a limited time after the visit, and this link's time is up.",
    LinkState.REVOKED: "The museum has withdrawn this link.",
    LinkState.DELETED: "This photo has been deleted.",
}


def visitor_gone(state: LinkState) -> str:
    body = f"""<h1>This photo is no longer available</h1>
<p>{escape(_GONE_REASONS[state])}</p>
<p class="note">If you think this is a mistake, ask the museum's staff at the booth.</p>"""
    return _visitor_layout("Photo no longer available", body)


def visitor_not_found() -> str:
    body = """<h1>We could not find this photo</h1>
<p>Check that the whole link was copied, or scan the QR code again.</p>"""
    return _visitor_layout("Photo not found", body)


def privacy_notice(settings: Settings) -> str:
    """What the booth tells visitors before their first photo: staff's own text, or one made from the settings."""
    if settings.privacy_notice:
        return settings.privacy_notice
    retention = (
        f"for {settings.photo_retention_days} days" if settings.photo_retention_days else "until you delete it"
    )
    return (
        f"We keep your photo in the painting {retention}; the link in the QR code works for "
        f"{settings.download_link_hours} hours. "
        + ("We also keep the camera picture. " if settings.keep_raw_photos else "The camera picture itself is not kept. ")
        + "You can delete your photo at any time from its download page."
    )


def kiosk(kiosk_id: str, specs: list[ArtworkSpec], settings: Settings, *, staff_csrf_token: str | None = None) -> str:
    """The booth's touch screen: one page, its screens switched by kiosk.js. Opened by signed-in
    staff rather than the paired booth, it carries their session's CSRF token for kiosk.js to send."""
    artworks = script_json([spec_json(spec) for spec in specs])
    privacy = privacy_notice(settings)
    staff_csrf = f' data-staff-csrf="{escape(staff_csrf_token)}"' if staff_csrf_token else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, user-scalable=no">
<title>ArtBooth</title>
<link rel="stylesheet" href="/static/kiosk.css">
</head>
<body data-kiosk="{escape(kiosk_id)}" data-idle-seconds="{settings.kiosk_idle_seconds}"
      data-countdown-seconds="{settings.kiosk_countdown_seconds}" data-heartbeat-seconds="{settings.kiosk_heartbeat_seconds}"{staff_csrf}>
<script type="application/json" id="artworks">{artworks}</script>
<section id="attract" class="screen active">
  <h1>Step into a painting</h1>
  <p>Touch the screen to begin</p>
</section>
<section id="choose" class="screen">
  <h2>Choose a painting</h2>
  <div class="carousel" id="carousel"></div>
</section>
<section id="preview" class="screen">
  <video id="live" autoplay playsinline muted></video>
  <p id="status" class="status" role="status"></p>
  <div id="countdown" class="countdown" aria-live="assertive"></div>
  <div class="controls">
    <button id="shoot" class="primary" type="button">Take my photo</button>
    <div class="strip" id="strip"></div>
  </div>
</section>
<section id="privacy" class="screen overlay">
  <div class="card">
    <h2>Before we take your photo</h2>
    <p>{escape(privacy)}</p>
    <button id="agree" class="primary" type="button">OK, take my photo</button>
    <button id="decline" class="secondary" type="button">Not now</button>
  </div>
</section>
<section id="processing" class="screen">
  <div class="spinner" aria-hidden="true"></div>
  <h2>Painting you in…</h2>
</section>
<section id="result" class="screen">
  <img id="result-photo" alt="You, in the painting">
  <div class="take-away">
    <img id="result-qr" alt="QR code: scan to download your photo">
    <p>Scan with your phone to download your photo.</p>
    <button id="done" class="primary" type="button">Done</button>
  </div>
</section>
<section id="problem" class="screen">
  <h2 id="problem-title">Something went wrong</h2>
  <p id="problem-text"></p>
  <button id="retry" class="primary" type="button">Try again</button>
</section>
<video id="camera" autoplay playsinline muted hidden></video>
<script src="/static/kiosk.js"></script>
</body>
</html>
"""


def _booth_layout(body: str) -> str:
    """A booth page without the booth's script: read from 2 m, like the booth's own screens."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, user-scalable=no">
<meta name="referrer" content="no-referrer">
<title>ArtBooth</title>
<link rel="stylesheet" href="/static/kiosk.css">
</head>
<body class="setup">
<section class="screen active">
{body}
</section>
</body>
</html>
"""


def booth_not_set_up(kiosk_id: str, reason: str) -> str:
    """What an unknown, unpaired or revoked booth's screen shows: that staff must set it up, and how."""
    reason = reason[:1].upper() + reason[1:] + ("" if reason.endswith(".") else ".")
    return _booth_layout(f"""<h1>This booth is not set up yet</h1>
<p>Please ask the museum staff.</p>
<div class="card steps">
  <p class="reason">{escape(reason)}</p>
  <ol>
    <li>In the staff dashboard, open <strong>Kiosks</strong> and register the kiosk <code>{escape(kiosk_id)}</code> if it is not listed.</li>
    <li>Choose <strong>Pair this booth</strong> there.</li>
    <li>Open the pairing link it shows on this screen, within its time, and confirm.</li>
  </ol>
</div>""")


def booth_pairing(kiosk_id: str, code: str) -> str:
    """The pairing link's page on the booth: confirming pairs this screen (a POST, so a prefetch cannot)."""
    return _booth_layout(f"""<h1>Pair this screen</h1>
<p>This screen becomes the booth <code>{escape(kiosk_id)}</code>. A screen paired with it before stops working.</p>
<form method="post" action="/kiosk/{escape(kiosk_id)}/pair">
  <input type="hidden" name="code" value="{escape(code)}">
  <button id="pair" class="primary" type="submit">Pair this screen</button>
</form>""")
