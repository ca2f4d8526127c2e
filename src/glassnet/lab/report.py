"""The lab's report: `index.html` (self-contained: PNGs inlined as base64) and `results.json`.

`results.json` is a list with one entry per claim::

    {"experiment": "optimizers", "claim": "...", "supported": true, "seeds": [0, 1, 2],
     "metrics": {...}, "published": {...},
     "title": "...", "note": "...", "mode": "quick", "data": "fashion-mnist",
     "seconds": 12.3}

The first six keys are the contract; the others are context for readers.
"""
from __future__ import annotations

import base64
import html
import json
import math
import os

import numpy as np

from .base import fmt

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;
 margin:0;background:#f6f7f9}
main{max-width:1120px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:21px;margin:0 0 6px}
h3{font-size:16px;margin:18px 0 6px}
.meta{color:#57606a;font-size:13px}
section{border-top:2px solid #d0d7de;margin-top:34px;padding-top:18px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13.5px}
th,td{border:1px solid #d0d7de;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f0f3f6}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.yes{color:#116329;font-weight:700}.no{color:#b3261e;font-weight:700}
.claim{border-left:5px solid #116329;background:#f3faf5;padding:8px 14px;margin:12px 0}
.claim.no{border-left-color:#b3261e;background:#fdf3f2;font-weight:400}
.claim p{margin:2px 0 6px}.claim .text{font-weight:600;color:#1b1f24}
.note{color:#57606a;font-size:13px}
figure{margin:14px 0;text-align:center}
figure img{max-width:100%;border:1px solid #e1e4e8}
figcaption{font-size:13px;color:#57606a;margin-top:4px}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
a{color:#0550ae}
"""


def jsonable(value):
    """A JSON-safe copy: NumPy scalars and arrays to Python, NaN and inf to None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def entries_of(summaries, mode):
    """The results.json entries (one per claim) of summarised experiments."""
    out = []
    for s in summaries:
        for claim in s["outcome"].claims:
            out.append(jsonable({
                "experiment": s["name"], "claim": claim.text,
                "supported": bool(claim.supported), "seeds": list(claim.seeds),
                "metrics": claim.metrics, "published": claim.published,
                "title": s["title"], "note": claim.note, "mode": mode, "data": s["data"],
                "seconds": round(s["seconds"], 2),
                "cpu_seconds": round(s.get("cpu_seconds", s["seconds"]), 2)}))
    return out


def _png(figure):
    if isinstance(figure, (bytes, bytearray)):
        return bytes(figure)
    from ..plot import to_png
    return to_png(figure)


def _esc(text):
    return html.escape(str(text))


def _cell(value, digits=3):
    text = fmt(value, digits) if not isinstance(value, str) else value
    numeric = isinstance(value, (int, float, np.integer, np.floating, dict, list, tuple))
    cls = ' class="num"' if numeric and not isinstance(value, bool) else ""
    return f"<td{cls}>{_esc(text)}</td>"


def _table(columns, rows, digits=None):
    """An HTML table; `digits` optionally gives the digits of each column."""
    digits = digits or [3] * len(columns)
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v, d) for v, d in zip(row, digits)) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _as_printed(value):
    """A published number as its source prints it (0.8646 stays 0.8646, 1.5e-06 too)."""
    if isinstance(value, (float, np.floating)):
        return format(float(value), "g")
    return value


def _claim_html(claim):
    verdict = ('<span class="yes">✓ supported</span>' if claim.supported
               else '<span class="no">✗ not supported</span>')
    keys = list(claim.metrics) + [k for k in claim.published if k not in claim.metrics]
    rows = [[k, claim.metrics.get(k, "–"), _as_printed(claim.published.get(k, "–"))]
            for k in keys]
    table = _table(["quantity", "this run", "published"], rows) if rows else ""
    seeds = f" · seeds {', '.join(map(str, claim.seeds))}" if claim.seeds else ""
    note = f'<p class="note">{_esc(claim.note)}</p>' if claim.note else ""
    cls = "claim" if claim.supported else "claim no"
    return (f'<div class="{cls}"><p>{verdict}{_esc(seeds)}</p>'
            f'<p class="text">{_esc(claim.text)}</p>{table}{note}</div>')


def write(out, summaries, meta):
    """Write `out/index.html`, `out/results.json` and `out/figures/*.png`; return entries."""
    os.makedirs(os.path.join(out, "figures"), exist_ok=True)
    entries = entries_of(summaries, meta["mode"])
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(entries, f, indent=1)
    n_ok = sum(e["supported"] for e in entries)
    sources = sorted({s["data"] for s in summaries if s["data"]})
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
             f"<title>glassnet lab report</title><style>{_CSS}</style></head><body><main>",
             "<h1>glassnet lab report</h1>",
             f"<p class='meta'>mode <b>{_esc(meta['mode'])}</b> · data "
             f"{_esc(', '.join(sources) or '–')} · {meta['wall_seconds']:.0f} s wall on "
             f"{_esc(meta.get('cpus'))} CPU(s), {_esc(meta.get('executor'))}"
             f"{' × ' + str(meta['jobs']) if meta.get('jobs') and meta['jobs'] > 1 else ''}"
             f" · glassnet {_esc(meta.get('version'))}, Python {_esc(meta.get('python'))}"
             f" · {_esc(meta.get('created'))}</p>",
             f"<p><b>{n_ok} of {len(entries)} claims supported.</b> Claims about training "
             "outcomes are judged on the mean over the seeds listed; the published numbers "
             "come from the sources named in each section (often a larger setup: compare "
             "trends, not digits).</p>"]
    if any(s["data"] == "generated" for s in summaries):
        parts.append("<p class='note'>Fashion-MNIST was not found: these runs used the "
                     "generated stand-in (glassnet.lab.data), so the published numbers are "
                     "not comparable.</p>")
    rows = []
    for s in summaries:
        for k, c in enumerate(s["outcome"].claims):
            mark = '<span class="yes">✓</span>' if c.supported else '<span class="no">✗</span>'
            name = f"<a href='#{_esc(s['name'])}'>{_esc(s['name'])}</a>" if k == 0 else ""
            t = f"{s['seconds']:.1f} s" if k == 0 else ""
            rows.append(f"<tr><td>{name}</td><td>{mark}</td><td>{_esc(c.text)}</td>"
                        f"<td class='num'>{t}</td></tr>")
    parts.append("<table><tr><th>experiment</th><th></th><th>claim</th><th>run time</th>"
                  "</tr>" + "".join(rows) + "</table>")
    for s in summaries:
        o = s["outcome"]
        parts.append(f"<section id='{_esc(s['name'])}'><h2>{_esc(s['title'])}</h2>")
        parts.append(f"<p class='meta'>{_esc(s['name'])} · {s['runs']} runs · "
                     f"{s['seconds']:.1f} s run time ({s.get('cpu_seconds', 0):.1f} s CPU)"
                     f" · data {_esc(s['data'] or '–')}</p>")
        parts.append(f"<p>{_esc(s['setup'])}</p>")
        parts.extend(_claim_html(c) for c in o.claims)
        for t in o.tables:
            parts.append(f"<h3>{_esc(t.title)}</h3>{_table(t.columns, t.rows)}")
            if t.note:
                parts.append(f"<p class='note'>{_esc(t.note)}</p>")
        for i, (caption, figure) in enumerate(o.figures):
            png = _png(figure)
            fname = f"{s['name']}-{i + 1}.png"
            with open(os.path.join(out, "figures", fname), "wb") as f:
                f.write(png)
            data = base64.b64encode(png).decode("ascii")
            parts.append(f"<figure><img alt='{_esc(caption)}' src='data:image/png;base64,"
                         f"{data}'><figcaption>{_esc(caption)}</figcaption></figure>")
        for note in o.notes:
            tag = "pre" if "Traceback" in note else "p class='note'"
            parts.append(f"<{tag}>{_esc(note)}</{tag.split()[0]}>")
        parts.append("</section>")
    parts.append("</main></body></html>")
    with open(os.path.join(out, "index.html"), "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return entries
