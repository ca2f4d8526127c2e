"""Keras-style progress bar: updates in place on a terminal, one line per epoch in logs."""
from __future__ import annotations

import sys
import time


def format_logs(logs: dict) -> str:
    parts = []
    for key, value in logs.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        parts.append(f"{key}: {value:.4f}" if abs(value) >= 1e-3 or value == 0
                     else f"{key}: {value:.4e}")
    return " - ".join(parts)


class Progbar:
    """Progress of one epoch. verbose=1: a bar (in place on a TTY, else a final line);
    verbose=2: only the final line."""

    def __init__(self, target: int, verbose: int = 1, stream=None, interval: float = 0.05):
        self.target = target
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.interval = interval
        self.start = time.perf_counter()
        self._last_update = 0.0
        self._dynamic = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, current: int, logs: dict | None = None, finalize: bool = False):
        if self.verbose == 0:
            return
        now = time.perf_counter()
        if not finalize and (self.verbose == 2 or not self._dynamic
                             or now - self._last_update < self.interval):
            return
        self._last_update = now
        elapsed = now - self.start
        width = len(str(self.target))
        if self.verbose == 1:
            done = int(30 * current / max(self.target, 1))
            bar = "━" * done + "─" * (30 - done) if current < self.target else "━" * 30
            head = f"{current:>{width}}/{self.target} {bar} "
        else:
            head = f"{current}/{self.target} - "
        per_step = elapsed / max(current, 1)
        timing = f"{elapsed:.0f}s {per_step * 1e3:.0f}ms/step" if finalize else \
            f"ETA {per_step * (self.target - current):.0f}s"
        line = f"{head}{timing}"
        text = format_logs(logs or {})
        if text:
            line += " - " + text
        if self._dynamic and self.verbose == 1:
            self.stream.write("\r" + line + ("\n" if finalize else ""))
        elif finalize:
            self.stream.write(line + "\n")
        self.stream.flush()
