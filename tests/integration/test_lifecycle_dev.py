"""`coresdk dev` never leaves its services behind: a SIGTERM (a supervisor, `kill`, an IDE's stop button) while it
is still starting them, or a SIGKILL of `coresdk dev` itself, must not leave OpenBao, the control plane, the sidecar,
... running on their ports after it is gone (the next `coresdk dev` would find every address taken)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.devsystem import dev_env
from tests.support.lifecycle import cmdline, descendants, kill_all, poll, survivors

GONE_WITHIN = 15.0


def _dev(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "coresdk"), "dev", "--data-dir", str(tmp_path / "data")],
            env=dev_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, log


def _children_once(proc: subprocess.Popen[bytes], log: Path, marker: str) -> list[int]:
    """Its descendants once marker shows in its output (the services it has started by then)."""
    try:
        assert poll(lambda: marker in log.read_text() or proc.poll() is not None, 90), log.read_text()
        assert proc.poll() is None, log.read_text()
    except BaseException:
        kill_all(descendants(proc.pid))
        proc.kill()
        proc.wait()
        raise
    return descendants(proc.pid)


def _end(proc: subprocess.Popen[bytes], children: list[int]) -> None:
    kill_all(p for p in children if "coresdk" in cmdline(p) or "bao" in cmdline(p) or "python" in cmdline(p))
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_sigterm_while_dev_is_starting_stops_what_it_started(tmp_path: Path) -> None:
    proc, log = _dev(tmp_path)
    children = _children_once(proc, log, "starting sidecar")
    try:
        assert any("controlplane" in cmdline(p) for p in children), [cmdline(p) for p in children]
        proc.terminate()
        code = proc.wait(GONE_WITHIN)
        left = survivors(children, GONE_WITHIN)
        assert not left, [cmdline(p) for p in left]
        assert code == 0, log.read_text()
    finally:
        _end(proc, children)


def test_services_exit_when_dev_is_killed(tmp_path: Path) -> None:
    proc, log = _dev(tmp_path)
    children = _children_once(proc, log, "starting sidecar")
    try:
        proc.kill()
        proc.wait()
        left = survivors(children, GONE_WITHIN)
        assert not left, [cmdline(p) for p in left]
    finally:
        _end(proc, children)
