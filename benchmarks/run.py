"""Time a training step and inference: glassnet next to PyTorch, NumPy, JAX and Keras 3.

    PYTHONPATH=src python benchmarks/run.py                  # full run (about 10 minutes)
    PYTHONPATH=src python benchmarks/run.py --quick          # smoke run, < 90 s, asserts nothing
    PYTHONPATH=src python benchmarks/run.py --workloads W1,W3 --frameworks glassnet,torch

Every framework runs in its own worker process (`run.py --worker NAME`), so thread pools
(OpenBLAS, OpenMP, XLA) never share a process and Keras can pick its backend at import.
The parent only orchestrates: per case it builds every model from the same weights and
batch, checks that the first-step losses agree, warms up, picks N steps per block so that
a block lasts about `--target` seconds, then runs `--rounds` round-robin rounds (the order
rotates every round) and reports the median time per step and the min–max over rounds.
Fit workloads (W7) time whole epochs instead: one untimed warm-up epoch, then
`--fit-epochs` rounds of one epoch each.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
MODES = ("train", "infer", "fit")  # training step, inference, fit epoch


class Framework(NamedTuple):
    label: str  # table column
    worker: str  # worker process that runs it
    env: dict  # extra environment of that worker
    modes: tuple = MODES  # what it can time


FRAMEWORKS = {
    "glassnet": Framework("glassnet (train_on_batch)", "glassnet", {}),
    "glassnet-step": Framework("glassnet (step)", "glassnet", {}, ("train", "infer")),
    "numpy": Framework("NumPy floor", "numpy", {}),
    "gemm": Framework("GEMMs only", "numpy", {}, ("train", "fit")),
    "torch": Framework("PyTorch eager", "torch", {}),
    "torch-compile": Framework("PyTorch compile", "torch", {}, ("train",)),
    "jax": Framework("JAX jit", "jax", {"JAX_PLATFORMS": "cpu"}),
    "keras-jax": Framework("Keras 3 (jax)", "keras-jax",
                           {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}),
    "keras-torch": Framework("Keras 3 (torch)", "keras-torch", {"KERAS_BACKEND": "torch"}),
}
MODE_LABELS = {"infer": {"glassnet": "glassnet (predict_on_batch)",
                         "glassnet-step": "glassnet (call under no_grad)"},
               "fit": {"glassnet": "glassnet (fit)"}}
GLASSNET = ("glassnet", "glassnet-step")
# The peers of the goal (PyTorch eager and compile, JAX jit, Keras 3); the NumPy
# floor and the GEMMs are references with their own ratio columns, never the "fastest peer".
NOT_PEERS = GLASSNET + ("gemm", "numpy")
QUICK_FIT_SAMPLES = 2000
WARMUP_STEPS = 20  # per (framework, mode) before the timed rounds
QUICK_ONCE = ("torch-compile",)  # --quick runs these in one case only (compiling takes 5-15 s)


def label(fw: str, mode: str) -> str:
    return MODE_LABELS.get(mode, {}).get(fw, FRAMEWORKS[fw].label)


def case_modes(wl, fw: str) -> list:
    """The modes of workload `wl` that framework `fw` times."""
    return [m for m in wl.modes if m in FRAMEWORKS[fw].modes]


# ---- worker side ------------------------------------------------------------------------
def _import_framework(worker: str, threads: int) -> str:
    """Import what `worker` needs; return a version string (ImportError if missing)."""
    if worker == "glassnet":
        import glassnet
        glassnet.Sequential, glassnet.layers.Dense, glassnet.optimizers.Adam  # noqa: B018
        return glassnet.__version__
    import numpy
    if worker == "numpy":
        return numpy.__version__
    if worker in ("torch", "keras-torch"):
        import torch
        torch.set_num_threads(threads)
        if worker == "torch":
            return torch.__version__
    if worker == "jax":
        import jax
        return jax.__version__
    import keras
    return f"{keras.__version__} ({keras.backend.backend()})"


def worker_main(worker: str, threads: int) -> None:
    """Serve JSON-line commands on stdin; replies go to the original stdout only."""
    reply_to = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the frameworks print goes to the log, not into the protocol

    def reply(**msg):
        reply_to.write(json.dumps(msg) + "\n")
        reply_to.flush()

    runners = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "init":
                reply(version=_import_framework(worker, cmd["threads"]))
            elif cmd["cmd"] == "setup":
                runners[cmd["fw"]], info = setup_runner(worker, cmd)
                reply(**info)
            elif cmd["cmd"] == "time":
                reply(s=runners[cmd["fw"]].timed(cmd["mode"], cmd["n"]))
            elif cmd["cmd"] == "drop":
                runners.clear()
                reply(ok=True)
        except Exception as exc:  # reported per cell; the worker keeps serving
            reply(error=f"{type(exc).__name__}: {exc}"[:1000])


def setup_runner(worker: str, cmd: dict):
    """Build `cmd["fw"]`'s runner for one case and take its first-step loss (timed)."""
    import workloads
    wl = workloads.WORKLOADS[cmd["workload"]]
    x, y, fit_data, source = workloads.make_data(wl, cmd["batch"], cmd.get("samples"))
    t0 = time.perf_counter()
    factory = workloads.RUNNERS["keras" if worker.startswith("keras") else cmd["fw"]]
    runner = factory(wl, x, y, workloads.make_weights(wl))
    if fit_data is not None:
        runner.set_fit_data(*fit_data, cmd["batch"])
    loss = runner.first_loss(case_modes(wl, cmd["fw"])[0], y)
    return runner, {"loss": loss, "first_s": time.perf_counter() - t0, "data": source}


