"""Time a training step and inference: glassnet next to PyTorch, NumPy, JAX and Keras 3.

    PYTHONPATH=src python benchmarks/run.py                  # full run (a few minutes)
    PYTHONPATH=src python benchmarks/run.py --quick          # smoke run, < 60 s, asserts nothing
    PYTHONPATH=src python benchmarks/run.py --workloads W1,W3 --frameworks glassnet,torch

Every framework runs in its own worker process (`run.py --worker NAME`), so thread pools
(OpenBLAS, OpenMP, XLA) never share a process and Keras can pick its backend at import.
The parent only orchestrates: per case it builds every model from the same weights and
batch, checks that the first-step losses agree, warms up, picks N steps per block so that
a block lasts about `--target` seconds, then runs `--rounds` round-robin rounds (the order
rotates every round) and reports the median time per step and the min–max over rounds.
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

# key: (column label, worker process, extra environment)
FRAMEWORKS = {
    "glassnet": ("glassnet (train_on_batch)", "glassnet", {}),
    "glassnet-step": ("glassnet (step)", "glassnet", {}),
    "numpy": ("NumPy floor", "numpy", {}),
    "torch": ("PyTorch eager", "torch", {}),
    "jax": ("JAX jit", "jax", {"JAX_PLATFORMS": "cpu"}),
    "keras-jax": ("Keras 3 (jax)", "keras-jax", {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}),
    "keras-torch": ("Keras 3 (torch)", "keras-torch", {"KERAS_BACKEND": "torch"}),
}
INFER_LABELS = {"glassnet": "glassnet (predict_on_batch)",
                "glassnet-step": "glassnet (call under no_grad)"}
GLASSNET = ("glassnet", "glassnet-step")
MODES = ("train", "infer")


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
                import workloads
                wl = workloads.WORKLOADS[cmd["workload"]]
                x, y = workloads.make_batch(wl, cmd["batch"])
                t0 = time.perf_counter()
                factory = workloads.RUNNERS["keras" if worker.startswith("keras") else cmd["fw"]]
                runners[cmd["fw"]] = runner = factory(wl, x, y, workloads.make_weights(wl))
                loss = runner.first_loss()
                reply(loss=loss, first_s=time.perf_counter() - t0)
            elif cmd["cmd"] == "time":
                reply(s=runners[cmd["fw"]].timed(cmd["mode"], cmd["n"]))
            elif cmd["cmd"] == "drop":
                runners.clear()
                reply(ok=True)
        except Exception as exc:  # reported per cell; the worker keeps serving
            reply(error=f"{type(exc).__name__}: {exc}"[:300])


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
    """Wall time of fresh interpreters importing each library, and glassnet's slowest modules."""
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


def measure_first_step(case: tuple, threads: int) -> dict:
    """In a fresh process: import, build + compile + set_weights, first and later steps."""
    proc = _run_py(FIRST_STEP.format(w=case[0], b=case[1]), threads)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- orchestration ----------------------------------------------------------------------
def start_workers(frameworks: list, threads: int, log_dir: Path):
    """Start one process per needed worker; return {fw: Worker}, versions, skip notes."""
    procs, versions, skipped = {}, {}, {}
    for fw in frameworks:
        _, worker, extra = FRAMEWORKS[fw]
        if worker not in procs:
            procs[worker] = Worker(worker, child_env(extra, threads), log_dir)
    for name, w in procs.items():  # imports run in parallel; collect them now
        msg = w.ask(cmd="init", threads=threads)
        w.error = msg.get("error")
        versions[name] = msg.get("version")
    handles = {}
    for fw in frameworks:
        w = procs[FRAMEWORKS[fw][1]]
        if w.error:
            skipped[fw] = f"not importable: {w.error}"
        else:
            handles[fw] = w
    return handles, versions, skipped, list(procs.values())


def calibrate(w: Worker, fw: str, mode: str, target: float, quick: bool) -> tuple:
    """Warm up, then choose the steps per block so that a block lasts about `target`.

    Blocks grow until one lasts a tenth of the target; the fastest of two such blocks sets
    the step time, so that a burst of load during calibration does not shrink the blocks.
    """
    if quick:  # the single round is the warm-up too
        return {}, 1
    n = 1
    while True:
        msg = w.ask(cmd="time", fw=fw, mode=mode, n=n)  # also compiles the infer paths
        if "error" in msg or msg["s"] * n >= target / 10 or n >= 10_000:
            break
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


