"""Start `coresdk dev` (the whole development system) in its own process group and wait until it serves."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

READY = "Press Ctrl-C to stop."


def start_dev(env: dict[str, str], data_dir: Path, log: Path, timeout: float = 90) -> subprocess.Popen[bytes]:
    """Ctrl-C is signalled to the group (os.killpg(proc.pid, SIGINT)), as a terminal would."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "coresdk"), "dev", "--data-dir", str(data_dir)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while READY not in log.read_text() and time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        time.sleep(0.2)
    assert READY in log.read_text(), log.read_text()
    return proc