class Worker:
    """Parent-side handle on one worker process."""

    def __init__(self, name: str, env: dict, log_dir: Path):
        self.name, self.error = name, None
        self.log = open(log_dir / f"worker-{name}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--worker", name], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)

    def ask(self, **cmd) -> dict:
        if self.proc.poll() is not None:
            return {"error": f"worker {self.name} exited (see its log)"}
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"error": f"worker {self.name} died"}

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        self.log.close()


def child_env(extra: dict, threads: int) -> dict:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                      env.get("PYTHONPATH")]))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, str(threads))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


# ---- start-up costs (fresh processes) ---------------------------------------------------
def _run_py(code: str, threads: int, extra_env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=child_env(extra_env or {}, threads),
                          capture_output=True, text=True, cwd=HERE, check=True)


def _wall(code: str, threads: int, reps: int) -> dict:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        _run_py(code, threads)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "reps": reps}


def measure_imports(threads: int, reps: int) -> dict:
    """Wall time of fresh interpreters importing each library, and glassnet's slowest modules.

    glassnet's bytecode is compiled first, as `pip install` does for an installed package:
    with PYTHONDONTWRITEBYTECODE set (or a read-only checkout), a source checkout would
    otherwise recompile every module on every import and time the compiler.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "glassnet")],
                   env=child_env({}, threads), capture_output=True, check=False)
    full = "import glassnet as g; g.Sequential; g.layers.Dense; g.optimizers.Adam; g.losses"
    out = {"python -c pass": _wall("pass", threads, reps),
           "import glassnet": _wall("import glassnet", threads, reps),
           "import glassnet (+ Sequential, layers, optimizers, losses)":
               _wall(full, threads, reps),
           "import numpy": _wall("import numpy", threads, reps)}
    for name in ("torch", "jax") if reps > 1 else ():
        try:
            out[f"import {name}"] = _wall(f"import {name}", threads, reps)
        except subprocess.CalledProcessError:
            pass
    rows = []  # -X importtime: "import time: self | cumulative | name"
    for line in subprocess.run([sys.executable, "-X", "importtime", "-c", full],
                               env=child_env({}, threads), capture_output=True,
                               text=True).stderr.splitlines()[1:]:
        self_us, _, name = line.removeprefix("import time:").split("|")
        if name.strip().startswith("glassnet"):
            rows.append((int(self_us), name.strip()))
    out["glassnet slowest modules (self ms)"] = {n: us / 1e3 for us, n in sorted(rows)[-6:][::-1]}
    return out


FIRST_STEP = """
import json, time
t0 = time.perf_counter()
import glassnet, workloads
t1 = time.perf_counter()
wl = workloads.WORKLOADS[{w!r}]
x, y = workloads.make_batch(wl, {b})
t2 = time.perf_counter()
model = workloads.build_keras_like(glassnet, wl, workloads.make_weights(wl))
t3 = time.perf_counter()
model.train_on_batch(x, y)
t4 = time.perf_counter()
steps = []
for _ in range(5):
    t = time.perf_counter(); model.train_on_batch(x, y); steps.append(time.perf_counter() - t)