def bench_case(case: tuple, handles: dict, args) -> dict:
    """Set up every framework on one case, check losses, time round-robin rounds."""
    wl_name, batch = case
    out = {"workload": wl_name, "batch": batch, "first_loss": {}, "build_and_first_step_s": {},
           "errors": {}, "steps_per_block": {}, "results": {}}
    live = []
    for fw, w in handles.items():
        msg = w.ask(cmd="setup", fw=fw, workload=wl_name, batch=batch)
        if "error" in msg:
            out["errors"][fw] = msg["error"]
            continue
        out["first_loss"][fw] = msg["loss"]
        out["build_and_first_step_s"][fw] = msg["first_s"]
        live.append(fw)
    losses = list(out["first_loss"].values())
    if losses and (max(losses) - min(losses)) > 1e-3 * abs(statistics.median(losses)):
        out["loss_mismatch"] = True
        print(f"  WARNING {wl_name}/{batch}: first-step losses differ: {out['first_loss']}")
    blocks = {}
    for fw in list(live):
        for mode in MODES:
            msg, n = calibrate(handles[fw], fw, mode, args.target, args.quick)
            if "error" in msg:
                out["errors"][f"{fw}/{mode}"] = msg["error"]
            else:
                blocks[fw, mode] = n
                out["steps_per_block"][f"{fw}/{mode}"] = n
    samples = {key: [] for key in blocks}
    for r in range(args.rounds):
        order = live[r % len(live):] + live[:r % len(live)] if live else []
        for mode in MODES:
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
    for (fw, mode), s in samples.items():
        if s:
            out["results"].setdefault(fw, {})[mode] = summarise(s)
    for w in set(handles.values()):
        w.ask(cmd="drop")
    out["ratios"] = ratios(out["results"])
    return out


def ratios(results: dict) -> dict:
    """glassnet / PyTorch eager and glassnet / fastest peer (lowest median), per mode.

    Each ratio is the median over rounds of the ratio within a round: the two blocks ran
    seconds apart, so slow drifts in machine load cancel.
    """
    out = {}
    for mode in MODES:
        peers = {fw: r[mode] for fw, r in results.items() if fw not in GLASSNET and mode in r}
        fastest = min(peers, key=lambda fw: peers[fw]["median_ms"]) if peers else None
        for gfw in GLASSNET:
            g = results.get(gfw, {}).get(mode)
            if g is None:
                continue
            entry = out.setdefault(mode, {}).setdefault(gfw, {})
            for key, peer in (("vs_torch", "torch"), ("vs_fastest", fastest)):
                if peer in peers:
                    pairs = zip(g["samples_ms"], peers[peer]["samples_ms"])
                    entry[key] = statistics.median(a / b for a, b in pairs)
            if fastest:
                entry["fastest"] = fastest
    return out


# ---- reporting --------------------------------------------------------------------------
def _cell(r: dict | None) -> str:
    if not r:
        return "–"
    fmt = (lambda v: f"{v:.3g}") if r["median_ms"] < 100 else (lambda v: f"{v:.0f}")
    return f"{fmt(r['median_ms'])} ({fmt(r['min_ms'])}–{fmt(r['max_ms'])})"


