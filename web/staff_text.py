"""Staff-facing text that lives in Python rather than in a template: labels and fixed notices the
staff pages look up by a key. Each is English, marked with ``N_`` so that Babel extracts it into the
staff catalogue (babel-staff.cfg), and translated where it is shown: ``{{ _(NOTICES[notice]) }}`` in a
template, ``Pages.gettext`` in Python. Only these fixed strings go through ``_()`` this way, never a
value from data (``_()`` marks its result safe).
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


# The dashboard's sections: (path, label, admin only).
SECTIONS = (
    ("/staff/", N_("Overview"), False),
    ("/staff/artworks", N_("Artworks"), False),
    ("/staff/photos", N_("Photos"), False),
    ("/staff/kiosks", N_("Kiosks"), False),
    ("/staff/queue", N_("Capture queue"), False),
    ("/staff/settings", N_("Settings"), True),
    ("/staff/users", N_("Users"), True),
    ("/staff/tokens", N_("API tokens"), True),
    ("/staff/audit", N_("Audit log"), True),
    ("/staff/museum", N_("Museum"), True),
    ("/staff/privacy", N_("Privacy notice"), True),
    ("/staff/tls", N_("HTTPS for booths"), False),
)

# Fixed notices after a redirect: the query names one, so no text from a URL reaches the page.
NOTICES = {
    "deleted": N_("The photo was deleted."),
    "gone": N_("That photo was deleted already."),
    "revoked": N_("The download link was withdrawn; it now answers “withdrawn”."),
    "revoked-already": N_("That link was withdrawn already."),
    "reharmonized": N_("The photo was composed again; its download link now serves the new picture."),
    "saved": N_("Settings saved; they are in effect now."),
    "unchanged": N_("Nothing was changed."),
    "reset": N_("The setting is back to the value of the settings file or environment."),
    "created": N_("The user was created."),
    "role": N_("The role was changed."),
    "disabled": N_("The user was disabled and signed out."),
    "enabled": N_("The user was enabled."),
    "password": N_("The password was reset; the user's sessions were ended."),
}

# What each dashboard setting is called and means on the Settings page.
SETTING_LABELS = {
    "public_url": (
        N_("Public URL"),
        N_("The address visitors' phones open from the QR code; empty: this machine's address."),
    ),
    "photo_retention_days": (
        N_("Retention (days)"),
        N_("Photos older than this are deleted with their files; 0 keeps them."),
    ),
    "download_link_hours": (N_("Download links work for (hours)"), N_("How long a new QR code's link works.")),
    "keep_raw_photos": (
        N_("Keep the camera photo"),
        N_("Also store the visitor's unprocessed photo (personal data); needed to re-run a photo's harmonization."),
    ),
    "harmonize": (N_("Harmonize"), N_("Match the visitor's colour and light to the painting.")),
    "harmonize_targets": (
        N_("Colour matching method"),
        N_(
            "Painting (the default): take the painting's light and colour, skin kept natural; "
            "Photograph: a model trained on photos, for artworks that are photographs."
        ),
    ),
    "harmonize_strength": (
        N_("Harmonization strength"),
        N_("0 leaves the visitor as photographed, 1 applies the full correction."),
    ),
    "privacy_notice": (
        N_("Privacy notice"),
        N_("What the booth tells visitors before their first photo; empty: the text below."),
    ),
    "attract_example_photos": (
        N_("Example photos on the booth"),
        N_(
            "The booth's welcome screen shows a few recent photos taken at that booth (never the camera's "
            "own picture, none whose link was withdrawn). Visitors' photos: turn on only if your privacy notice says so."
        ),
    ),
    "look": (N_("Look"), N_("What artworks without a look of their own offer (each artwork's page can choose its own).")),
    "stylize_strength": (
        N_("Painted strength"),
        N_("How far the painted look takes the visitor into the painting's brushwork: 0 not at all, 1 fully."),
    ),
    "kiosk_idle_seconds": (
        N_("Booth idle time (seconds)"),
        N_("Without a touch for this long, a booth goes back to its welcome screen (at least 10)."),
    ),
    "kiosk_countdown_seconds": (N_("Countdown (seconds)"), N_("The booth counts down this long before it takes the photo (0-10).")),
    "kiosk_result_seconds": (
        N_("Photo and QR code shown for (seconds)"),
        N_("How long the booth keeps a photo's QR code on screen without a touch, unless the visitor taps Done (at least 10)."),
    ),
}

# Where a setting's value comes from.
SOURCE_LABELS = {
    "default": N_("default"),
    "file": N_("settings file"),
    "env": N_("environment"),
    "dashboard": N_("dashboard"),
}

# The harmonizer's targets (kiosk.settings.HARMONIZE_TARGETS) in staff's words.
TARGET_LABELS = {
    "fitted": N_("Painting: the painting's light and colour"),
    "learned": N_("Photograph: a model trained on photos"),
}

# The looks an artwork offers (kiosk/looks.py), in staff's words; "" (no look of its own): the service's.
LOOK_LABELS = {
    "realistic": N_("Realistic: colour and light only"),
    "painted": N_("Painted: in the painting's brushwork"),
    "visitor": N_("Visitor chooses"),
}
# A photo's look, in a caption.
LOOK_NAMES = {"realistic": N_("Realistic"), "painted": N_("Painted")}

# The regions drawn in the artwork editor.
REGION_LABELS = {
    "close-up": N_("Close-up"),
    "half-body": N_("Half body"),
    "full-body": N_("Full body"),
    "reference": N_("Reference region"),
}
# Where an artwork's colours are matched from (pipeline.types.ReferenceMode).
REFERENCE_LABELS = {
    "artwork": N_("the complete artwork"),
    "ring": N_("a ring around the placement box"),
    "region": N_("the reference region drawn here"),
}

# An artwork's source on the Artworks list.
ARTWORK_SOURCES = {
    "demo": N_("Demo"),
    "folder": N_("Artworks folder"),
    "demo-edited": N_("Demo, edited here"),
    "dashboard": N_("Dashboard"),
}

# A framing (pipeline.types.Framing), in words.
FRAMING_LABELS = {"close-up": N_("close-up"), "half-body": N_("half body"), "full-body": N_("full body")}

# The harmony score (web/score_words.py), in words.
HARMONY_WORDS = {
    "very-well": N_("Blends in very well"),
    "well": N_("Blends in"),
    "noticeable": N_("Noticeably pasted-in"),
    "pasted": N_("Looks pasted on"),
    "none": N_("Not scored"),
}

# What was done to the visitor (web/score_words.py), in words.
VARIANT_WORDS = {
    "default": N_("Full colour-and-light match to the artwork"),
    "gentle": N_("Gentle colour-and-light match to the artwork"),
    "untouched": N_("Colours left as photographed"),
    "none": N_("Not harmonized: the visitor as photographed"),
    "painted": N_("Painted into the artwork"),
    "matched-ring": N_("Half-strength colour match to the paint around the visitor"),
    "matched-artwork": N_("Half-strength colour match to the whole artwork"),
    "matched-region": N_("Half-strength colour match to the artwork's chosen reference region"),
    "unnamed": N_("Unnamed variant"),
    "painted-lightly": N_("Painted into the artwork, lightly (%(share)s of the full repaint)"),
    "painted-after": N_("%(painting)s, after: %(colour)s"),
}

# Staff roles (db.models.StaffRole), in words.
ROLE_LABELS = {"admin": N_("admin"), "operator": N_("operator")}
# An API token's state (db.api_tokens.TokenState), in words.
TOKEN_STATES = {"active": N_("active"), "expired": N_("expired"), "revoked": N_("revoked"), "unknown": N_("unknown")}

# Where a photo composed again takes its colours from (the photo page's form).
PHOTO_REFERENCE_LABELS = {
    "artwork": N_("the whole artwork"),
    "ring": N_("a ring around the visitor"),
    "region": N_("the artwork's reference region"),
}

# What the sign-in, set-up and refusal pages say (web/staff.py).
FAILED_MESSAGE = N_("Wrong username or password.")
CSRF_MESSAGE = N_(
    "This request did not come from an ArtBooth staff page (its security token is missing or wrong). "
    "Reload the page and try again."
)
FORM_EXPIRED_MESSAGE = N_("This form had expired. Please try again.")
LOCKED_MESSAGE = N_("Too many failed sign-ins. Try again in %(minutes)s min.")
ROLE_MESSAGE = N_("This needs the %(needed)s role; you are signed in as %(held)s. Ask an administrator.")
FILL_IN_MESSAGE = N_("Fill in every field.")
PASSWORDS_DIFFER_MESSAGE = N_("The two passwords differ.")