steps.sort()
print(json.dumps(dict(import_s=t1 - t0, build_s=t3 - t2, first_step_s=t4 - t3,
                      steady_step_s=steps[2])))
"""


def measure_first_step(case: tuple, threads: int, reps: int) -> dict:
    """In `reps` fresh processes: import, build + compile + set_weights, first and later
    steps; the median of each."""
    runs = [json.loads(_run_py(FIRST_STEP.format(w=case[0], b=case[1]), threads)
                       .stdout.strip().splitlines()[-1]) for _ in range(reps)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]} | {"reps": reps}


# ---- orchestration ----------------------------------------------------------------------
def start_workers(frameworks: list, threads: int, log_dir: Path):
    """Start one process per needed worker; return {fw: Worker}, versions, skip notes."""
    procs, versions, skipped = {}, {}, {}
    for fw in frameworks:
        spec = FRAMEWORKS[fw]
        if spec.worker not in procs:
            procs[spec.worker] = Worker(spec.worker, child_env(spec.env, threads), log_dir)
    for name, w in procs.items():  # imports run in parallel; collect them now
        msg = w.ask(cmd="init", threads=threads)
        w.error = msg.get("error")
        versions[name] = msg.get("version")
    handles = {}
    for fw in frameworks:
        w = procs[FRAMEWORKS[fw].worker]
        if w.error:
            skipped[fw] = f"not importable: {w.error}"
        else:
            handles[fw] = w
    return handles, versions, skipped, list(procs.values())


def calibrate(w: Worker, fw: str, mode: str, target: float, quick: bool) -> tuple:
    """Warm up, then choose the steps per block so that a block lasts about `target`.

    Blocks grow until one lasts a tenth of the target; the fastest of two such blocks sets
    the step time, so that a burst of load during calibration does not shrink the blocks.
    At least WARMUP_STEPS steps run in all (glassnet's BLAS-thread tuner measures on its
    first 16 steps, a JIT compiles on its first). A fit epoch is its own block: one timed
    epoch (the warm-up, reported apart) and n = 1.
    """
    if mode == "fit":
        return w.ask(cmd="time", fw=fw, mode=mode, n=1), 1
    if quick:  # the single round is the warm-up too
        return {}, 1
    n, done = 1, 0
    while True:
        msg = w.ask(cmd="time", fw=fw, mode=mode, n=n)  # also compiles the infer paths
        done += n + 1  # `timed` runs one untimed step first
        if "error" in msg or n >= 10_000:
            break
        if msg["s"] * n >= target / 10:
            if done >= WARMUP_STEPS:
                break
            continue  # long enough blocks, but the warm-up is not over: the same n again
        n = min(10_000, max(2 * n, math.ceil(target / 10 / max(msg["s"], 1e-7))))
    if "error" in msg:
        return msg, 0
    best = min(msg["s"], w.ask(cmd="time", fw=fw, mode=mode, n=n).get("s", msg["s"]))
    return msg, max(1, min(100_000, math.ceil(target / max(best, 1e-7))))


def summarise(samples: list) -> dict:
    q = statistics.quantiles(samples, n=4) if len(samples) > 1 else samples * 3
    return {"median_ms": statistics.median(samples) * 1e3, "min_ms": min(samples) * 1e3,
            "max_ms": max(samples) * 1e3, "q1_ms": q[0] * 1e3, "q3_ms": q[2] * 1e3,
            "samples_ms": [s * 1e3 for s in samples]}


def bench_case(wl, batch: int, handles: dict, args) -> dict:
    """Set up every framework on one case, check losses, time round-robin rounds."""
    out = {"workload": wl.name, "batch": batch, "modes": list(wl.modes),
           "frameworks": [fw for fw in handles if case_modes(wl, fw)], "first_loss": {},
           "build_and_first_step_s": {}, "errors": {}, "steps_per_block": {}, "results": {}}
    live = setup_case(wl, batch, handles, out, args)
    check_losses(out)
    blocks = calibrate_case(wl, live, handles, out, args)
    for (fw, mode), s in run_rounds(wl, live, blocks, handles, out, args).items():
        if s:
            out["results"].setdefault(fw, {})[mode] = summarise(s)
    for w in set(handles.values()):
        w.ask(cmd="drop")
    out["ratios"] = ratios(out["results"])
    return out


def setup_case(wl, batch: int, handles: dict, out: dict, args) -> list:
    """Build each framework's model for the case (if it times any of the case's modes) and
    take its first-step loss; return the frameworks that worked."""
    samples = QUICK_FIT_SAMPLES if args.quick else wl.fit_samples
    if "fit" in wl.modes:
        out["samples"] = samples
    live = []
    for fw in out["frameworks"]:
        msg = handles[fw].ask(cmd="setup", fw=fw, workload=wl.name, batch=batch,
                              samples=samples)
        if "error" in msg:
            out["errors"][fw] = msg["error"]
            continue
        if msg["loss"] is not None:  # the GEMMs have no loss
            out["first_loss"][fw] = msg["loss"]
        if msg["data"]:
            out["data"] = msg["data"]
        out["build_and_first_step_s"][fw] = msg["first_s"]
        live.append(fw)
    return live


def check_losses(out: dict) -> None:
    """Flag the case when the first-step losses disagree (relative spread > 1e-3)."""
    losses = list(out["first_loss"].values())
    if losses and (max(losses) - min(losses)) > 1e-3 * abs(statistics.median(losses)):
        out["loss_mismatch"] = True
        print(f"  WARNING {out['workload']}/{out['batch']}: first-step losses differ: "
              f"{out['first_loss']}")


def calibrate_case(wl, live: list, handles: dict, out: dict, args) -> dict:
    """Warm up every (framework, mode); return the steps per block of those that work."""
    blocks = {}
    for fw in live:
        for mode in case_modes(wl, fw):
            msg, n = calibrate(handles[fw], fw, mode, args.target, args.quick)
            if "error" in msg:
                out["errors"][f"{fw}/{mode}"] = msg["error"]
                continue
            blocks[fw, mode] = n
            out["steps_per_block"][f"{fw}/{mode}"] = n
            if mode == "fit":
                out.setdefault("warmup_epoch_s", {})[fw] = msg["s"]
    return blocks


def run_rounds(wl, live: list, blocks: dict, handles: dict, out: dict, args) -> dict:
    """Round-robin timing (the order rotates each round); {(fw, mode): [s per step]}."""
    samples = {key: [] for key in blocks}
    for r in range(args.fit_epochs if "fit" in wl.modes else args.rounds):
        order = live[r % len(live):] + live[:r % len(live)] if live else []
        for mode in wl.modes:
            for fw in order:
                if (fw, mode) not in blocks:
                    continue
                time.sleep(args.pause)  # let the previous worker's spinning threads sleep
                msg = handles[fw].ask(cmd="time", fw=fw, mode=mode, n=blocks[fw, mode])
                if "error" in msg:
                    out["errors"][f"{fw}/{mode}"] = msg["error"]
                    blocks.pop((fw, mode))
                else:
                    samples[fw, mode].append(msg["s"])
    return samples


def ratios(results: dict) -> dict:
    """Per mode: glassnet / PyTorch eager, glassnet / fastest peer (lowest median),
    glassnet / NumPy floor and, for training steps and epochs, glassnet / GEMMs only.

    Each ratio is the median over rounds of the ratio within a round: the two blocks ran
    seconds apart, so slow drifts in machine load cancel.
    """
    out = {}
    for mode in MODES:
        peers = {fw: r[mode] for fw, r in results.items() if fw not in NOT_PEERS and mode in r}
        fastest = min(peers, key=lambda fw: peers[fw]["median_ms"]) if peers else None
        refs = {"vs_torch": peers.get("torch"), "vs_fastest": peers.get(fastest),
                "vs_numpy": results.get("numpy", {}).get(mode),
                "vs_gemm": results.get("gemm", {}).get(mode)}
        for gfw in GLASSNET:
            g = results.get(gfw, {}).get(mode)
            if g is None:
                continue
            entry = out.setdefault(mode, {}).setdefault(gfw, {})
            for key, ref in refs.items():
                if ref:
                    pairs = zip(g["samples_ms"], ref["samples_ms"])
                    entry[key] = statistics.median(a / b for a, b in pairs)
            if fastest:
                entry["fastest"] = fastest
    return out


# ---- reporting --------------------------------------------------------------------------
TITLES = {"train": "Training step (ms)", "infer": "Inference (ms)",
          "fit": "Fit epochs (s per epoch)"}
RATIO_COLUMNS = (("vs_torch", "gn / torch"), ("vs_fastest", "gn / fastest peer"),
                 ("vs_numpy", "gn / NumPy floor"), ("vs_gemm", "gn / GEMMs"))
REFERENCE_OF = {"vs_numpy": "numpy", "vs_gemm": "gemm"}  # shown when that column ran


def _cell(r: dict | None, scale: float = 1.0) -> str:
    """'median (min–max)' of a result in ms, times `scale` (1e-3: seconds); n/a if none."""
    if not r:
        return "n/a"
    med, lo, hi = (r[k] * scale for k in ("median_ms", "min_ms", "max_ms"))
    fmt = (lambda v: f"{v:.3g}") if med < 100 else (lambda v: f"{v:.0f}")
    return f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})"


def _ratio_cell(rat: dict, key: str) -> str:
    """glassnet's ratio, the low-level glassnet's in brackets, the fastest peer named."""
    tob, step = rat.get("glassnet", {}), rat.get("glassnet-step", {})
    a, b = tob.get(key), step.get(key)
    if a is None and b is None:
        return "–"
    text = (f"{a:.2f}×" if a else "–") + (f" [{b:.2f}×]" if b else "")
    fastest = tob.get("fastest") or step.get("fastest")
    return text + (f" {FRAMEWORKS[fastest].label}" if key == "vs_fastest" and fastest else "")


def _case_name(c: dict) -> str:
    name = f"{c['workload']} b{c['batch']}"
    return name + (f", {c['samples']} × {c.get('data', '?')}" if "samples" in c else "")


def _selected(report: dict, mode: str | None = None) -> list:
    """The run's frameworks in column order (those that time `mode`, if given)."""
    return [fw for fw in FRAMEWORKS if fw in report["meta"]["frameworks"]
            and (mode is None or mode in FRAMEWORKS[fw].modes)]


