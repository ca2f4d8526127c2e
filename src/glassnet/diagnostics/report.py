"""Findings and the health report: what `Monitor.report` and `diagnose()` hand back.

A `Finding` is one detector's verdict (a code, a severity, the layer and batch where it was
first seen, a message and plain-words advice). A `Report` gathers the findings with the
sampled records and prints as a readable table; `to_dict()` is JSON-safe.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

SEVERITIES = ("error", "warning", "info")


class DiagnosticWarning(UserWarning):
    """Category of every warning that glassnet's training diagnostics emit.

    Silence them with `warnings.simplefilter("ignore", DiagnosticWarning)`, or turn them
    into errors with `"error"` (handy in tests).
    """


class Finding:
    """One detector's verdict about one layer (or the whole model when `layer` is None).

    Args:
        code: short identifier of the detector ("dead_units", "vanishing_gradients", ...).
        severity: "error", "warning" or "info" (only errors and warnings are emitted
            through `warnings`).
        message: what was seen, with the numbers.
        advice: what to try, in plain words ("" when there is none).
        layer: name of the layer concerned, or None.
        epoch, batch, step: where it was first seen (None for a static check).
        value, threshold: the measured number and the limit it crossed.
    """

    __slots__ = ("code", "severity", "message", "advice", "layer", "epoch", "batch",
                 "step", "value", "threshold", "count", "last_step")

    def __init__(self, code, severity, message, advice="", layer=None, epoch=None,
                 batch=None, step=None, value=None, threshold=None):
        if severity not in SEVERITIES:
            raise ValueError(f"`severity` must be one of {SEVERITIES}. "
                             f"Received: severity={severity!r}")
        self.code, self.severity, self.message, self.advice = code, severity, message, advice
        self.layer, self.epoch, self.batch, self.step = layer, epoch, batch, step
        self.value, self.threshold = value, threshold
        self.count, self.last_step = 1, step

    @property
    def key(self) -> tuple:
        """Findings with the same key are one finding seen again (counted, not repeated)."""
        return (self.code, self.layer)

    def where(self) -> str:
        parts = [f"layer {self.layer!r}"] if self.layer is not None else []
        if self.epoch is not None:
            parts.append(f"epoch {self.epoch}")
        if self.batch is not None:
            parts.append(f"batch {self.batch}")
        if self.step is not None and self.epoch is not None:
            parts.append(f"step {self.step}")
        return ", ".join(parts)

    def text(self, advice=True) -> str:
        where = self.where()
        out = f"[{self.code}] " + (f"{where}: " if where else "") + self.message
        if advice and self.advice:
            out += f" Advice: {self.advice}"
        return out

    def to_dict(self) -> dict:
        return {k: jsonable(getattr(self, k)) for k in self.__slots__}

    def __repr__(self) -> str:
        return f"<Finding {self.severity} {self.text(advice=False)}>"


class Report:
    """The findings of a Monitor (or of one `diagnose()` call) and the sampled records.

    Attributes:
        findings: list of `Finding`, in the order they were first seen.
        records: the per-step records (see the `glassnet.diagnostics` docstring).

    Example:
        >>> report = model.diagnose(x, y)
        >>> print(report)                 # a table per layer, then the findings
        >>> report.codes                  # {"dead_units", ...}
        >>> json.dumps(report.to_dict())  # JSON-safe
    """

    def __init__(self, model_name=None, records=None, thresholds=None, advice=True):
        self.model_name = model_name
        self.findings: list[Finding] = []
        self.records = records if records is not None else []
        self.thresholds = dict(thresholds or {})
        self.advice = advice
        self._index: dict = {}

    def add(self, finding: Finding) -> bool:
        """Add a finding; True when it is new, False when its key was seen already."""
        old = self._index.get(finding.key)
        if old is not None:
            old.count += 1
            old.last_step = finding.step
            return False
        self._index[finding.key] = finding
        self.findings.append(finding)
        return True

    @property
    def codes(self) -> set:
        return {f.code for f in self.findings}

    def by_code(self, code) -> list:
        return [f for f in self.findings if f.code == code]

    def has(self, code, layer=None) -> bool:
        return any(f.code == code and (layer is None or f.layer == layer)
                   for f in self.findings)

    @property
    def ok(self) -> bool:
        """True when no error or warning was found (info notes do not count)."""
        return not any(f.severity in ("error", "warning") for f in self.findings)

    def to_dict(self, include_records=False) -> dict:
        out = {"model": self.model_name, "ok": self.ok,
               "steps_sampled": len(self.records),
               "thresholds": jsonable(self.thresholds),
               "findings": [f.to_dict() for f in self.findings],
               "layers": jsonable(self.layer_summary())}
        if include_records:
            out["records"] = jsonable(self.records)
        return out

    def layer_summary(self) -> dict:
        """The latest record's statistics per layer, without the histograms."""
        if not self.records:
            return {}
        return {name: {k: v for k, v in stats.items() if k != "hist"}
                for name, stats in self.records[-1]["layers"].items()}

    def __str__(self) -> str:
        lines = [f"glassnet diagnostics for model {self.model_name!r}: "
                 f"{len(self.records)} sampled step(s)"]
        if self.records:
            last = self.records[-1]
            if last.get("epoch") is not None:
                lines[0] += (f" (last: epoch {last['epoch']}, batch {last['batch']}, "
                             f"step {last['step']})")
            lines.extend(_table(last["layers"]))
        if not self.findings:
            lines.append("No problems found.")
        else:
            lines.append(f"Findings ({len(self.findings)}):")
            for f in self.findings:
                seen = f" (seen {f.count}x)" if f.count > 1 else ""
                lines.append(f"  {f.severity.upper():7s} {f.text(advice=False)}{seen}")
                if self.advice and f.advice:
                    lines.append(f"          advice: {f.advice}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<Report model={self.model_name!r} findings={len(self.findings)} "
                f"steps_sampled={len(self.records)}>")


