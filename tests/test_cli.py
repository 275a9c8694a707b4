"""`artbooth` as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from cli_helpers import run
from imagefiles import decode_qr, encoded, with_exif_orientation
from kiosk.artworks import ArtworkLibrary
from kiosk.capture_queue import QueueUnavailableError
from kiosk.catalogue import ArtworkCatalogue
from kiosk.errors import ExitCode
from kiosk.queue_worker import run_worker
from kiosk.settings import Settings
from kiosk.storage import Storage

# The matte's edge-band solve (on by default) loads pymatting's numba kernel in every process and
# solves each photo's band again: a second or more a compose. One compose here runs on the defaults;
# the others are about the command's inputs, outputs and store, and leave it out as the suite's
# servers do (tests/servers.py). The solve has its own tests through the real pipeline
# (tests/test_matting_edges.py, tests/test_cutout.py).
WITHOUT_BAND_SOLVE = {"ARTBOOTH_MATTING_BAND_SOLVE": "false"}


@pytest.fixture
def env(env):
    """conftest's environment for the command, without the edge-band solve."""
    return env | WITHOUT_BAND_SOLVE


def on_the_defaults(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name not in WITHOUT_BAND_SOLVE}


@pytest.fixture
def write(tmp_path):
    def write_file(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write_file


def test_compose_json_reports_people_framing_faces_timings_and_output(env, write, astronaut, tmp_path):
    photo = write("astronaut.jpg", encoded(astronaut, quality=95))
    out = tmp_path / "result.jpg"
    done = run(["compose", str(photo), "--artwork", "demo-golden-meadow", "-o", str(out), "--json"], on_the_defaults(env))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["people"] == 1
    assert report["framing"] == "half-body"
    assert report["output"] == str(out)
    [face] = report["faces"]
    x0, y0, x1, y1 = face["box"]
    assert 150 < x0 < x1 < 320 and 20 < y0 < y1 < 230 and face["p"] > 0.95
    assert {"decode", "segmentation", "foreground", "placement", "encode"} <= set(report["timings_ms"])
    assert set(report["timings_beside_ms"]) == {"faces"}  # found beside the matting
    assert report["faces_restored"] == 0  # the meadow's colour leaves her face its own
    assert Image.open(out).size == (1920, 1080)


def test_compose_applies_exif_rotation(env, write, astronaut, tmp_path):
    stored = np.ascontiguousarray(np.rot90(astronaut, 1))
    photo = write("phone.jpg", with_exif_orientation(stored, 6))
    out = tmp_path / "result.png"
    done = run(["compose", str(photo), "--artwork", "demo-velvet-studio", "-o", str(out), "--json"], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["framing"] == "half-body"  # sideways, the face would be far too wide for its silhouette
    x0, y0, x1, y1 = report["faces"][0]["box"]
    assert x1 - x0 < 1.2 * (y1 - y0) and y0 < 230, "the face is upright, near the top"
    assert Image.open(out).size == (1080, 1350)


@pytest.mark.parametrize(
    ("make_photo", "code", "message"),
    [
        (lambda a: b"", ExitCode.EMPTY_FILE, "the file is empty"),
        (lambda a: b"%PDF-1.4 not a photo at all" * 10, ExitCode.NOT_AN_IMAGE, "the file is not an image"),
        (lambda a: encoded(a)[:20_000], ExitCode.TRUNCATED_IMAGE, "truncated"),
        (lambda a: encoded(skimage.data.coffee()), ExitCode.NO_PERSON, "no person found"),
    ],
    ids=["zero-bytes", "not-an-image", "truncated", "no-person"],
)
def test_bad_photos_get_one_clear_line_and_their_exit_code(
    env, write, astronaut, tmp_path, make_photo, code, message
):
    photo = write("photo.jpg", make_photo(astronaut))
    out = tmp_path / "result.jpg"
    done = run(["compose", str(photo), "--artwork", "demo-golden-meadow", "-o", str(out)], env)
    assert done.returncode == code
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("artbooth: error:"), done.stderr
    assert not out.exists()


def test_photo_over_the_pixel_limit_is_refused(env, write, astronaut, tmp_path):
    photo = write("big.png", encoded(astronaut, "PNG"))
    done = run(
        ["compose", str(photo), "--artwork", "demo-golden-meadow", "-o", str(tmp_path / "r.jpg")],
        env | {"ARTBOOTH_MAX_IMAGE_PIXELS": "200000"},
    )
    assert done.returncode == ExitCode.IMAGE_TOO_LARGE
    assert "512x512 = 262,144 pixels, over the limit of 200,000" in done.stderr


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: encoded(Image.fromarray(a).convert("L"), "PNG"),
        lambda a: encoded(np.dstack([a, np.full(a.shape[:2], 255, np.uint8)]), "PNG"),
        lambda a: encoded(Image.fromarray(a).convert("CMYK"), "JPEG", quality=95),
        lambda a: encoded(
            Image.fromarray((np.asarray(Image.fromarray(a).convert("L")).astype(np.uint16) * 257)), "PNG"
        ),
    ],
    ids=["grayscale", "rgba", "cmyk", "16-bit"],
)
def test_unusual_photo_formats_are_converted_and_composed(env, write, astronaut, tmp_path, convert):
    photo = write("photo.img", convert(astronaut))
    done = run(
        ["compose", str(photo), "--artwork", "demo-golden-meadow", "-o", str(tmp_path / "r.jpg"), "--json"],
        env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["people"] == 1


def test_missing_photo_unknown_artwork_and_bad_output_suffix(env, write, astronaut, tmp_path):
    missing = run(
        [
            "compose",
            str(tmp_path / "nope.jpg"),
            "--artwork",
            "demo-golden-meadow",
            "-o",
            str(tmp_path / "r.jpg"),
        ],
        env,
    )
    assert missing.returncode == ExitCode.INPUT_NOT_FOUND and "no such file" in missing.stderr

    photo = write("a.jpg", encoded(astronaut))
    unknown = run(["compose", str(photo), "--artwork", "mona-lisa", "-o", str(tmp_path / "r.jpg")], env)
    assert unknown.returncode == ExitCode.ARTWORK_NOT_FOUND
    assert "no artwork 'mona-lisa'" in unknown.stderr and "demo-golden-meadow" in unknown.stderr

    gif = run(["compose", str(photo), "--artwork", "demo-golden-meadow", "-o", str(tmp_path / "r.gif")], env)
    assert gif.returncode == ExitCode.USAGE and "must end in" in gif.stderr


def test_missing_models_name_the_command_that_fixes_it(env, write, astronaut, tmp_path):
    photo = write("a.jpg", encoded(astronaut))
    done = run(
        ["compose", str(photo), "--artwork", "demo-golden-meadow", "-o", str(tmp_path / "r.jpg")],
        env | {"ARTBOOTH_MODELS_DIR": str(tmp_path / "no-models")},
    )
    assert done.returncode == ExitCode.MODEL_MISSING
    assert "artbooth models fetch" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_artworks_list_json_describes_the_demo_gallery(env):
    done = run(["artworks", "list", "--json"], env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    demos = [row for row in rows if row["demo"]]
    assert len(demos) >= 3
    for row in demos:
        assert {"id", "title", "artist", "width", "height"} <= set(row)
        assert row["title"].startswith("Demo:") and "demo" in row["artist"]
    assert {"demo-golden-meadow": (1920, 1080)}.items() <= {
        r["id"]: (r["width"], r["height"]) for r in rows
    }.items()


def test_folder_artwork_with_sidecar_is_listed_and_composable(env, settings, write, astronaut, tmp_path):
    folder = settings.data_dir / "artworks"
    folder.mkdir(parents=True)
    (folder / "blue-room.png").write_bytes(encoded(np.full((600, 800, 3), (40, 60, 140), np.uint8), "PNG"))
    (folder / "blue-room.json").write_text(
        json.dumps(
            {
                "title": "The Blue Room",
                "artist": "A. Painter",
                "year": "1901",
                "boxes": {
                    "close-up": [0.3, 0.3, 0.7, 1.0],
                    "half-body": [0.2, 0.3, 0.8, 1.0],
                    "full-body": [0.4, 0.2, 0.6, 0.9],
                },
            }
        )
    )
    (folder / "broken.png").write_bytes(encoded(np.zeros((10, 10, 3), np.uint8), "PNG"))
    (folder / "broken.json").write_text('{"title": "Broken", "boxes": {"half-body": [0.5, 0.5, 0.2, 0.2]}}')

    rows = json.loads(run(["artworks", "list", "--json"], env).stdout)
    assert rows[0]["id"] == "blue-room" and rows[0]["width"] == 800 and not rows[0]["demo"]
    assert "broken" not in {row["id"] for row in rows}

    photo = write("a.jpg", encoded(astronaut))
    by_path = run(
        ["compose", str(photo), "--artwork", str(folder / "blue-room.png"), "-o", str(tmp_path / "r.jpg")],
        env,
    )
    assert by_path.returncode == 0, by_path.stderr
    broken = run(["compose", str(photo), "--artwork", "broken", "-o", str(tmp_path / "r.jpg")], env)
    assert broken.returncode == ExitCode.ARTWORK_NOT_FOUND and "box" in broken.stderr


def test_models_verify_and_list(env):
    verify = run(["models", "verify", "--json"], env)
    assert verify.returncode == 0, verify.stderr
    states = {row["name"]: row["state"] for row in json.loads(verify.stdout)}
    assert states and set(states.values()) == {"ok"}
    assert {"modnet.onnx", "selfie_segmentation.tflite", "pnet.pt", "rnet.pt", "onet.pt"} <= set(states)


def _database_rows(settings, table: str) -> int:
    with sqlite3.connect(settings.data_dir / "artbooth.db") as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _stored_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_compose_save_prints_the_download_link_and_its_qr_code(env, settings, write, astronaut, tmp_path):
    photo = write("a.jpg", encoded(astronaut))
    public = env | {"ARTBOOTH_PUBLIC_URL": "http://192.168.1.20:8080"}
    done = run(["compose", str(photo), "--artwork", "demo-golden-meadow", "-o", str(tmp_path / "r.jpg"), "--save"], public)
    assert done.returncode == 0, done.stderr
    url = re.search(r"download: (http://192\.168\.1\.20:8080/p/[A-Za-z0-9_-]{32}) \(until ", done.stdout).group(1)
    # The terminal QR code, drawn in half blocks, scans back to the same URL.
    rows = [line for line in done.stdout.splitlines() if line and set(line) <= set("█▀▄\xa0")]
    assert len(rows) > 10
    assert _decode_terminal_qr(rows) == url
    assert done.stderr == ""  # the public URL is a LAN address: no warning

    as_json = run(
        ["compose", str(photo), "--artwork", "demo-golden-meadow", "-o", str(tmp_path / "r.jpg"), "--save", "--json"],
        env,
    )
    report = json.loads(as_json.stdout)
    assert re.fullmatch(r"[0-9a-f]{32}", report["photo_id"])
    assert re.fullmatch(r"http://localhost:8080/p/[A-Za-z0-9_-]{32}", report["download_url"])
    assert "phones cannot open" in as_json.stderr  # localhost links are flagged
    assert _database_rows(settings, "photos") == 2
    assert len(_stored_files(settings.data_dir / "photos")) == 4  # two results and their thumbnails


def _decode_terminal_qr(rows: list[str]) -> str:
    # Each character holds two modules, top and bottom; the code is printed light-on-dark (inverted).
    top = {"█": 1, "▀": 1, "▄": 0, "\xa0": 0}
    bottom = {"█": 1, "▀": 0, "▄": 1, "\xa0": 0}
    light = np.array([[m[c] for c in row] for row in rows for m in (top, bottom)], np.uint8)
    image = cv2.resize(np.where(light == 1, 255, 0).astype(np.uint8), None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)
    return decode_qr(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))


def test_compose_save_refuses_an_artwork_given_as_a_file(env, settings, write, astronaut, tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "grey.png").write_bytes(encoded(np.full((300, 400, 3), 128, np.uint8), "PNG"))
    (folder / "grey.json").write_text(json.dumps({"boxes": {"half-body": [0.2, 0.2, 0.8, 1.0]}}))
    photo = write("a.jpg", encoded(astronaut))
    done = run(["compose", str(photo), "--artwork", str(folder / "grey.png"), "-o", str(tmp_path / "r.jpg"), "--save"], env)
    assert done.returncode == ExitCode.USAGE and "--save needs an artwork from the gallery" in done.stderr


def test_a_failing_photo_store_saves_nothing_and_says_so(env, settings, write, astronaut, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the photo folder should be")
    photo = write("a.jpg", encoded(astronaut))
    done = run(
        ["compose", str(photo), "--artwork", "demo-golden-meadow", "-o", str(tmp_path / "r.jpg"), "--save"],
        env | {"ARTBOOTH_PHOTOS_DIR": str(blocker / "photos")},
    )
    assert done.returncode == ExitCode.STORAGE_FAILED, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("artbooth: error: could not store the photo")
    assert "nothing was saved" in done.stderr
    assert _database_rows(settings, "photos") == 0 and _database_rows(settings, "download_links") == 0


async def _store_photos(settings, photo: bytes, count: int) -> None:
    """``count`` photos stored as `compose --save` and the service store them (without composing:
    test_compose_save_prints_the_download_link_and_its_qr_code composes and saves)."""
    storage = await Storage.open(settings)
    try:
        await ArtworkCatalogue(storage, ArtworkLibrary(settings)).sync()  # as the command does first
        report = {"framing": "half-body", "people": 1, "timings_ms": {"faces": 10.0}, "score": 0.5}
        for _ in range(count):
            await storage.save(photo, report, artwork_id="demo-golden-meadow")
    finally:
        await storage.close()


async def test_retention_run_deletes_photos_past_the_retention_period_and_reports_counts(env, settings, astronaut):
    await _store_photos(settings, encoded(astronaut), 2)
    assert len(_stored_files(settings.data_dir / "photos")) == 4
    nothing = run(["retention", "run", "--json"], env)
    assert nothing.returncode == 0 and json.loads(nothing.stdout)["photos_deleted"] == 0
    with sqlite3.connect(settings.data_dir / "artbooth.db") as db:
        old = (datetime.now(timezone.utc) - timedelta(days=31)).replace(tzinfo=None).isoformat(" ")
        db.execute("UPDATE photos SET created_at = ? WHERE rowid = (SELECT min(rowid) FROM photos)", (old,))
    done = run(["retention", "run"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 1 photos, 0 expired links and 0 orphaned files")
    assert _database_rows(settings, "photos") == 1
    assert len(_stored_files(settings.data_dir / "photos")) == 2


def test_the_queue_roles_refuse_sqlite_in_one_line_naming_the_fix(env):
    # serve --role web and worker share compositions through PostgreSQL; the embedded SQLite is one machine's.
    failed = run(["serve", "--role", "web"], env)
    assert failed.returncode == ExitCode.BAD_SETTINGS, failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("artbooth: error: ") and "database_url" in last and "postgresql://" in last, last
    assert "Traceback" not in failed.stderr
    # The worker likewise, before it loads anything (the command line prints its message as above).
    with pytest.raises(QueueUnavailableError, match="postgresql://") as refused:
        asyncio.run(run_worker(Settings.load(environ=env)))
    assert refused.value.exit_code == ExitCode.BAD_SETTINGS


def test_db_upgrade_then_an_unreachable_database_is_one_clear_line(env, settings):
    done = run(["db", "upgrade"], env)
    assert done.returncode == 0 and "is up to date" in done.stdout
    assert _database_rows(settings, "alembic_version") == 1
    unreachable = env | {"ARTBOOTH_DATABASE_URL": "postgresql://booth:s3cret@127.0.0.1:1/artbooth"}
    for args in (["db", "upgrade"], ["serve"], ["retention", "run"]):
        failed = run(args, unreachable)
        assert failed.returncode == ExitCode.DATABASE_UNAVAILABLE, (args, failed.stderr)
        last = failed.stderr.strip().splitlines()[-1]
        assert last.startswith("artbooth: error: cannot use the database postgresql+asyncpg://booth:***@127.0.0.1:1/artbooth")
        assert "s3cret" not in failed.stderr and "Traceback" not in failed.stderr
