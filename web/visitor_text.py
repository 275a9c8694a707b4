"""Visitor-facing text that is not in a template (issue 13): the booth script's words, the booth
API's messages, the privacy notice made from the settings. Marked with ``N_`` for Babel's
extraction (babel-visitor.cfg: the "visitor" catalogue) and translated when a page or an answer is
made, in the language the visitor chose (web/templating.py ``Pages.gettext``).
"""

from __future__ import annotations

from babel.support import NullTranslations

from kiosk.settings import Settings
from web.templating import Pages


def N_(message: str) -> str:
    """Marks ``message`` for extraction; it is translated later, in the visitor's language."""
    return message


# Everything the booth's script (web/static/kiosk.js) writes on the screen, by the name it uses.
BOOTH_SCRIPT_TEXT = {
    "look_title": N_("How would you like to appear?"),
    "look_realistic_name": N_("As you are"),
    "look_realistic_line": N_("Your photo, in the painting's colours and light"),
    "look_painted_name": N_("Painted in"),
    "look_painted_line": N_("You, in the painting's own brushstrokes"),
    "back": N_("Back"),
    "reconnecting": N_("Reconnecting…"),
    "camera_unavailable_title": N_("This booth's camera is not available"),
    "camera_unavailable_text": N_("Please ask the museum staff for help."),
    "problem_title": N_("Let's try that again"),
    "problem_text": N_("Sorry, that did not work. Please try again."),
    "problem_415": N_("The picture did not come through"),
    "problem_422": N_("We could not see you"),
    "problem_503": N_("One moment, please"),
    "result_leaves_in": N_("This screen closes in %(seconds)s s"),
}

# The booth API's answers to a capture, shown to the visitor as they are (web/kiosk.py).
FRIENDLY_RETRY = N_("Sorry, that did not work. Please try again.")
BUSY_MESSAGE = N_("The booth is busy making other photos. Please try again in a few seconds.")
NOT_A_PHOTO_MESSAGE = N_("The camera's picture did not come through. Please try again.")
NO_PERSON_MESSAGE = N_("We could not see you. Step into the frame and try again.")
ARTWORK_GONE_MESSAGE = N_("This artwork is no longer available. Please choose another one.")
TOO_LARGE_MESSAGE = N_("The camera's picture is too large for this booth. Please ask the museum staff for help.")
ALREADY_CAPTURING_MESSAGE = N_("A photo is already being made. One moment, please.")
CAMERA_NOT_CONNECTED_MESSAGE = N_("The camera is not connected yet. Please try again in a moment.")


def booth_script_text(pages: Pages, language: str) -> dict[str, str]:
    """The booth script's words in ``language``, for the page to hand it as JSON."""
    return {name: pages.gettext(language, message) for name, message in BOOTH_SCRIPT_TEXT.items()}


def privacy_notice(settings: Settings, pages: Pages | None = None, language: str | None = None) -> str:
    """What the booth tells visitors before their first photo, in ``language``: staff's own text for
    that language (``privacy_notice`` for the default one, ``privacy_notices`` for the others), else
    one made from the settings (translated where a catalogue has it)."""
    language = language or settings.default_language
    own = settings.privacy_notice if language == settings.default_language else settings.privacy_notices.get(language, "")
    if own:
        return own

    translations = pages.catalogues.translations(language) if pages is not None else NullTranslations()
    _, ngettext = translations.ugettext, translations.ungettext

    days, hours = settings.photo_retention_days, settings.download_link_hours
    if days:
        kept = ngettext(
            "We keep your photo in the painting for %(days)s day.", "We keep your photo in the painting for %(days)s days.", days
        ) % {"days": days}
    else:
        kept = _("We keep your photo in the painting until you delete it.")
    link = ngettext(
        "The link in the QR code works for %(hours)s hour.", "The link in the QR code works for %(hours)s hours.", hours
    ) % {"hours": hours}
    raw = _("We also keep the camera picture.") if settings.keep_raw_photos else _("The camera picture itself is not kept.")
    delete = _("You can delete your photo at any time from its download page.")
    # Sentences in Chinese and Japanese end with a full-width stop and take no space after it.
    return "".join(sentence + ("" if sentence.endswith("。") else " ") for sentence in (kept, link, raw, delete)).strip()
