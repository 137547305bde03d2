"""``cvlab serve`` as a child process, for scripts that need a real server they can kill: fault tests, the soak.

Reads the endpoint and keys from the banner ``cvlab serve`` prints (the same lines a learner copies), keeps
everything the server prints, and can ask it for its thread stacks (``kill -USR1``) when something hangs.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
_BANNER = {"endpoint": r"Training endpoint:\s+(\S+)", "training_key": r"Training key:\s+(\S+)",
           "prediction_key": r"Prediction key:\s+(\S+)", "resource_id": r"Prediction resource id:\s+(\S+)"}


def parse_banner(text: str) -> dict[str, str]:
    """The endpoint, keys and prediction resource id from ``cvlab serve``'s start-up banner."""
    found = {k: re.search(pattern, text) for k, pattern in _BANNER.items()}
    missing = [k for k, m in found.items() if m is None]
    if missing:
        raise ValueError(f"not a cvlab serve banner (no {', '.join(missing)}):\n{text[-2000:]}")
    return {k: m.group(1) for k, m in found.items()}


class ServeProcess:
    """``cvlab serve --port 0 --workspace DIR *extra``; attributes ``endpoint``, ``training_key``,
    ``prediction_key``, ``resource_id``, ``proc``, ``lines`` (all output so far). A context manager."""

    def __init__(self, workspace, *extra: str, startup_timeout: float = 120):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_REPO), os.environ.get("PYTHONPATH", "")]),
                   PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from cvlab.cli import main; sys.exit(main())", "serve",
             "--workspace", str(workspace), "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + startup_timeout
        while not any("Press Ctrl+C" in ln for ln in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("cvlab serve did not start:\n" + "".join(self.lines))
            time.sleep(0.05)
        for key, value in parse_banner("".join(self.lines)).items():
            setattr(self, key, value)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def dump_stacks(self, wait: float = 2.0) -> str:
        """Every server thread's stack (``cvlab serve`` prints them on SIGUSR1): what a hang is waiting for."""
        n = len(self.lines)
        if self.proc.poll() is not None or not hasattr(signal, "SIGUSR1"):
            return ""
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(wait)
        return "".join(self.lines[n:])

    def kill(self) -> None:
        """SIGKILL: no clean-up handler runs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(5)

    def stop(self, timeout: float = 60) -> str:
        """Ctrl+C-like stop (SIGKILL after ``timeout``); returns everything the process printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return "".join(self.lines)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