def _header(report: dict) -> list:
    meta = report["meta"]
    machine = (f"{meta['cpu']}, {meta['cores']} cores, {meta['threads']} threads per "
               f"framework; {meta['rounds']} round(s), blocks of ≥ {meta['target_s']} s; "
               f"fit: {meta['fit_epochs']} timed epoch(s) after a warm-up epoch; load "
               f"average {meta['loadavg_start']} → {meta['loadavg_end']}.")
    legend = ("Times: median over rounds (min–max). Ratios: median over rounds of the ratio "
              "within each round, for glassnet (train_on_batch / predict_on_batch / fit), "
              "with glassnet (step / call) in brackets; the fastest peer is the column with "
              "the lowest median among PyTorch (eager, compile), JAX jit and Keras 3; the "
              "NumPy floor and GEMMs only are references with ratio columns of their own. "
              "GEMMs only: just the matrix products of the training step (forward, kernel "
              "and input gradients); for a fit epoch, one step's products per batch. "
              "—: not timed for this case (W5 is inference only; PyTorch compile times "
              "training steps only, GEMMs only steps and epochs; --quick compiles for one "
              "case only); n/a: failed (see Notes).")
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    return [f"# glassnet benchmarks ({meta['date']})", "", machine, "",
            f"Versions: {versions}", "", legend, ""]


