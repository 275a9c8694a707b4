"""Running the real `artbooth` command from tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ARTBOOTH = str(Path(sys.executable).with_name("artbooth"))


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([ARTBOOTH, *args], env=env, capture_output=True, text=True, timeout=300)