_COLUMNS = (("layer", 18), ("type", 20), ("act mean", 9), ("act std", 9), ("sat %", 7),
            ("dead %", 7), ("pre std", 9), ("grad norm", 10), ("upd/w", 9))


def _table(layers: dict) -> list:
    head = " ".join(name.ljust(w) if i < 2 else name.rjust(w)
                    for i, (name, w) in enumerate(_COLUMNS))
    rows = [head, "-" * len(head)]
    for name, s in layers.items():
        grads = [g for g in (s.get("grad_norm") or {}).values() if g is not None]
        ups = [u for u in (s.get("update_ratio") or {}).values() if u is not None]
        kind = s.get("type", "")
        if s.get("activation") and s["activation"] != "linear":
            kind += f"/{s['activation']}"
        cells = [name[:18].ljust(18), kind[:20].ljust(20), _num(s.get("act_mean")),
                 _num(s.get("act_std")), _pct(s.get("saturated")), _pct(s.get("dead")),
                 _num(s.get("pre_std")),
                 _num(math.sqrt(sum(g * g for g in grads)) if grads else None, 10),
                 _num(max(ups) if ups else None)]
        rows.append(" ".join(cells))
    return rows


def _num(v, width=9) -> str:
    if v is None:
        return "-".rjust(width)
    if not math.isfinite(v):
        return str(v).rjust(width)
    text = f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 or v == 0 else f"{v:.2e}"
    return text.rjust(width)


def _pct(v) -> str:
    return "-".rjust(7) if v is None else f"{100 * v:.1f}".rjust(7)


def jsonable(obj):
    """A copy of `obj` that `json.dumps(..., allow_nan=False)` accepts: NumPy scalars and
    arrays become Python numbers and lists; NaN and infinities become "nan", "inf"."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else str(value)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def emit(finding: Finding, advice=True) -> None:
    """Send an error or warning finding through Python's `warnings` (info stays quiet)."""
    if finding.severity in ("error", "warning"):
        # NOTE: warn_explicit, because the user's line is many frames up (inside fit's
        # callbacks) and a line of glassnet's source would only be noise; every finding
        # is emitted once by its Monitor, so Python's once-per-location memory is not used.
        warnings.warn_explicit(finding.text(advice=advice), DiagnosticWarning,
                               filename="glassnet.diagnostics", lineno=0,
                               module="glassnet.diagnostics")
