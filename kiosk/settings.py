"""The one settings object of ArtBooth.

Values come from, in rising priority: the defaults below, an optional TOML file
(``ARTBOOTH_CONFIG`` or ``--config``), ``ARTBOOTH_<FIELD>`` environment variables, and, for
the fields in DASHBOARD_FIELDS, what staff set in the dashboard (stored in the database and
applied with Settings.with_overrides, at start and whenever staff change one).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import socket
import tomllib
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import platformdirs

from kiosk.errors import ArtBoothError, ExitCode

ENV_PREFIX = "ARTBOOTH_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"

SEGMENTER_BACKENDS = ("modnet", "rmbg-1.4", "rmbg-2.0")
HARMONIZE_TARGETS = ("learned", "fitted")
# 0 leaves the subject as photographed, 1 applies the full correction.
HARMONIZE_STRENGTH_RANGE = (0.0, 1.0)
# The looks a photo is made in (kiosk/looks.py): colour and light only, or then painted into the artwork.
LOOKS = ("realistic", "painted")
# What an artwork (or the service, for artworks without their own) offers: one look, or the visitor's pick.
ARTWORK_LOOKS = (*LOOKS, "visitor")
# What a serve node does (setting serve_role): compose itself, or queue compositions for workers.
SERVE_ROLES = ("all", "web")

# The settings staff may change in the dashboard while the service runs; they win over the file
# and the environment. Everything else needs a restart (ports, folders, models, workers).
DASHBOARD_FIELDS = (
    "public_url",
    "photo_retention_days",
    "download_link_hours",
    "keep_raw_photos",
    "harmonize",
    "harmonize_targets",
    "harmonize_strength",
    "privacy_notice",
    # Example photos on the booth's attract screen (issue 13, "rest"; web/kiosk.py): visitors' photos, so off by default.
    "attract_example_photos",
    # Looks (issue 11, "ui"): what artworks without their own look offer, and the painted strength.
    "look",
    "stylize_strength",
    # The booth's times (issue 13): a booth takes them at its next page load (after each visitor).
    "kiosk_idle_seconds",
    "kiosk_countdown_seconds",
    "kiosk_result_seconds",
)
# Museum identity (issue 13, "identity"; kiosk/museum.py): changed by staff on the dashboard's Museum
# page (web/dashboard_museum.py) rather than the Settings page, stored and applied as DASHBOARD_FIELDS are.
MUSEUM_FIELDS = ("museum_name", "museum_accent_colour", "credit_strip")
# Privacy notices per language (issue 13, "rest"): changed by staff on the dashboard's Privacy page
# (web/dashboard_privacy.py), stored and applied as DASHBOARD_FIELDS are.
PRIVACY_FIELDS = ("privacy_notices",)

# What a multipart form adds around the largest photo (part headers, the other fields).
MULTIPART_OVERHEAD_BYTES = 64 * 1024

# The museum's name fits one line of a photo's credit strip and of the phone page's header.
MAX_MUSEUM_NAME_CHARS = 120
# The privacy notice fills one card on the booth's screen.
MAX_PRIVACY_NOTICE_CHARS = 2000
# Broken input: the longest a link or a photo is kept, a century; dates computed from larger values
# do not fit a datetime (a link of 10**20 hours was accepted, then every capture answered 500).
MAX_KEPT_DAYS = 36_500

# HTTPS (kiosk/tls.py): "auto" serves HTTPS unless `host` is loopback; "on" always; "off" never.
TLS_MODES = ("auto", "on", "off")

# Where a value came from, as Settings.sources records it (absent: the default).
SOURCE_FILE = "file"
SOURCE_ENV = "env"
SOURCE_DASHBOARD = "dashboard"


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("artbooth", appauthor=False))


def _default_models_dir() -> Path:
    return Path(platformdirs.user_cache_dir("artbooth", appauthor=False)) / "models"


class SettingsError(ArtBoothError):
    exit_code = ExitCode.BAD_SETTINGS


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    models_dir: Path = field(default_factory=_default_models_dir)
    host: str = "127.0.0.1"
    port: int = 8080
    # Empty means "derive from host and port"; booths need a LAN address phones can reach.
    public_url: str = ""
    # A folder of artwork images with JSON sidecars; empty means ``<data_dir>/artworks``.
    artworks_dir: Path | None = None

    # Languages (issue 13, web/i18n.py). What booths, phone pages and staff pages speak when nothing
    # else asks for a language (the booth's choice, the phone's Accept-Language), by catalogue code.
    default_language: str = "en"
    # A museum adds or corrects a language by dropping <code>/LC_MESSAGES/visitor.po and/or staff.po
    # here (README "The booth", Languages); empty means ``<data_dir>/locales``.
    locales_dir: Path | None = None

    # HTTPS for booths on the LAN (issue 13, kiosk/tls.py): browsers give a page the camera only over
    # HTTPS or on loopback. "auto": HTTPS when a certificate is given or `host` is not loopback;
    # "on": HTTPS on loopback too; "off": plain HTTP, e.g. behind a proxy that terminates TLS.
    tls: str = "auto"
    # The certificate (PEM, its chain after it) and private key to serve; empty: a certificate from
    # the local certificate authority ArtBooth makes once in <data_dir>/tls (booths install its CA).
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    # More names the generated certificate carries, comma-separated DNS names or IP addresses (a name
    # the museum's DNS gives this server), besides this machine's own names and addresses and the
    # public URL's host.
    tls_extra_names: str = ""
    # Visitors' phones do not trust ArtBooth's own certificate authority (only the booths install it),
    # so with the generated certificate the service also answers plain HTTP on this port (0: `port` + 1)
    # for the phone's download pages only (/p/..., and the CA certificate itself); anything else asked
    # there is redirected to HTTPS. Download links point there unless `public_url` says otherwise.
    phone_http_port: int = 0

    # Decompression-bomb guard: images whose header declares more pixels are refused unread.
    max_image_pixels: int = 40_000_000
    max_upload_bytes: int = 30 * 1024 * 1024
    # Photos are composed at most this large (long side), larger ones shrunk first. Booths send the
    # camera's largest still (issue 12): a 12 MP one took 11 s to compose, 1920x1080 1.26 s and
    # 1280x720 0.82 s (realistic, 2 cores), and at 1280 the matte is already clean (bench/matting.py:
    # MSE 4.9e-4), while an artwork's placement box is rarely taller than 1000 px.
    photo_max_long_side: int = 1280
    # Broken input (web/artwork_uploads.py): an uploaded artwork image must be at least this many
    # pixels on its shorter side; smaller ones fill a booth's screen as a blur (a 1x1 was accepted).
    min_artwork_side_px: int = 200

    segmenter: str = "modnet"
    # MODNet's input, long side. Matting (issue 12): 416 rather than 512, measured by bench/matting.py
    # on the P3M portraits (384-448 all beat 512 there, at every photo size, and cost less).
    matting_long_side: int = 416
    # Radius (at full resolution) of the guided filter that carries the low-res alpha to full size.
    matting_refine_radius: int = 8
    # Matting (issue 12, the modnet segmenter): closed-form matting (pymatting) solves the alpha again,
    # at the photo's own resolution, in the band of unknown pixels around the refined alpha's half-way
    # contour; the band reaches this fraction of the photo's long side to each side of it (6 px at
    # 1280). 0.003-0.005 measured best (bench/matting.py); at 0.008 the SAD was 1.2x as large.
    matting_band_solve: bool = True
    matting_band_width: float = 0.005
    # A local directory or Hugging Face repo id for the RMBG backends.
    rmbg_model: str = ""
    # Hub downloads are opt-in: kiosks and CI are often offline.
    allow_model_download: bool = False

    face_min_size_px: int = 40
    # ... in `artbooth harmonize`'s composites, where a subject small in the painting has faces of 20 px:
    # the faces found are kept recognisable (and given back if a look loses them).
    composite_face_min_size_px: int = 16
    face_min_probability: float = 0.9
    # MTCNN runs on a copy no larger than this (long side): faces at a booth are large.
    face_detect_long_side: int = 960

    harmonize: bool = True
    # Colour and light (pipeline/harmonize/, README "Harmonization"). "fitted": the subject takes the
    # reference region's luminance zones and colour cast, skin kept in skin hues and never greyer than
    # the painting (the default: artworks are paintings, and it is the one no worse than untouched on
    # real photographic composites); "learned": a model trained on outdoor photos predicts the subject's
    # look, for sites whose artworks are photographs (best on the Lalonde benchmark, but it greys
    # subjects in paintings).
    harmonize_targets: str = "fitted"
    # 1 moves the subject all the way to its target look (within the operators' bounds); 0 leaves it.
    harmonize_strength: float = 1.0

    # Which look artworks without their own setting offer (ARTWORK_LOOKS): "visitor" lets the booth
    # offer both, the visitor taps one before the countdown.
    look: str = "visitor"
    # The look of a photo whose artwork leaves it to the visitor when nobody chose (API, public upload).
    fallback_look: str = "realistic"

    # Painterly stylization (pipeline/stylize.py): the painted look.
    # Strength interpolates the subject's own style vector towards the painting's: 0 leaves it as is.
    stylize_strength: float = 0.8
    # Share of the repainted luminance faces do not take (they keep their own colours): recognisable visitors.
    stylize_face_protection: float = 0.6
    # The subject is painted at a scale set by the painting's brush strokes, but with at least this
    # long side (faces keep their features) and at most this many pixels (time: about 0.2 s per 0.36 MP
    # on 2 quiet cores; a standing visitor at a booth reaches the cap, and twice it doubles the wait
    # for strokes no one sees at the size the photo is looked at).
    stylize_min_working_side: int = 384
    stylize_max_working_pixels: int = 360_000
    # Painting styles (one vector per artwork and reference region) each process keeps; it keeps
    # twice as many described reference regions for colour and light (two per artwork and framing).
    stylize_style_cache_size: int = 16

    # Empty: SQLite at <data_dir>/artbooth.db. Or postgresql://user:password@host/db for larger sites.
    database_url: str = ""
    # Where photo files live; empty means ``<data_dir>/photos``.
    photos_dir: Path | None = None
    # Photos in an S3-compatible object store that several serve nodes share (issue 14; db/s3_store.py):
    # "s3://BUCKET", or "s3://BUCKET/PREFIX" to keep to the objects under PREFIX/. Empty: files under
    # photos_dir, the embedded default. The bucket is made at start when it does not exist.
    photo_store: str = ""
    # The store's address, e.g. http://127.0.0.1:8333 for SeaweedFS; empty: Amazon S3 itself.
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    # Both empty: botocore's own credential chain (AWS_* variables, ~/.aws, an instance role).
    # The secret is never logged or shown: `artbooth settings` masks it, the dashboard never lists it.
    s3_access_key_id: str = ""
    s3_secret_access_key: str = field(default="", repr=False)
    # Each request's connect and read timeout: an unreachable store answers 503 rather than hanging.
    s3_timeout_seconds: float = 10.0
    # /readyz (web/health.py) gives each of its checks (database, photo store) this long to answer.
    readiness_timeout_seconds: float = 2.0
    # Shared state between serve nodes on one PostgreSQL (issue 14, "shared"; db/presence.py, db/notify.py).
    # This node's name among them (the Kiosks page says which node saw a booth); empty: host name and port.
    node_name: str = ""
    # Each node writes a booth's presence at most this often (heartbeats in between stay in memory)...
    kiosk_presence_write_seconds: int = 5
    # ...and reads every booth's presence, and capture counts, this often.
    kiosk_presence_read_seconds: int = 2
    # The longest pause between tries to reopen the connection that hears other nodes' settings changes.
    settings_listen_retry_max_seconds: int = 30
    # What `artbooth serve` does (issue 14): "all" composes in its own worker processes (the embedded
    # default, any database); "web" answers booths, staff and the API and queues every composition on
    # PostgreSQL for `artbooth worker` processes on any machine (kiosk/capture_queue.py). `serve --role`.
    serve_role: str = "all"
    # How long a request waits for its queued composition before answering 503 with Retry-After; a
    # booth that asks again with the same capture id goes on waiting for the same job.
    queue_wait_seconds: float = 60.0
    # Results arrive by LISTEN/NOTIFY; a node also looks every this often, in case a notification was lost.
    queue_poll_seconds: float = 1.0
    # A composition a worker died in (killed, out of memory) is run again, up to this many runs in all.
    queue_max_attempts: int = 3
    # Compositions waiting for a worker, at most (all nodes together); a node asked for more answers
    # 503 with Retry-After, as a busy compose pool does.
    queue_max_waiting: int = 200
    # Each worker says it is alive this often; a worker silent for queue_stalled_seconds is taken for
    # dead, and its job is handed to another worker.
    queue_heartbeat_seconds: float = 1.0
    queue_stalled_seconds: float = 4.0
    # This worker's name in the staff's queue page; empty: host name and process id.
    worker_name: str = ""
    # The visitor's unprocessed camera photo is personal data we do not need; keep it only when asked.
    keep_raw_photos: bool = False
    download_link_hours: int = 72
    # Photos older than this are deleted with their files; 0 keeps them forever.
    photo_retention_days: int = 30
    # What the booth tells visitors before their first photo; empty: a notice made from the
    # retention, link and raw-photo settings (web.visitor_text.privacy_notice), in the booth's language;
    # this text is the default language's (settings.default_language), other languages get theirs.
    privacy_notice: str = ""
    # The notice in the other languages, by catalogue code ("fr", "zh_Hans"); a language without one
    # gets the notice made from the settings in that language. In a file: a table; in the environment: JSON.
    privacy_notices: dict[str, str] = field(default_factory=dict)
    # How long an expired link is remembered, so its QR code gets "expired" rather than "not found".
    expired_link_grace_days: int = 30
    retention_interval_minutes: int = 60
    # Download counts are written in batches; a crash loses at most this many seconds of counts.
    download_count_flush_seconds: float = 2.0
    # Outages (web/availability.py): what a 503 asks clients to wait before trying again
    # (Retry-After) while the database cannot be used, or a delete waits for the next retention run.
    unavailable_retry_after_seconds: int = 30

    # The booth's screen: back to the attract screen after this long without a touch.
    kiosk_idle_seconds: int = 60
    kiosk_countdown_seconds: int = 3
    kiosk_heartbeat_seconds: int = 15
    # Booth pairing (web/kiosk.py): how long the one-time pairing link staff open on a booth works.
    kiosk_pairing_minutes: int = 10
    # Preview frames rendered at once in this process (one per core); more kiosks share them.
    preview_threads: int = 2

    # Visitor pages (issue 13, "visitor"). The booth's result screen keeps the photo's QR code this
    # long without a touch (a visible countdown), unless the visitor taps "Done" first.
    kiosk_result_seconds: int = 90
    # The public "Try it with a photo" form at / (POST /compose, POST /api/compose): off, those
    # answer 404 and / shows the museum's artworks only; anyone's upload would otherwise be stored.
    public_upload: bool = False

    # Example photos (issue 13, "rest"; web/kiosk.py, db/examples.py). When staff allow it, the booth's
    # attract screen cycles the most recent photos taken at that booth (still within retention, none of
    # their links withdrawn; composed photos only, never the camera's), served only to that booth.
    attract_example_photos: bool = False
    # How many, and how long each is shown.
    attract_example_count: int = 4
    attract_example_seconds: int = 6

    # Museum identity (issue 13, "identity"; kiosk/museum.py). The name on the phone page, the booth and
    # the photo's credit strip; empty: none shown. The logo is an uploaded file (<data_dir>/museum/logo.png).
    museum_name: str = ""
    # The pages' accent (buttons, links) and the credit strip's background, as #rrggbb.
    museum_accent_colour: str = "#8a2d1f"
    # A band along the bottom of every stored photo: "Title, Artist, Year · Museum" and the logo.
    credit_strip: bool = True
    # Its height, as a share of the photo's shorter side, and at least this many pixels (tiny photos).
    credit_strip_height: float = 0.05
    credit_strip_min_px: int = 18
    # A TrueType/OpenType font for the strip; empty: DejaVu Sans, shipped in matplotlib (Latin with
    # accents, Greek, Cyrillic; no Chinese or Japanese: point this at e.g. Noto Sans CJK for those).
    credit_strip_font: Path | None = None
    # What a logo upload may be: bytes, and pixels its header declares (decompression bombs).
    museum_logo_max_bytes: int = 2 * 1024 * 1024
    museum_logo_max_pixels: int = 4_000_000

    compose_workers: int = 1
    # Each compose worker composes a generated photo at start (every model and network run once at a
    # booth's sizes), so the first visitor's capture costs what the next ones do (without it the
    # first took 2.3 s, the next 0.6-0.8 s). Off, workers only load their models: quicker starts where no visitor waits
    # (the test suite starts dozens of servers; its own warm-up test turns it on).
    compose_warm_up: bool = True
    # Decoded artworks each compose worker keeps in memory (a 4000x3000 painting takes 36 MB).
    artwork_cache_size: int = 8
    torch_threads: int = 0  # 0: one for MTCNN with the modnet segmenter, else torch decides (kiosk/engine.py)

    # Live preview (streaming/preview.py explains the smoothing). Faces are re-detected this often.
    preview_face_interval_s: float = 0.5
    # The live preview finds faces and the matte on the camera frame shrunk by a whole factor to
    # at most this long side (640x480 -> 320x240): a quarter of the pixels to segment, smooth and
    # place, and the subject is shrunk into its box in the artwork anyway.
    preview_matte_long_side: int = 320
    # Share of the new alpha a pixel takes where the camera image did not change: lower is steadier.
    preview_alpha_still_weight: float = 0.35
    # Grey-level change at which a pixel counts as moving and takes the new alpha at once.
    preview_alpha_motion_levels: float = 24.0
    # Frames the per-connection fps and processing-time percentiles are computed over.
    preview_stats_window: int = 120
    # Torch threads in the process serving live previews (process-wide, set when the preview's
    # models load). More than 1 lets MTCNN's spinning OpenMP threads fight OpenCV and the video
    # codecs for the cores: 200-1300 ms per detection on 2 busy cores, against 30-80 ms with 1.
    preview_torch_threads: int = 1
    # Threads of each live-preview selfie segmentation (LiteRT). One: connections rendering side
    # by side are the parallelism, and a second thread costs more CPU than it saves time.
    preview_segmentation_threads: int = 1
    # Live preview colour (issue 11, "preview"; streaming/preview.py): the capture's colour and light
    # (the harmonizer's operators, when `harmonize` is on) applied to the visitor in the preview, so
    # the photo does not surprise them; refitted on the live picture this often, beside the rendering.
    # Each refit costs about 140 ms of a core: on 2 quiet cores (bench/preview.py) the preview's
    # server took 107% of a core refitting every 0.5 s, 77% every 1 s, 56% every 1.5 s (50% with no
    # colour at all; target 70%), at 29.6-30 fps each. A visitor's light changes slower than that.
    preview_colour: bool = True
    preview_colour_interval_s: float = 1.5

    # Staff sign-in. A session ends after this long without a request, and this long after sign-in
    # at the latest, however active.
    staff_session_idle_minutes: int = 60
    staff_session_hours: int = 12
    # This many failed sign-ins for one username within the window lock that username for the
    # lockout time (whether or not it exists); login_max_failures_per_ip does the same for a client address.
    login_max_failures: int = 5
    login_max_failures_per_ip: int = 30
    login_failure_window_minutes: int = 15
    login_lockout_minutes: int = 15
    # Argon2id cost of staff passwords (memory per hash, passes); a password hashed with other
    # values is rehashed with these at its next sign-in.
    password_hash_memory_mib: int = 64
    password_hash_time_cost: int = 3

    # Bounded memory and connections (web/limits.py). Request bodies in flight across the whole
    # service, in bytes: a body that would go over waits outside (503 with Retry-After) before it
    # is read. Each admitted photo is read into memory once for the compose workers, so this bounds
    # what a flood of uploads can make the service hold; it must take at least one largest upload.
    max_inflight_upload_bytes: int = 64 * 1024 * 1024
    # Per client address, on the public endpoints (/compose, /api/compose, /p/..., /kiosk/...,
    # /api/kiosks/...): requests per minute and requests at once; more get 429 with Retry-After.
    # Generous: a museum's phones may share one address behind its router.
    public_requests_per_minute: int = 1200
    public_concurrent_requests: int = 32
    # Reverse proxies in front of this node (comma-separated addresses or networks, e.g. 127.0.0.1 or
    # 10.0.0.0/24): a request from one of them is taken to come from the address its X-Forwarded-For
    # names last outside them, for the limits above, the sign-in lockouts and the logs (web/proxies.py).
    # Empty: every request is its connection's peer, whatever it claims.
    trusted_proxies: str = ""
    # Slow clients: a request's headers must arrive within this many seconds of the connection
    # opening (or of their first byte on a kept-alive one), its body within this many seconds of
    # its headers; else the connection is closed. Idle kept-alive connections close after
    # idle_connection_seconds; one client address holds at most max_connections_per_address.
    request_header_timeout_seconds: float = 10.0
    request_body_timeout_seconds: float = 60.0
    idle_connection_seconds: float = 75.0
    max_connections_per_address: int = 128

    # Where each value that is not a default came from (SOURCE_FILE, SOURCE_ENV, SOURCE_DASHBOARD).
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def resolved_public_url(self) -> str:
        """The address download links and QR codes point to."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.serves_phone_http:
            return f"http://{self._reachable_host}:{self.resolved_phone_http_port}"
        return f"{'https' if self.serves_tls else 'http'}://{self._reachable_host}:{self.port}"

    @property
    def resolved_node_name(self) -> str:
        """This serve node's name among those sharing one database."""
        return self.node_name or f"{socket.gethostname()}:{self.port}"

    @property
    def uses_postgresql(self) -> bool:
        """Whether the database is PostgreSQL, which several processes share (else the embedded SQLite)."""
        return self.database_url.strip().startswith(("postgresql:", "postgresql+", "postgres:"))

    @property
    def resolved_worker_name(self) -> str:
        """This `artbooth worker`'s name among those taking compositions from the queue."""
        return self.worker_name or f"{socket.gethostname()}:{os.getpid()}"

    @property
    def resolved_service_url(self) -> str:
        """The address booths and staff open (pairing and set-up links): the public URL, but HTTPS on
        `port` where the public URL is the phones' plain port (a link's one-time code never goes in clear)."""
        if self.serves_phone_http and not self.public_url:
            return f"https://{self._reachable_host}:{self.port}"
        return self.resolved_public_url

    @property
    def _reachable_host(self) -> str:
        """This machine as other devices reach it, for URLs."""
        if self.host in ("0.0.0.0", "::"):
            host = _lan_address() or "localhost"
        elif self.host == "127.0.0.1":
            host = "localhost"
        else:
            host = self.host
        return _url_host(host)

    @property
    def serves_tls(self) -> bool:
        """Whether `artbooth serve` answers over HTTPS (the ``tls`` setting)."""
        if self.tls != "auto":
            return self.tls == "on"
        return self.tls_certificate is not None or not is_loopback_host(self.host)

    @property
    def serves_phone_http(self) -> bool:
        """Whether `artbooth serve` also answers phones over plain HTTP (``phone_http_port``): it serves
        HTTPS with the generated certificate, which phones do not trust."""
        return self.serves_tls and self.tls_certificate is None

    @property
    def resolved_phone_http_port(self) -> int:
        return self.phone_http_port or self.port + 1

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in self.trusted_proxies.split(",") if part.strip())

    @property
    def tls_extra_name_list(self) -> tuple[str, ...]:
        return tuple(name.strip().lower() for name in self.tls_extra_names.split(",") if name.strip())

    @property
    def public_url_reachable_by_phones(self) -> bool:
        host = urllib.parse.urlsplit(self.resolved_public_url).hostname or ""
        return host not in ("localhost", "::1") and not host.startswith("127.")

    @property
    def resolved_photos_dir(self) -> Path:
        return self.photos_dir if self.photos_dir is not None else self.data_dir / "photos"

    @property
    def photo_store_bucket(self) -> str:
        """The S3 bucket of ``photo_store`` ("" for local files)."""
        return _split_photo_store(self.photo_store)[0]

    @property
    def photo_store_prefix(self) -> str:
        """What every object key of ``photo_store`` starts with: "" or "PREFIX/"."""
        return _split_photo_store(self.photo_store)[1]

    @property
    def resolved_artworks_dir(self) -> Path:
        return self.artworks_dir if self.artworks_dir is not None else self.data_dir / "artworks"

    @property
    def resolved_locales_dir(self) -> Path:
        return self.locales_dir if self.locales_dir is not None else self.data_dir / "locales"

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        config_file: Path | str | None = None,
    ) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        sources: dict[str, str] = {}
        config_path = config_file or environ.get(CONFIG_ENV)
        if config_path:
            values.update(_read_config_file(Path(config_path)))
            sources.update(dict.fromkeys(values, SOURCE_FILE))
        for name in _loadable_fields(cls):
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = raw
                sources[name] = SOURCE_ENV
        return cls(**{name: _coerce(cls, name, value) for name, value in values.items()}, sources=sources)

    def with_overrides(self, values: Mapping[str, object]) -> Settings:
        """These settings with staff's dashboard values on top (DASHBOARD_FIELDS only), coerced
        and checked as environment values are; SettingsError says what is wrong."""
        unknown = sorted(set(values) - set(DASHBOARD_FIELDS) - set(MUSEUM_FIELDS) - set(PRIVACY_FIELDS))
        if unknown:
            raise SettingsError(f"these settings cannot be changed in the dashboard: {', '.join(unknown)}")
        coerced = {name: _coerce(type(self), name, value) for name, value in values.items()}
        sources = dict(self.sources) | dict.fromkeys(coerced, SOURCE_DASHBOARD)
        return dataclasses.replace(self, **coerced, sources=sources)

    def source(self, name: str) -> str:
        """Where the value of ``name`` came from: "default", SOURCE_FILE, SOURCE_ENV or SOURCE_DASHBOARD."""
        return self.sources.get(name, "default")

    def __post_init__(self) -> None:
        if self.segmenter not in SEGMENTER_BACKENDS:
            raise SettingsError(
                f"segmenter must be one of {', '.join(SEGMENTER_BACKENDS)}, not {self.segmenter!r}"
            )
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be 1-65535, not {self.port}")
        if self.max_image_pixels <= 0 or self.max_upload_bytes <= 0:
            raise SettingsError("max_image_pixels and max_upload_bytes must be positive")
        if self.photo_max_long_side < 320:
            raise SettingsError(f"photo_max_long_side must be at least 320, not {self.photo_max_long_side}")
        if self.min_artwork_side_px < 1:
            raise SettingsError("min_artwork_side_px must be at least 1")
        if not 0.0 < self.matting_band_width <= 0.05:
            raise SettingsError(f"matting_band_width must be above 0 and at most 0.05, not {self.matting_band_width:g}")
        if self.harmonize_targets not in HARMONIZE_TARGETS:
            raise SettingsError(
                f"harmonize_targets must be one of {', '.join(HARMONIZE_TARGETS)}, not {self.harmonize_targets!r}"
            )
        low, high = HARMONIZE_STRENGTH_RANGE
        if not low <= self.harmonize_strength <= high:
            raise SettingsError(f"harmonize_strength must be in {low:g}..{high:g}, not {self.harmonize_strength}")
        if self.look not in ARTWORK_LOOKS:
            raise SettingsError(f"look must be one of {', '.join(ARTWORK_LOOKS)}, not {self.look!r}")
        if self.fallback_look not in LOOKS:
            raise SettingsError(f"fallback_look must be one of {', '.join(LOOKS)}, not {self.fallback_look!r}")
        for name in ("stylize_strength", "stylize_face_protection"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SettingsError(f"{name} must be in 0..1, not {getattr(self, name)}")
        if self.stylize_min_working_side < 32 or self.stylize_max_working_pixels < self.stylize_min_working_side**2:
            raise SettingsError(
                "stylize_min_working_side must be at least 32 and stylize_max_working_pixels at least its square"
            )
        if self.stylize_style_cache_size < 1:
            raise SettingsError("stylize_style_cache_size must be at least 1")
        if self.compose_workers < 1:
            raise SettingsError("compose_workers must be at least 1")
        # Museum identity: the accent goes into a stylesheet, the name onto photos.
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", self.museum_accent_colour):
            raise SettingsError(
                f"museum_accent_colour must be a colour written #rrggbb, like #8a2d1f, not {self.museum_accent_colour!r}"
            )
        if len(self.museum_name) > MAX_MUSEUM_NAME_CHARS:
            raise SettingsError(f"museum_name must be at most {MAX_MUSEUM_NAME_CHARS} characters")
        if not 0.02 <= self.credit_strip_height <= 0.2 or self.credit_strip_min_px < 8:
            raise SettingsError("credit_strip_height must be in 0.02..0.2 and credit_strip_min_px at least 8")
        if self.museum_logo_max_bytes < 1 or self.museum_logo_max_pixels < 1:
            raise SettingsError("museum_logo_max_bytes and museum_logo_max_pixels must be positive")
        if self.kiosk_idle_seconds < 10:
            raise SettingsError("kiosk_idle_seconds must be at least 10")
        if not 1 <= self.attract_example_count <= 12 or not 2 <= self.attract_example_seconds <= 60:
            raise SettingsError("attract_example_count must be 1-12 and attract_example_seconds 2-60")
        if self.kiosk_result_seconds < 10:
            raise SettingsError("kiosk_result_seconds must be at least 10")
        if not 0 <= self.kiosk_countdown_seconds <= 10:
            raise SettingsError("kiosk_countdown_seconds must be 0-10")
        if not 1 <= self.kiosk_pairing_minutes <= 24 * 60:
            raise SettingsError("kiosk_pairing_minutes must be 1-1440")
        if self.kiosk_heartbeat_seconds < 1 or self.preview_threads < 1:
            raise SettingsError("kiosk_heartbeat_seconds and preview_threads must be at least 1")
        if self.artwork_cache_size < 1:
            raise SettingsError("artwork_cache_size must be at least 1")
        if self.public_url:
            parts = urllib.parse.urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
                raise SettingsError(
                    f"public_url must be an http(s) address phones can open, like http://192.168.1.20:8080, "
                    f"not {self.public_url!r}"
                )
        if not 0 <= self.phone_http_port <= 65535 or self.phone_http_port == self.port:
            raise SettingsError("phone_http_port must be a port (1-65535) other than `port`, or 0 for `port` + 1")
        if self.tls not in TLS_MODES:
            raise SettingsError(f"tls must be one of {', '.join(TLS_MODES)}, not {self.tls!r}")
        if (self.tls_certificate is None) != (self.tls_private_key is None):
            raise SettingsError("tls_certificate and tls_private_key go together: give both, or neither for a generated certificate")
        if self.tls == "off" and self.tls_certificate is not None:
            raise SettingsError("tls is off but tls_certificate is set: remove the certificate, or set tls to auto or on")
        for name in self.tls_extra_name_list:
            if not is_certificate_name(name):
                raise SettingsError(
                    f"tls_extra_names: {name!r} is neither a DNS name (like booth.museum.lan) nor an IP address"
                )
        try:
            self.trusted_proxy_networks  # noqa: B018 - parsing them is the check
        except ValueError as exc:
            raise SettingsError(f"trusted_proxies: {exc} (addresses or networks, comma-separated)") from None
        self._check_photo_store()
        if self.download_link_hours < 1:
            raise SettingsError("download_link_hours must be at least 1")
        if len(self.privacy_notice) > MAX_PRIVACY_NOTICE_CHARS:
            raise SettingsError(f"privacy_notice must be at most {MAX_PRIVACY_NOTICE_CHARS} characters")
        for code, notice in self.privacy_notices.items():
            if not isinstance(code, str) or not isinstance(notice, str) or not re.fullmatch(r"[A-Za-z]{2,3}(_[A-Za-z0-9]+)*", code):
                raise SettingsError("privacy_notices must map language codes (like fr or zh_Hans) to texts")
            if len(notice) > MAX_PRIVACY_NOTICE_CHARS:
                raise SettingsError(f"privacy_notices: the {code} notice must be at most {MAX_PRIVACY_NOTICE_CHARS} characters")
        for name in ("photo_retention_days", "expired_link_grace_days"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be 0 or more")
        for name, most in (
            ("photo_retention_days", MAX_KEPT_DAYS),
            ("expired_link_grace_days", MAX_KEPT_DAYS),
            ("download_link_hours", MAX_KEPT_DAYS * 24),
        ):
            if getattr(self, name) > most:
                raise SettingsError(f"{name} must be at most {most:,}")
        if self.download_count_flush_seconds <= 0:
            raise SettingsError("download_count_flush_seconds must be positive")
        if self.retention_interval_minutes < 1:
            raise SettingsError("retention_interval_minutes must be at least 1")
        if self.unavailable_retry_after_seconds < 1:
            raise SettingsError("unavailable_retry_after_seconds must be at least 1")
        if min(self.kiosk_presence_write_seconds, self.kiosk_presence_read_seconds, self.settings_listen_retry_max_seconds) < 1:
            raise SettingsError(
                "kiosk_presence_write_seconds, kiosk_presence_read_seconds and settings_listen_retry_max_seconds must be at least 1"
            )
        if self.serve_role not in SERVE_ROLES:
            raise SettingsError(f"serve_role must be one of {', '.join(SERVE_ROLES)}, not {self.serve_role!r}")
        if self.serve_role == "web" and not self.uses_postgresql:
            raise SettingsError(
                "serve --role web (serve_role) queues compositions on PostgreSQL for artbooth worker processes: set "
                "database_url to a postgresql:// database (with SQLite, serve --role all composes itself)"
            )
        if min(self.queue_wait_seconds, self.queue_poll_seconds, self.queue_heartbeat_seconds) <= 0:
            raise SettingsError("queue_wait_seconds, queue_poll_seconds and queue_heartbeat_seconds must be positive")
        if self.queue_stalled_seconds <= 2 * self.queue_heartbeat_seconds:
            raise SettingsError("queue_stalled_seconds must be more than twice queue_heartbeat_seconds")
        if self.queue_max_attempts < 1 or self.queue_max_waiting < 1:
            raise SettingsError("queue_max_attempts and queue_max_waiting must be at least 1")
        if self.preview_matte_long_side < 64:
            raise SettingsError("preview_matte_long_side must be at least 64")
        if self.preview_face_interval_s <= 0:
            raise SettingsError("preview_face_interval_s must be positive")
        for name in ("face_min_size_px", "composite_face_min_size_px"):
            if getattr(self, name) < 12:  # MTCNN's smallest window
                raise SettingsError(f"{name} must be at least 12 pixels")
        if not 0.0 < self.preview_alpha_still_weight <= 1.0:
            raise SettingsError(f"preview_alpha_still_weight must be in (0, 1], not {self.preview_alpha_still_weight}")
        if self.preview_alpha_motion_levels <= 0:
            raise SettingsError("preview_alpha_motion_levels must be positive")
        if self.preview_stats_window < 2:
            raise SettingsError("preview_stats_window must be at least 2")
        if self.preview_torch_threads < 1:
            raise SettingsError("preview_torch_threads must be at least 1")
        if self.preview_segmentation_threads < 1:
            raise SettingsError("preview_segmentation_threads must be at least 1")
        if self.preview_colour_interval_s <= 0:
            raise SettingsError("preview_colour_interval_s must be positive")
        for name in (
            "staff_session_idle_minutes",
            "staff_session_hours",
            "login_max_failures",
            "login_max_failures_per_ip",
            "login_failure_window_minutes",
            "login_lockout_minutes",
            "password_hash_time_cost",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        if self.password_hash_memory_mib < 8:
            raise SettingsError("password_hash_memory_mib must be at least 8")
        # Bounded memory and connections.
        if self.max_inflight_upload_bytes < self.max_request_bytes:
            raise SettingsError(
                f"max_inflight_upload_bytes must be at least max_upload_bytes plus {MULTIPART_OVERHEAD_BYTES:,} "
                f"bytes of form overhead ({self.max_request_bytes:,}), or the largest photo could never be sent"
            )
        for name in ("public_requests_per_minute", "public_concurrent_requests", "max_connections_per_address"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        for name in ("request_header_timeout_seconds", "request_body_timeout_seconds", "idle_connection_seconds"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive")

    def _check_photo_store(self) -> None:
        if not self.photo_store:
            given = [name for name in ("s3_endpoint_url", "s3_access_key_id", "s3_secret_access_key") if getattr(self, name)]
            if given:
                raise SettingsError(
                    f"{', '.join(given)} set, but photo_store is empty (photos in local files): "
                    "set photo_store to s3://BUCKET to keep photos in the S3 store"
                )
            return
        bucket, prefix = _split_photo_store(self.photo_store)
        prefix_parts = prefix.split("/")[:-1]
        if (
            not _S3_BUCKET.fullmatch(bucket)
            or ".." in bucket
            or not all(_S3_PREFIX_PART.fullmatch(part) and part not in (".", "..") for part in prefix_parts)
        ):
            raise SettingsError(
                "photo_store must be empty (local files) or s3://BUCKET or s3://BUCKET/PREFIX, the bucket 3-63 "
                "lowercase letters, digits, dots and hyphens, the prefix letters, digits and . _ - / "
                f"(like s3://artbooth-photos/museum-1), not {self.photo_store!r}"
            )
        if self.s3_endpoint_url:
            parts = urllib.parse.urlsplit(self.s3_endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
                raise SettingsError(
                    f"s3_endpoint_url must be the store's http(s) address, like http://127.0.0.1:8333, "
                    f"not {self.s3_endpoint_url!r}"
                )
        if not re.fullmatch(r"[a-z0-9-]{1,32}", self.s3_region):
            raise SettingsError(f"s3_region must be a region name like us-east-1, not {self.s3_region!r}")
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise SettingsError(
                "s3_access_key_id and s3_secret_access_key go together: give both, or neither for the "
                "AWS_* variables or the machine's role"
            )
        if self.s3_timeout_seconds <= 0:
            raise SettingsError("s3_timeout_seconds must be positive")
        if self.readiness_timeout_seconds <= 0:
            raise SettingsError("readiness_timeout_seconds must be positive")

    @property
    def max_request_bytes(self) -> int:
        """The largest request body taken: the largest photo and its multipart form around it."""
        return self.max_upload_bytes + MULTIPART_OVERHEAD_BYTES

    def describe(self) -> dict[str, object]:
        """Settings as plain JSON-friendly values, for `artbooth settings` and logs; passwords masked."""
        values = {
            name: (str(v) if isinstance(v, Path) else v)
            for name in _loadable_fields(type(self))
            for v in [getattr(self, name)]
        }
        if self.database_url:
            from db.engine import masked_url  # db imports settings; only this method needs db

            values["database_url"] = masked_url(self.database_url)
        if self.s3_secret_access_key:
            values["s3_secret_access_key"] = "***"
        return values


# S3 bucket names (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html, the
# rules every S3-compatible store accepts), and the parts of our key prefix.
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_PREFIX_PART = re.compile(r"[A-Za-z0-9._-]+")


def _split_photo_store(value: str) -> tuple[str, str]:
    """``s3://BUCKET/PRE/FIX`` -> ("BUCKET", "PRE/FIX/"); anything else -> ("", "")."""
    if not value.startswith("s3://"):
        return "", ""
    bucket, _, prefix = value.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _loadable_fields(cls: type[Settings]) -> list[str]:
    """The fields a file, the environment or the dashboard can set (not the record of sources)."""
    return [f.name for f in dataclasses.fields(cls) if f.name != "sources"]


def _lan_address() -> str | None:
    """This machine's address on its default route, which phones on the same network can reach."""
    # A UDP connect sends nothing; it only asks the kernel which interface would be used.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or address to listen on) is this machine's loopback only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# A DNS name a certificate can carry: dot-separated labels of letters, digits and inner hyphens.
_DNS_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


def is_certificate_name(name: str) -> bool:
    """Whether ``name`` is an IP address or a DNS name a server certificate can name."""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return _DNS_NAME.fullmatch(name.lower()) is not None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _read_config_file(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    known = set(_loadable_fields(Settings))
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"config file {path} has unknown settings: {', '.join(unknown)}")
    return data


def _coerce(cls: type[Settings], name: str, value: object) -> object:
    hints = typing.get_type_hints(cls)
    target = hints[name]
    optional = type(None) in typing.get_args(target)
    if optional:
        target = next(t for t in typing.get_args(target) if t is not type(None))
        if value in ("", None):
            return None
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true/false, got {value!r}")
        if target is Path:
            return Path(str(value)).expanduser()
        if typing.get_origin(target) is dict:  # a mapping: a TOML table, stored JSON, or JSON in the environment
            return dict(json.loads(value) if isinstance(value, str) else value)
        return target(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name} ({ENV_PREFIX}{name.upper()}): {exc}") from None