def markdown(report: dict) -> str:
    fws = [fw for fw in FRAMEWORKS if fw in report["meta"]["frameworks"]]
    meta = report["meta"]
    lines = [f"# glassnet benchmarks ({meta['date']})", "",
             f"{meta['cpu']}, {meta['cores']} cores, {meta['threads']} threads per framework; "
             f"{meta['rounds']} round(s), blocks of ≥ {meta['target_s']} s; load average "
             f"{meta['loadavg_start']} → {meta['loadavg_end']}.", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v),
             "", "ms per step: median over rounds (min–max). Ratios: median over rounds of the "
             "ratio within each round, for glassnet (train_on_batch / predict_on_batch), "
             "with glassnet (step / call) in brackets; the fastest peer is the "
             "non-glassnet column with the lowest median.", ""]
    for mode, title in (("train", "Training step"), ("infer", "Inference")):
        labels = INFER_LABELS if mode == "infer" else {}
        head = ["case"] + [labels.get(fw, FRAMEWORKS[fw][0]) for fw in fws]
        head += ["gn / torch", "gn / fastest"]
        lines += [f"## {title} (ms)", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        for c in report["cases"]:
            row = [f"{c['workload']} b{c['batch']}"]
            row += [_cell(c["results"].get(fw, {}).get(mode)) for fw in fws]
            rat = c["ratios"].get(mode, {})
            tob, step = rat.get("glassnet", {}), rat.get("glassnet-step", {})

            def pair(key, tob=tob, step=step):
                a, b = tob.get(key), step.get(key)
                if a is None and b is None:
                    return "–"
                return (f"{a:.2f}×" if a else "–") + (f" [{b:.2f}×]" if b else "")
            fastest = tob.get("fastest") or step.get("fastest")
            row += [pair("vs_torch"), pair("vs_fastest") +
                    (f" {FRAMEWORKS[fastest][0]}" if fastest else "")]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if report.get("imports"):
        lines += ["## Start-up", "", "| what | median (s) |", "|---|---|"]
        for k, v in report["imports"].items():
            if "median_s" in v:
                lines.append(f"| `{k}` | {v['median_s']:.3f} |")
        slow = report["imports"].get("glassnet slowest modules (self ms)", {})
        lines += ["", "Slowest glassnet modules to import (self ms): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in slow.items()), ""]
    if report.get("first_step"):
        lines += ["glassnet in a fresh process (train_on_batch):", "",
                  "| case | import glassnet+workloads (s) | build+compile (s) | first step (ms) "
                  "| later step (ms) |", "|---|---|---|---|---|"]
        for k, v in report["first_step"].items():
            lines.append(f"| {k} | {v['import_s']:.3f} | {v['build_s']:.3f} | "
                         f"{v['first_step_s'] * 1e3:.1f} | {v['steady_step_s'] * 1e3:.2f} |")
        lines.append("")
    if report["cases"]:
        head = ["case"] + [FRAMEWORKS[fw][0] for fw in fws]
        lines += ["Build + compile + first training step in an already-imported worker (ms):",
                  "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for c in report["cases"]:
            firsts = c["build_and_first_step_s"]
            lines.append("| " + " | ".join([f"{c['workload']} b{c['batch']}"] + [
                f"{firsts[fw] * 1e3:.0f}" if fw in firsts else "–" for fw in fws]) + " |")
        lines.append("")
    notes = [f"- skipped {fw}: {why}" for fw, why in report["skipped"].items()]
    for c in report["cases"]:
        notes += [f"- {c['workload']} b{c['batch']} {k}: {v}" for k, v in c["errors"].items()]
        if c.get("loss_mismatch"):
            notes.append(f"- {c['workload']} b{c['batch']}: first-step losses differ "
                         f"{c['first_loss']}")
    if notes:
        lines += ["## Notes", ""] + notes + [""]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: one round of 1-step blocks, one small batch per workload")
    p.add_argument("--workloads", default="W1,W2,W3,W4")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                   help=f"subset of {','.join(FRAMEWORKS)}")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--target", type=float, default=0.2, help="seconds per timed block")
    p.add_argument("--pause", type=float, default=0.05, help="idle seconds between blocks")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-startup", action="store_true", help="skip import/first-step timing")
    p.add_argument("--out", type=Path, help="JSON path, table next to it (default "
                   "results/latest.json + results.md; --quick: results/quick.json + .md)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.pause = 1, 0.0
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.threads)
    sys.path.insert(0, str(HERE))
    import workloads
    names = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = [n for n in names if n not in workloads.WORKLOADS] + \
              [f for f in frameworks if f not in FRAMEWORKS]
    if unknown:
        raise SystemExit(f"unknown workload/framework {unknown}; choose from "
                         f"{list(workloads.WORKLOADS)} and {list(FRAMEWORKS)}")
    cases = [(n, b) for n in names for b in workloads.WORKLOADS[n].batch_sizes]
    if args.quick:  # smoke run: each workload once, at its smallest batch, at most 64
        cases = [(n, min(64, *workloads.WORKLOADS[n].batch_sizes)) for n in names]
    RESULTS.mkdir(exist_ok=True)
    t_start = time.perf_counter()
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(), "cpu": _cpu_name(),
            "cores": os.cpu_count(), "threads": args.threads, "rounds": args.rounds,
            "target_s": args.target, "quick": args.quick, "frameworks": frameworks,
            "loadavg_start": _loadavg()}
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print(f"WARNING: load average {meta['loadavg_start']}: other processes are running; "
              "timings will be noisy (see the min–max spread)")
    handles, meta["versions"], skipped, procs = start_workers(frameworks, args.threads, RESULTS)
    print(f"workers ready in {time.perf_counter() - t_start:.1f} s", flush=True)
    for fw, why in skipped.items():
        print(f"skipping {fw}: {why}")
    report = {"meta": meta, "skipped": skipped, "cases": []}
    try:
        for case in cases:
            print(f"{case[0]} batch {case[1]}: {workloads.WORKLOADS[case[0]].description}",
                  flush=True)
            t0, load = time.perf_counter(), _loadavg()
            report["cases"].append(bench_case(case, handles, args))
            report["cases"][-1]["loadavg"] = load
            print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        for w in procs:
            w.close()
    if not args.no_startup and any(fw in handles for fw in GLASSNET):
        reps = 1 if args.quick else 5
        report["imports"] = measure_imports(args.threads, reps)
        report["first_step"] = {f"{w} b{b}": measure_first_step((w, b), args.threads)
                                for w, b in (cases[:1] if args.quick else cases)}
    meta["loadavg_end"] = _loadavg()
    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
    table = markdown(report)
    print("\n" + table)
    out = args.out or RESULTS / ("quick.json" if args.quick else "latest.json")
    md = out.with_suffix(".md") if args.quick or args.out else HERE / "results.md"
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