def _mode_table(report: dict, mode: str) -> list:
    """One table: the cases of this kind (fit cases apart), a column per framework."""
    cases = [c for c in report["cases"] if ("fit" in c["modes"]) == (mode == "fit")]
    fws = _selected(report, mode)
    if not cases or not fws:
        return []
    scale = 1e-3 if mode == "fit" else 1.0
    ratio_cols = [(k, h) for k, h in RATIO_COLUMNS if REFERENCE_OF.get(k) in (None, *fws)]
    head = ["case"] + [label(fw, mode) for fw in fws] + [h for _, h in ratio_cols]
    lines = [f"## {TITLES[mode]}", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for c in cases:
        timed = mode in c["modes"]
        row = [_case_name(c)]
        row += [_cell(c["results"].get(fw, {}).get(mode), scale)
                if timed and fw in c["frameworks"] else "—" for fw in fws]
        row += [_ratio_cell(c["ratios"].get(mode, {}), k) if timed else "—"
                for k, _ in ratio_cols]
        lines.append("| " + " | ".join(row) + " |")
    for c in cases:
        if c.get("warmup_epoch_s"):
            lines += ["", f"{_case_name(c)}, first (warm-up) epoch, s: " + ", ".join(
                f"{label(fw, mode)} {s:.2f}" for fw, s in c["warmup_epoch_s"].items())]
    return lines + [""]


def _startup_lines(report: dict) -> list:
    if not report.get("imports"):
        return []
    lines = ["## Start-up", "", "| what | median (s) |", "|---|---|"]
    for k, v in report["imports"].items():
        if "median_s" in v:
            lines.append(f"| `{k}` | {v['median_s']:.3f} |")
    slow = report["imports"].get("glassnet slowest modules (self ms)", {})
    return lines + ["", "Slowest glassnet modules to import (self ms): "
                    + ", ".join(f"{k} {v:.1f}" for k, v in slow.items()), ""]


def _fresh_first_step_table(report: dict) -> list:
    if not report.get("first_step"):
        return []
    reps = next(iter(report["first_step"].values())).get("reps", 1)
    lines = [f"glassnet in a fresh process (train_on_batch; median of {reps} processes): "
             "build + compile is the model's construction with its weight initialisation, "
             "`compile` and `set_weights`; the first step's extra time is first − later "
             "step.", "",
             "| case | import glassnet+workloads (s) | build+compile (ms) | first step (ms) "
             "| later step (ms) | first step's extra (ms) |", "|---|---|---|---|---|---|"]
    for k, v in report["first_step"].items():
        first, later = v["first_step_s"] * 1e3, v["steady_step_s"] * 1e3
        lines.append(f"| {k} | {v['import_s']:.3f} | {v['build_s'] * 1e3:.0f} | "
                     f"{first:.1f} | {later:.2f} | {first - later:.1f} |")
    return lines + [""]


def _build_table(report: dict) -> list:
    if not report["cases"]:
        return []
    fws = _selected(report)
    head = ["case"] + [FRAMEWORKS[fw].label for fw in fws]
    title = ("Build + compile + first training step (W5: first inference) in an "
             "already-imported worker (ms):")
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in report["cases"]:
        firsts = c["build_and_first_step_s"]
        lines.append("| " + " | ".join([_case_name(c)] + [
            f"{firsts[fw] * 1e3:.0f}" if fw in firsts else "—" for fw in fws]) + " |")
    return lines + [""]


def _notes(report: dict) -> list:
    def short(text: str) -> str:
        return " ".join(text.split())[:300]

    notes = [f"- skipped {fw}: {short(why)}" for fw, why in report["skipped"].items()]
    for c in report["cases"]:
        notes += [f"- {_case_name(c)} {k}: {short(v)}" for k, v in c["errors"].items()]
        if c.get("loss_mismatch"):
            notes.append(f"- {_case_name(c)}: first-step losses differ {c['first_loss']}")
        if c.get("data", "").startswith("random"):
            notes.append(f"- {c['workload']} ran on {c['data']}")
    return ["## Notes", ""] + notes + [""] if notes else []


def markdown(report: dict) -> str:
    lines = _header(report)
    for mode in MODES:
        lines += _mode_table(report, mode)
    lines += _startup_lines(report) + _fresh_first_step_table(report) + _build_table(report)
    return "\n".join(lines + _notes(report))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: one round of 1-step blocks, one small batch per workload, "
                        f"fit on {QUICK_FIT_SAMPLES} samples")
    p.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W7")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                   help=f"subset of {','.join(FRAMEWORKS)}")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--fit-epochs", type=int, default=1,
                   help="timed epochs (rounds) for fit workloads, after one warm-up epoch")
    p.add_argument("--target", type=float, default=0.2, help="seconds per timed block")
    p.add_argument("--pause", type=float, default=0.05, help="idle seconds between blocks")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-startup", action="store_true", help="skip import/first-step timing")
    p.add_argument("--out", type=Path, help="JSON path, table and worker logs next to it "
                   "(default results/latest.json + results.md; --quick: results/quick.json "
                   "+ .md)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.fit_epochs, args.pause = 1, 1, 0.0
    return args


def select(args, workloads) -> tuple:
    """([(workload, batch)], [framework]) from the arguments; exits on unknown names."""
    names = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = [n for n in names if n not in workloads.WORKLOADS] + \
              [f for f in frameworks if f not in FRAMEWORKS]
    if unknown:
        raise SystemExit(f"unknown workload/framework {unknown}; choose from "
                         f"{list(workloads.WORKLOADS)} and {list(FRAMEWORKS)}")
    wls = [workloads.WORKLOADS[n] for n in names]
    if args.quick:  # smoke run: each workload once, at its smallest batch, at most 64
        return [(wl, min(64, *wl.batch_sizes)) for wl in wls], frameworks
    return [(wl, b) for wl in wls for b in wl.batch_sizes], frameworks


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.threads)
    sys.path.insert(0, str(HERE))
    import workloads
    cases, frameworks = select(args, workloads)
    out = args.out or RESULTS / ("quick.json" if args.quick else "latest.json")
    md = out.with_suffix(".md") if args.quick or args.out else HERE / "results.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(), "cpu": _cpu_name(),
            "cores": os.cpu_count(), "threads": args.threads, "rounds": args.rounds,
            "fit_epochs": args.fit_epochs, "target_s": args.target, "quick": args.quick,
            "frameworks": frameworks, "loadavg_start": _loadavg()}
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print(f"WARNING: load average {meta['loadavg_start']}: other processes are running; "
              "timings will be noisy (see the min–max spread)")
    handles, meta["versions"], skipped, procs = start_workers(frameworks, args.threads,
                                                              out.parent)
    print(f"workers ready in {time.perf_counter() - t_start:.1f} s", flush=True)
    for fw, why in skipped.items():
        print(f"skipping {fw}: {why}")
    report = {"meta": meta, "skipped": skipped, "cases": []}
    try:
        for wl, batch in cases:
            print(f"{wl.name} batch {batch}: {wl.description}", flush=True)
            t0, load = time.perf_counter(), _loadavg()
            report["cases"].append(bench_case(wl, batch, handles, args))
            report["cases"][-1]["loadavg"] = load
            print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
            if args.quick:  # smoke-tested once is enough
                for fw in set(QUICK_ONCE) & set(report["cases"][-1]["frameworks"]):
                    handles.pop(fw)
    finally:
        for w in procs:
            w.close()
    if not args.no_startup and any(fw in handles for fw in GLASSNET):
        reps = 1 if args.quick else 5
        report["imports"] = measure_imports(args.threads, reps)
        train_cases = [(wl.name, b) for wl, b in cases if "train" in wl.modes]
        report["first_step"] = {f"{w} b{b}": measure_first_step((w, b), args.threads,
                                                                1 if args.quick else 3)
                                for w, b in (train_cases[:1] if args.quick else train_cases)}
    meta["loadavg_end"] = _loadavg()
    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
    table = markdown(report)
    print("\n" + table)
    out.write_text(json.dumps(report, indent=1))
    md.write_text(table + "\n")
    print(f"wrote {out} and {md} in {meta['wall_s']} s")
    return report


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
