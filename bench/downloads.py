"""Photo downloads under load: 50 phones fetching 1 MB photos from a running `artbooth serve`.

The service runs as its own process (the real app: database lookup, download count, headers,
sendfile) on loopback. The baseline, measured in the same run, is a bare aiohttp process that
sends the same files with no lookup at all: `ours / baseline` is what the link check and the
download count cost. Client and server share the machine's cores, as they do here.

    .venv/bin/python bench/downloads.py [--clients 50] [--seconds 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web
from aiohttp.test_utils import unused_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serving import cpu_seconds, stop, wait_until_up  # noqa: E402
from db.service import look_up_link  # noqa: E402
from kiosk.artworks import ArtworkLibrary  # noqa: E402
from kiosk.catalogue import ArtworkCatalogue  # noqa: E402
from kiosk.settings import Settings  # noqa: E402
from kiosk.storage import Storage  # noqa: E402
from pipeline.codec import encode_image  # noqa: E402

PHOTOS = 20
PHOTO_BYTES = 1_000_000
TARGET_REQUESTS_PER_S = 200.0


def photo_of_about(size: int, seed: int) -> bytes:
    """A JPEG of roughly ``size`` bytes: smooth gradients plus enough noise to resist compression."""
    rng = np.random.default_rng(seed)
    side = 900
    while True:
        ramp = np.linspace(0, 255, side, dtype=np.float32)
        image = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (side, 1)), np.tile(ramp[:, None], (1, side))], -1)
        image = np.clip(image + rng.normal(0, 18, image.shape), 0, 255).astype(np.uint8)
        data = encode_image(image, ".jpg", jpeg_quality=92)
        if len(data) >= size:
            return data
        side = int(side * 1.1)


async def prepare(settings: Settings) -> list[tuple[str, Path]]:
    """Store PHOTOS photos through the service call; return each one's download path and file."""
    storage = await Storage.open(settings)
    try:
        await ArtworkCatalogue(storage, ArtworkLibrary(settings)).sync()
        saved = []
        for seed in range(PHOTOS):
            download = await storage.save(photo_of_about(PHOTO_BYTES, seed), {"framing": "half-body", "people": 1}, artwork_id="demo-golden-meadow")
            lookup = await look_up_link(storage.sessions, download.token, now=datetime.now(timezone.utc))
            saved.append((f"/p/{download.token}/download", storage.store.local_path(lookup.photo.result_key)))
        return saved
    finally:
        await storage.close()


def serve_baseline(port: int, files: list[str]) -> None:
    """The transport alone: the same files by index, with no lookup or bookkeeping."""
    paths = [Path(f) for f in files]

    async def send(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(paths[int(request.match_info["index"])], headers={"Content-Type": "image/jpeg"})

    app = web.Application()
    app.router.add_get("/f/{index}", send)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def load(base: str, paths: list[str], clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    received = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def client(index: int) -> None:
            nonlocal errors, received
            n = index
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    async with session.get(base + paths[n % len(paths)]) as response:
                        body = await response.read()
                        if response.status != 200:
                            errors += 1
                            continue
                except aiohttp.ClientError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                received += len(body)
                n += clients

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests_per_s": len(latencies) / elapsed,
        "mb_per_s": received / elapsed / 1e6,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000 if latencies else float("nan"),
        "requests": len(latencies),
        "errors": errors,
    }


async def measure(name: str, command: list[str], env: dict[str, str], port: int, paths: list[str], args) -> dict:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_until_up(base + paths[0], process)
        await load(base, paths, args.clients, 1.0)  # warm the page cache and the connection pool
        cpu_before = cpu_seconds([process.pid])
        result = await load(base, paths, args.clients, args.seconds)
        result["server_cpu_pct"] = 100 * (cpu_seconds([process.pid]) - cpu_before) / args.seconds
        return result
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve-baseline", nargs="+", metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(int(args.serve_baseline[0]), args.serve_baseline[1:])
        return

    with tempfile.TemporaryDirectory(prefix="artbooth-bench-") as data_dir:
        port = unused_port()
        # The clients stand for phones with addresses of their own; on loopback they share one, so the
        # per-address limits (web/limits.py) are raised to what that many phones would each get.
        env = os.environ | {
            "ARTBOOTH_DATA_DIR": data_dir,
            "ARTBOOTH_PORT": str(port),
            "ARTBOOTH_PUBLIC_CONCURRENT_REQUESTS": str(max(args.clients, 1) * 32),
            "ARTBOOTH_PUBLIC_REQUESTS_PER_MINUTE": str(max(args.clients, 1) * 1200),
            "ARTBOOTH_MAX_CONNECTIONS_PER_ADDRESS": str(max(args.clients, 1) * 128),
        }
        settings = Settings.load(environ=env)
        saved = asyncio.run(prepare(settings))
        sizes = [path.stat().st_size for _, path in saved]
        artbooth = str(Path(sys.executable).with_name("artbooth"))
        ours = asyncio.run(measure("ours", [artbooth, "serve"], env, port, [p for p, _ in saved], args))
        baseline_port = unused_port()
        baseline_command = [sys.executable, __file__, "--serve-baseline", str(baseline_port), *(str(f) for _, f in saved)]
        baseline = asyncio.run(
            measure("baseline", baseline_command, env, baseline_port, [f"/f/{i}" for i in range(len(saved))], args)
        )

    print(f"{args.clients} clients, {args.seconds:.0f} s each, {len(sizes)} photos of {statistics.mean(sizes) / 1e6:.2f} MB on average")
    print(f"{'':<26}{'req/s':>9}{'MB/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}{'server CPU':>12}")
    for name, row in (("artbooth serve /p/…/download", ours), ("baseline (bare sendfile)", baseline)):
        print(
            f"{name:<26}{row['requests_per_s']:>9.0f}{row['mb_per_s']:>9.0f}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}"
            f"{row['errors']:>8}{row['server_cpu_pct']:>11.0f}%"
        )
    ratio = ours["requests_per_s"] / baseline["requests_per_s"]
    verdict = "meets" if ours["requests_per_s"] >= TARGET_REQUESTS_PER_S and ours["errors"] == 0 else "misses"
    print(f"ours / baseline: {ratio:.2f} of the bare transport's rate; {verdict} the target of {TARGET_REQUESTS_PER_S:.0f} req/s with no errors")
    if args.json:
        args.json.write_text(
            json.dumps({"clients": args.clients, "photo_mb": statistics.mean(sizes) / 1e6, "ours": ours, "baseline": baseline, "ratio": ratio}, indent=2)
        )


if __name__ == "__main__":
    main()
