"""More booths than one machine (issue 14): captures per minute and capture-to-answer with the local
compose pool and with the capture queue (1 and 2 `artbooth worker`s), the queue's overhead per job,
and what a serve node costs per booth (the live preview's CPU), all measured in one run.

Real processes on loopback, as a site runs them: a scratch database on a PostgreSQL server
(``--postgres``, dropped afterwards) and SeaweedFS's S3 server (``weed mini``, the venv's binary) as
the photo store, shared by every process. Booths are registered and paired through the real pairing
link; each capture is the booth's own request, POST /api/kiosks/{id}/capture with the paired booth's
cookie, a still, a capture id and the look (``--look``), retried on 503 as kiosk.js does (same capture
id, 2 s apart, 3 tries; the time counts from the first try). Stills: the shared people photos
(../shared/data/people), long side shrunk to 1280 px as a booth camera's still; without them,
skimage's astronaut (said in the output). The artwork is the demo painting the other benches use.

Configurations, one after the other, on the same database and store:
  * baseline: one `artbooth serve` (role all, compose_workers 1) composing in its own worker process;
  * queue, 1 worker: one `artbooth serve --role web` node and one `artbooth worker`;
  * queue, 2 workers: the same node with a second worker started.
Each loads the same way: two captures at once to warm up (not counted), then ``--captures`` N
captures from one booth one after another ("one booth"), then N captures from ``--booths`` K booths at
once, each booth pressing again as soon as it has its answer ("K booths"). Per load: capture-to-answer
p50/p95 (from sending the capture until the answer with the link is read) and captures per minute
(N over the load's wall time); ratios to the baseline under the same load.

Queue overhead per job: for each capture of the "one booth" load, its capture-to-answer minus the
composing time the pool or worker itself reports for it (the sum of report["timings_ms"], stored with
the photo); the median over the load. That difference is everything that is not the pipeline: the
upload, storing the photo, its link, and for the queue the still written to the store, the job
recorded and queued, a worker taking it, reading the still, NOTIFY and the node reading the result.
Overhead = median(queue, 1 worker) - median(baseline); target <= 50 ms. For the queue the job's
timestamps (database clock) split it: waiting for a worker (started - queued), the worker's run
outside composing (finished - started - composing), and the node's part (answer - (finished - queued)).

Node cost per booth: the live preview measured by bench/preview.py's own code (its fake camera,
Chromium through Playwright, its measure()) against the queue's web node, with both workers idle: the
node's CPU (utime + stime from /proc, the node process and its children) while one booth streams,
minus the same node's CPU idle, in % of one core. ``--preview-seconds 0`` skips it.

    .venv/bin/python bench/scale.py [--captures N] [--booths K] [--look realistic|painted]
                                    [--postgres URL] [--preview-seconds S] [--json OUT]

Default captures keep the whole run within about 6 minutes on 2 cores. On 2 cores two workers
compete with each other and with the node (and the bench, and the browser): expect no gain from the
second worker there, maybe a loss; the figures are for the overhead and for sizing, the gain from
workers shows only with a core per worker. The machine's load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import cv2
import numpy as np
from yarl import URL

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The tests' helpers: the site's processes, its S3 store and database, booths paired as staff pair them.
sys.path.insert(0, str(ROOT / "tests"))

from bench.serving import cpu_seconds  # noqa: E402
from booth_helpers import booth_client, pair, pairing_link_at  # noqa: E402
from databases import POSTGRES_ENV, scratch_postgres_database  # noqa: E402
from processes import Process, start_artbooth, stop, until_logged  # noqa: E402
from seaweed import seaweedfs_server  # noqa: E402

PEOPLE_DIR = ROOT.parent / "shared" / "data" / "people"
DEFAULT_POSTGRES = "postgresql://artbooth:artbooth@127.0.0.1:5432/postgres"
ARTWORK_ID = "demo-golden-meadow"
BUCKET = "bench-photos"
DEFAULT_CAPTURES = 10  # about 4 minutes in all on 2 cores
DEFAULT_BOOTHS = 3
WARM_UP_CAPTURES = 2
STILL_LONG_SIDE = 1280
START_S = 300  # a worker loading and warming its models while another does, on a busy 2-core machine
CAPTURE_S = 180
# As kiosk.js (postCapture): a busy answer (503) is asked again with the same capture id.
CAPTURE_TRIES = 3
CAPTURE_RETRY_S = 2.0
OVERHEAD_TARGET_MS = 50.0
IDLE_WINDOW_S = 3.0


# ---- the site's database ----------------------------------------------------------------


async def scratch_database(stack: contextlib.AsyncExitStack, server_url: str) -> str:
    """A fresh database on the PostgreSQL server (tests/databases.py), dropped when ``stack`` closes;
    without a server or a role allowed to create one, the bench says what it needs and exits."""
    from sqlalchemy.engine import make_url

    from db.engine import database_url

    try:
        return await stack.enter_async_context(scratch_postgres_database(server_url))
    except Exception as exc:
        server = make_url(database_url(Path("."), server_url)).render_as_string(hide_password=True)
        raise SystemExit(
            f"could not create a scratch database on {server} ({exc}); "
            f"this bench needs a PostgreSQL server and a role allowed to CREATE DATABASE (--postgres, {POSTGRES_ENV})"
        ) from exc


# ---- booths and captures ------------------------------------------------------------------


def stills() -> tuple[list[bytes], str]:
    """JPEG stills of people, long side at most STILL_LONG_SIDE; and where they came from."""
    paths = sorted(p for p in PEOPLE_DIR.glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"}) if PEOPLE_DIR.is_dir() else []
    if paths:
        images = [cv2.imread(str(path), cv2.IMREAD_COLOR) for path in paths]
        source = f"{len(paths)} people photos from {PEOPLE_DIR}"
    else:
        import skimage.data

        images = [cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)]
        source = f"skimage.data.astronaut() (NOTE: {PEOPLE_DIR} is missing; one photo only)"
    encoded = []
    for image in images:
        scale = min(1.0, STILL_LONG_SIDE / max(image.shape[:2]))
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        assert ok
        encoded.append(data.tobytes())
    return encoded, source


@dataclass
class Capture:
    answer_ms: float
    status: int
    busy_answers: int  # 503s asked again, as kiosk.js does
    photo_id: str | None
    error: str | None = None


async def capture(client: aiohttp.ClientSession, base: str, kiosk_id: str, photo: bytes, look: str) -> Capture:
    capture_id, busy = uuid.uuid4().hex, 0
    started = time.perf_counter()
    for attempt in range(1, CAPTURE_TRIES + 1):
        form = aiohttp.FormData()
        form.add_field("artwork", ARTWORK_ID)
        form.add_field("look", look)
        form.add_field("capture_id", capture_id)
        form.add_field("photo", photo, filename="still.jpg", content_type="image/jpeg")
        async with client.post(f"{base}/api/kiosks/{kiosk_id}/capture", data=form, timeout=aiohttp.ClientTimeout(total=CAPTURE_S)) as response:
            body = await response.json()
            status = response.status
        if status != 503 or attempt == CAPTURE_TRIES:
            break
        busy += 1
        await asyncio.sleep(CAPTURE_RETRY_S)
    elapsed = (time.perf_counter() - started) * 1000
    if status != 200:
        return Capture(elapsed, status, busy, None, str(body.get("error") or body)[:200])
    return Capture(elapsed, status, busy, body["photo_id"])


@dataclass
class Load:
    name: str
    captures: list[Capture]
    wall_s: float
    composing_ms: dict[str, float] = field(default_factory=dict)  # photo id -> sum of report["timings_ms"]
    job_times: dict[str, tuple[float, float]] = field(default_factory=dict)  # photo id -> (queued->started, started->finished) ms

    @property
    def ok(self) -> list[Capture]:
        return [c for c in self.captures if c.status == 200]

    def answer_percentile(self, q: float) -> float:
        values = [c.answer_ms for c in self.ok]
        return float(np.percentile(values, q)) if values else float("nan")

    @property
    def per_minute(self) -> float:
        return 60 * len(self.ok) / self.wall_s

    def overheads(self) -> list[float]:
        return [c.answer_ms - self.composing_ms[c.photo_id] for c in self.ok if c.photo_id in self.composing_ms]


async def run_load(name: str, booths: list[tuple[str, aiohttp.ClientSession]], base: str, photos: list[bytes], count: int, look: str) -> Load:
    """``count`` captures shared among ``booths``, all pressing at once, each again as soon as it has its answer."""
    shares = [list(range(i, count, len(booths))) for i in range(len(booths))]

    async def booth_presses(kiosk_id: str, client: aiohttp.ClientSession, numbers: list[int]) -> list[Capture]:
        return [await capture(client, base, kiosk_id, photos[n % len(photos)], look) for n in numbers]

    started = time.monotonic()
    results = await asyncio.gather(*(booth_presses(k, c, s) for (k, c), s in zip(booths, shares)))
    return Load(name, [c for result in results for c in result], time.monotonic() - started)


async def add_reports(sessions, load: Load) -> None:
    """The composing time each photo's pool or worker reported, and for queued ones the job's times."""
    from sqlalchemy import select

    from db.models import CaptureJobRow, PhotoRow

    ids = [c.photo_id for c in load.ok]
    async with sessions() as session:
        # A photo's timings are its report["timings_ms"] (db/service.py stores them so).
        for photo_id, timings in (await session.execute(select(PhotoRow.id, PhotoRow.timings).where(PhotoRow.id.in_(ids)))).all():
            if timings:
                load.composing_ms[photo_id] = float(sum(timings.values()))
        jobs = select(CaptureJobRow.id, CaptureJobRow.queued_at, CaptureJobRow.started_at, CaptureJobRow.finished_at)
        for job_id, queued, started, finished in (await session.execute(jobs.where(CaptureJobRow.id.in_(ids)))).all():
            if started is not None and finished is not None:
                load.job_times[job_id] = (
                    (started - queued).total_seconds() * 1000,
                    (finished - started).total_seconds() * 1000,
                )


@dataclass
class Config:
    name: str
    loads: dict[str, Load]


async def measure_config(name: str, sessions, base: str, photos: list[bytes], args) -> Config:
    """The warm-up, then the one-booth and the K-booths loads against the node at ``base``."""
    tag = re.sub(r"\W+", "-", name).strip("-")
    booths: list[tuple[str, aiohttp.ClientSession]] = []
    try:
        for n in range(max(args.booths, WARM_UP_CAPTURES)):
            kiosk_id, client = f"scale-{tag}-{n}", booth_client()
            booths.append((kiosk_id, client))
            # The booth's screen, paired through the real pairing link as staff pair one.
            await pair(client, await pairing_link_at(sessions, URL(base), kiosk_id, name=kiosk_id))
        warm = await run_load("warm-up", booths[:WARM_UP_CAPTURES], base, photos, WARM_UP_CAPTURES, args.look)
        sequential = await run_load("one booth", booths[:1], base, photos, args.captures, args.look)
        together = await run_load(f"{args.booths} booths", booths[: args.booths], base, photos, args.captures, args.look)
    finally:
        for _, client in booths:
            await client.close()
    loads = {"warm-up": warm, "one booth": sequential, "at once": together}
    for load in loads.values():
        await add_reports(sessions, load)
        for failed in (c for c in load.captures if c.status != 200):
            print(f"  {name}, {load.name}: a capture answered {failed.status}: {failed.error}", file=sys.stderr)
    print(f"  measured {name}: one booth p50 {sequential.answer_percentile(50):.0f} ms, "
          f"{args.booths} booths {together.per_minute:.1f}/min", file=sys.stderr)
    return Config(name, loads)


# ---- the node's cost per booth (bench/preview.py's measurement) ---------------------------


async def preview_cost(sessions, base: str, node: Process, seconds: float, scratch: Path) -> dict:
    """bench/preview.py's live-preview measurement (its fake camera, page probe and measure()) against
    this node; plus the node's CPU idle just before, so the booth's own share can be told."""
    from playwright.async_api import async_playwright

    from bench import preview

    # bench/preview.py pairs its booth in the browser, with the pairing link's code.
    pairing_code = URL(await pairing_link_at(sessions, URL(base), preview.KIOSK_ID, name="Bench")).query["code"]
    camera = preview.write_y4m(scratch / "camera.y4m", preview.camera_frames(), fps=preview.CAMERA_FPS)
    node_pids = preview.descendants(node.process.pid)
    before, started = cpu_seconds(node_pids), time.monotonic()
    await asyncio.sleep(IDLE_WINDOW_S)
    idle_pct = 100 * (cpu_seconds(node_pids) - before) / (time.monotonic() - started)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=preview.CHROMIUM, args=[*preview.CHROMIUM_ARGS, *preview.fake_camera_args(camera)]
        )
        try:
            result = await preview.measure("node", browser, base, node.process, seconds, False, pairing_code)
        finally:
            await browser.close()
    result["node_idle_cpu_pct"] = idle_pct
    return result


# ---- the run ------------------------------------------------------------------------------


async def run(args) -> dict:
    from db.engine import create_engine, create_session_factory, database_url
    from aiohttp.test_utils import unused_port

    photos, photo_source = stills()
    results: dict = {"photos": photo_source}
    with tempfile.TemporaryDirectory(prefix="artbooth-scale-bench-") as scratch_name:
        scratch = Path(scratch_name)
        async with contextlib.AsyncExitStack() as stack:
            url = await scratch_database(stack, args.postgres)
            seaweedfs = stack.enter_context(seaweedfs_server(scratch / "seaweedfs"))
            shared = os.environ | seaweedfs.environ(f"s3://{BUCKET}") | {
                "ARTBOOTH_DATABASE_URL": url,
                "ARTBOOTH_HOST": "127.0.0.1",
                "ARTBOOTH_COMPOSE_WORKERS": "1",
            }
            engine = create_engine(database_url(scratch, url))
            sessions = create_session_factory(engine)
            processes: list[Process] = []

            def node(name: str, role: str) -> tuple[Process, str]:
                port = unused_port()
                base = f"http://127.0.0.1:{port}"
                environ = shared | {
                    "ARTBOOTH_DATA_DIR": str(scratch / name), "ARTBOOTH_PORT": str(port), "ARTBOOTH_PUBLIC_URL": base,
                    "ARTBOOTH_NODE_NAME": name,
                }
                process = start_artbooth(name, ["serve", "--role", role], environ, scratch / name)
                processes.append(process)
                return process, base

            def worker(name: str) -> Process:
                environ = shared | {"ARTBOOTH_DATA_DIR": str(scratch / name), "ARTBOOTH_WORKER_NAME": name}
                process = start_artbooth(name, ["worker"], environ, scratch / name)
                processes.append(process)
                return process

            configs: list[Config] = []
            try:
                started = time.monotonic()
                baseline, base = node("baseline", "all")
                await until_logged(baseline, "serving on", START_S)
                results["baseline_start_s"] = time.monotonic() - started
                configs.append(await measure_config("local pool (baseline)", sessions, base, photos, args))
                stop([baseline])

                started = time.monotonic()
                web, base = node("web-1", "web")
                first = worker("worker-1")
                await until_logged(web, "serving on", START_S)
                await until_logged(first, "ready", START_S)
                results["queue_start_s"] = time.monotonic() - started
                configs.append(await measure_config("queue, 1 worker", sessions, base, photos, args))

                second = worker("worker-2")
                await until_logged(second, "ready", START_S)
                configs.append(await measure_config("queue, 2 workers", sessions, base, photos, args))

                if args.preview_seconds > 0:
                    results["preview"] = await preview_cost(sessions, base, web, args.preview_seconds, scratch)
            except BaseException:
                for process in processes:
                    print(process.tail(), file=sys.stderr)
                raise
            finally:
                stop(processes)
                await engine.dispose()
    results["configs"] = configs
    return results


# ---- the report ---------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base and np.isfinite(base) and np.isfinite(value) else "-"


def report(results: dict, args) -> dict:
    configs: list[Config] = results["configs"]
    baseline = configs[0]
    print()
    print(f"capture to answer, artwork {ARTWORK_ID}, {args.look} look, stills: {results['photos']}")
    print(f"N = {args.captures} captures per load (after {WARM_UP_CAPTURES} warm-up captures at once, not counted); "
          f"PostgreSQL + SeaweedFS S3 photo store in every configuration")
    header = f"{'configuration':<24}{'load':<11}{'ok':>6}{'503s':>6}{'p50 ms':>9}{'p95 ms':>9}{'per min':>9}{'p50 vs base':>13}{'per min vs base':>17}"
    print(header)
    print("-" * len(header))
    summary: dict = {"configs": {}}
    for config in configs:
        summary["configs"][config.name] = {}
        for key in ("one booth", "at once"):
            load, base_load = config.loads[key], baseline.loads[key]
            p50, p95 = load.answer_percentile(50), load.answer_percentile(95)
            print(
                f"{config.name:<24}{load.name:<11}{f'{len(load.ok)}/{len(load.captures)}':>6}{sum(c.busy_answers for c in load.captures):>6}"
                f"{p50:>9.0f}{p95:>9.0f}{load.per_minute:>9.1f}"
                f"{ratio(p50, base_load.answer_percentile(50)):>13}{ratio(load.per_minute, base_load.per_minute):>17}"
            )
            summary["configs"][config.name][key] = {
                "ok": len(load.ok), "captures": len(load.captures), "busy_answers": sum(c.busy_answers for c in load.captures),
                "p50_ms": p50, "p95_ms": p95, "per_minute": load.per_minute, "wall_s": load.wall_s,
                "answer_ms": [c.answer_ms for c in load.captures],
                "composing_ms": [load.composing_ms.get(c.photo_id) for c in load.captures],
            }
    print("(503s: busy answers asked again 2 s later with the same capture id, as kiosk.js does, the time counting from the\n"
          " first try; a capture still refused at its third try is not ok, and its time is left out of p50/p95 and per min)")

    print()
    print("overhead per job: capture-to-answer minus the composing the pool/worker reports (sum of report['timings_ms']),")
    print("median over the one-booth load")
    header = f"{'configuration':<24}{'answer p50':>11}{'composing p50':>15}{'overhead p50':>14}{'vs local pool':>15}"
    print(header)
    print("-" * len(header))
    base_overhead = median(baseline.loads["one booth"].overheads())
    for config in configs:
        load = config.loads["one booth"]
        overhead = median(load.overheads())
        composing = median([load.composing_ms[c.photo_id] for c in load.ok if c.photo_id in load.composing_ms])
        extra = "" if config is baseline else f"{overhead - base_overhead:+.0f} ms"
        print(f"{config.name:<24}{load.answer_percentile(50):>9.0f}ms{composing:>13.0f}ms{overhead:>12.0f}ms{extra:>15}")
        summary["configs"][config.name]["overhead_ms"] = overhead
        summary["configs"][config.name]["composing_p50_ms"] = composing
    queue_overhead = median(configs[1].loads["one booth"].overheads()) - base_overhead
    verdict = "met" if queue_overhead <= OVERHEAD_TARGET_MS else "MISSED"
    print(f"queue overhead per job against the local pool (1 worker, one booth): {queue_overhead:+.0f} ms median; "
          f"target <= {OVERHEAD_TARGET_MS:.0f} ms: {verdict}")
    summary["queue_overhead_ms"] = queue_overhead
    for config in configs[1:]:
        load = config.loads["one booth"]
        rows = [
            (c.answer_ms, load.composing_ms[c.photo_id], *load.job_times[c.photo_id])
            for c in load.ok if c.photo_id in load.job_times and c.photo_id in load.composing_ms
        ]
        if rows:
            waiting = median([r[2] for r in rows])
            worker_rest = median([r[3] - r[1] for r in rows])
            node_part = median([r[0] - r[2] - r[3] for r in rows])
            print(f"  {config.name}, where it goes (medians; job times by the database clock): waiting for a worker "
                  f"{waiting:.0f} ms, worker outside composing {worker_rest:.0f} ms, node outside the job {node_part:.0f} ms")
            summary["configs"][config.name]["overhead_split_ms"] = {
                "waiting_for_worker": waiting, "worker_outside_composing": worker_rest, "node_outside_job": node_part
            }

    print()
    preview = results.get("preview")
    if preview is not None:
        per_booth = preview["server_cpu_pct"] - preview["node_idle_cpu_pct"]
        print(f"what a node costs per booth: one live preview (bench/preview.py's fake camera and measure(), "
              f"{preview['window_s']:.0f} s) on the queue's web node")
        header = f"{'':<42}{'value':>10}"
        print(header)
        print("-" * len(header))
        for label, value, fmt in (
            ("node CPU idle, % of a core", preview["node_idle_cpu_pct"], "{:.0f}"),
            ("node CPU with one booth previewing, %", preview["server_cpu_pct"], "{:.0f}"),
            ("one booth's preview, % of a core", per_booth, "{:.0f}"),
            ("received fps", preview["fps"], "{:.1f}"),
            ("delay p95 ms", preview["delay_p95_ms"], "{:.0f}"),
            ("browser CPU (not the node), % of a core", preview["browser_cpu_pct"], "{:.0f}"),
            ("others' CPU on the machine, % of a core", preview["other_cpu_pct"], "{:.0f}"),
        ):
            print(f"{label:<42}{fmt.format(value):>10}")
        if per_booth > 0:
            composing = median(list(configs[1].loads["one booth"].composing_ms.values()))
            print(f"sizing: about {100 / per_booth:.1f} previewing booths per core of a web node; captures are composed on "
                  f"the workers (about {composing:.0f} ms of a worker's core each, one booth at a time, here)")
        summary["preview"] = {key: preview[key] for key in ("server_cpu_pct", "node_idle_cpu_pct", "fps", "delay_p95_ms", "browser_cpu_pct", "other_cpu_pct")}
        summary["preview"]["per_booth_cpu_pct"] = per_booth
    else:
        print("what a node costs per booth: not measured (--preview-seconds 0); bench/preview.py measures it")

    print()
    cores = os.cpu_count()
    print(f"machine: {cores} cores, load average {os.getloadavg()[0]:.1f} at the end; starts: baseline node "
          f"{results['baseline_start_s']:.0f} s, web node + first worker {results['queue_start_s']:.0f} s")
    gain = configs[2].loads["at once"].per_minute / configs[1].loads["at once"].per_minute
    print(f"second worker, {args.booths} booths at once: {gain:.2f}x the captures per minute of one worker on this machine.")
    if cores is not None and cores <= 2:
        print(f"what {cores} cores allow: two workers compete with each other, with the node, PostgreSQL, SeaweedFS and this "
              "bench for the same cores, so expect no real gain from the second worker here, maybe a loss; whatever it "
              "gains is the idle time one worker leaves between and inside its jobs (I/O, single-threaded stages), not a "
              "second core. Workers scale captures per minute only with a free core per worker (more cores, or other machines).")
    summary["cores"], summary["load_average"] = cores, os.getloadavg()[0]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captures", type=int, default=DEFAULT_CAPTURES, help="captures per load (default %(default)s)")
    parser.add_argument("--booths", type=int, default=DEFAULT_BOOTHS, help="booths pressing at once (default %(default)s)")
    parser.add_argument("--look", choices=["realistic", "painted"], default="realistic")
    parser.add_argument("--postgres", default=os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES,
                        help=f"a PostgreSQL server URL whose role may CREATE DATABASE (default: {POSTGRES_ENV} or {DEFAULT_POSTGRES})")
    parser.add_argument("--preview-seconds", type=float, default=8.0, help="live-preview window; 0 skips it")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.captures < 1 or args.booths < 1:
        parser.error("--captures and --booths are at least 1")
    results = asyncio.run(run(args))
    summary = report(results, args)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=float))


if __name__ == "__main__":
    main()
