"""Peak memory of `fit` next to what training needs in theory, and where the rest goes.

    PYTHONPATH=src python benchmarks/memory.py                 # W4 and W7, about a minute
    PYTHONPATH=src python benchmarks/memory.py --workloads W4 --epochs 1
    PYTHONPATH=src python benchmarks/memory.py --quick         # smoke run: W7 on 4,096 samples

Each workload runs in a fresh child process (`memory.py --child NAME`), in this order:

1. import numpy and glassnet (RSS "import"), load the data (RSS "data": the data set is the
   user's memory, reported apart and never counted against us);
2. warm-up: the same architecture one unit wide, `fit` on 2 batches, so that lazily
   imported modules and NumPy's caches are in place (a full-size warm-up would also pre-touch
   OpenBLAS' GEMM workspace, ~3 MB at W4, but its freed arrays would change glibc's state:
   see 6);
3. RSS "before" (gc'd), then build + compile the model, reset the kernel's high-water mark
   (`echo 5 > /proc/self/clear_refs`; where that is refused, a 1 ms VmRSS sampler), `fit`,
   read VmHWM: "peak". The initializers' float64 transients at build time are reported
   apart ("build peak"), since they are not training.
4. overhead = peak - before; theoretical = weights + gradients + optimizer slots + one
   batch of activations (below); ratio = overhead / theoretical (goal: <= 1.3).
4b. "2nd model": then the same build + fit of a second model of that shape, measured from
   its own "before" (the first one deleted, gc'd and trimmed): the overhead once the
   process's one-time costs (code pages of NumPy's and OpenBLAS' kernels for these shapes,
   OpenBLAS' GEMM workspace) are paid, as for every model after the first in a notebook.
5. tracemalloc (NumPy reports its buffers to it): the same build + fit on a fresh model,
   traced: "tracemalloc ratio" = traced peak of the fit (from before the build) / theoretical,
   the live-bytes figure free of allocator effects. Then 2 more steps where a profile hook
   snapshots the live allocations whenever the traced total reaches a new high, so the table
   lists what is alive at the step's peak, by source line.
6. each workload runs twice: with glibc's default malloc, and with
   `MALLOC_MMAP_THRESHOLD_=131072`. By default glibc raises its mmap threshold to the size of
   the last large block freed (up to 32 MB), after which big arrays live on the heap and
   their freed pages stay resident: the default figure includes that caching, the fixed
   threshold one is close to the live bytes (and tracemalloc's figure is exactly those).

Theoretical need, float32, for a batch of B samples:
- weights: every variable (trainable or not); gradients: the trainable ones;
- optimizer slots: `len(optimizer.slot_specs())` copies of the trainable weights
  (SGD without momentum: 0; Adam: m and v);
- activations kept for backward: the float32 input batch, then every layer's output (a
  Dense with relu/tanh/elu/selu is one fused node, one array; softmax/sigmoid keep the
  logits and the probabilities: two arrays; Flatten/Reshape are views: nothing), plus the
  label batch and the per-sample loss.
Scratch (the gradient of one activation during backward, the optimizer's `tmp`) is not in
the theoretical figure: it is what the 0.3 of headroom is for.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MB = 1024 * 1024

# name: architecture, optimizer, batch, data ("synthetic": N float32 normal samples)
WORKLOADS = {
    "W4": {"input_shape": (784,), "hidden": (2048, 2048), "classes": 10,
           "init": "glorot_uniform", "optimizer": "sgd", "batch": 512, "data": "synthetic",
           "samples": 8192,
           "description": "784→2048 relu→2048 relu→10 softmax, SGD(0.01), batch 512"},
    "W7": {"input_shape": (28, 28), "hidden": (128, 128), "classes": 10, "init": "he_normal",
           "optimizer": "adam", "batch": 32, "data": "fashion_mnist", "samples": 60000,
           "description": ("Fashion-MNIST 60k: Flatten→128 relu→128 relu→10 softmax (He), "
                           "Adam, batch 32")},
}


# ---- /proc/self/status --------------------------------------------------------------------
def trim() -> None:
    """gc, then hand the C heap's free pages back to the kernel (glibc `malloc_trim`), so
    that freed-but-resident memory cannot hide what the measured block allocates."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def vm(field: str) -> int:
    """VmRSS / VmHWM of this process, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where it is refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return vm("VmHWM") <= vm("VmRSS") + 64 * 1024
    except OSError:
        return False


class PeakRSS:
    """Peak RSS over a `with` block: VmHWM after a reset, else a 1 ms VmRSS sampler."""

    def __enter__(self):
        self.exact = reset_hwm()
        self.start_hwm, self.sampled = vm("VmHWM"), vm("VmRSS")
        if not self.exact:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.001):
            self.sampled = max(self.sampled, vm("VmRSS"))

    def __exit__(self, *exc):
        hwm = vm("VmHWM")
        if self.exact:
            self.peak = hwm
        else:
            self._stop.set()
            self._thread.join()
            # a new high-water mark is exact; otherwise the sampler's maximum (a lower bound)
            self.peak = hwm if hwm > self.start_hwm else self.sampled
        return False


# ---- model and theory ---------------------------------------------------------------------
def build_model(gn, spec: dict, width_scale: float = 1.0):
    layers = [gn.layers.Input(shape=spec["input_shape"])]
    if len(spec["input_shape"]) > 1:
        layers.append(gn.layers.Flatten())
    for units in spec["hidden"]:
        layers.append(gn.layers.Dense(max(1, int(units * width_scale)), activation="relu",
                                      kernel_initializer=spec["init"]))
    layers.append(gn.layers.Dense(spec["classes"], activation="softmax"))
    model = gn.Sequential(layers)
    optimizer = {"sgd": lambda: gn.optimizers.SGD(0.01),
                 "adam": lambda: gn.optimizers.Adam(1e-3)}[spec["optimizer"]]()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def theoretical_bytes(model, batch: int, label_itemsize: int = 8) -> dict:
    """Weights + gradients + optimizer slots + one batch of activations, in bytes."""
    weights = sum(v.data.nbytes for v in model.weights)
    grads = sum(v.data.nbytes for v in model.trainable_weights)
    slots = len(tuple(model.optimizer.slot_specs())) * grads
    itemsize = 4  # float32
    shape = tuple(model._input_batch_shape[1:])
    acts = batch * math.prod(shape) * itemsize  # the float32 input batch
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Flatten", "Reshape", "InputLayer"):
            shape = tuple(d for d in layer.compute_output_shape((batch,) + shape)[1:])
            continue
        if kind != "Dense":
            raise NotImplementedError(f"theoretical_bytes: no rule for {kind}")
        shape = shape[:-1] + (layer.units,)
        arrays = 1 if layer._fused_activation is not None or \
            layer.activation.__name__ == "linear" else 2
        acts += arrays * batch * math.prod(shape) * itemsize
    acts += batch * label_itemsize + batch * itemsize  # labels, per-sample loss
    return {"weights": weights, "gradients": grads, "slots": slots, "activations": acts,
            "total": weights + grads + slots + acts}


# ---- tracemalloc attribution --------------------------------------------------------------
class PeakSnapshot:
    """Snapshot of the live traced allocations at (within `slack` of) the traced peak."""

    def __init__(self):
        self.slack, self.best, self.snapshot = 0, 0, None

    def _hook(self, frame, event, arg):
        if event in ("return", "c_return"):
            current = tracemalloc.get_traced_memory()[0]
            if current > self.best + self.slack:
                self.snapshot = None  # free the previous one first
                self.best = current
                self.snapshot = tracemalloc.take_snapshot()

    def __enter__(self):
        tracemalloc.reset_peak()
        self.best = tracemalloc.get_traced_memory()[0]
        self.slack = max(16 * 1024, self.best // 200)  # few snapshots, each within 0.5%
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)
        self.peak = tracemalloc.get_traced_memory()[1]
        return False

    def top(self, n: int = 10) -> list:
        if self.snapshot is None:
            return []
        snap = self.snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__),
                                            tracemalloc.Filter(False, __file__)])
        rows = []
        for stat in snap.statistics("lineno")[:n]:
            frame = stat.traceback[0]
            rows.append({"site": _short(frame.filename) + f":{frame.lineno}",
                         "bytes": stat.size, "count": stat.count,
                         "code": _line(frame.filename, frame.lineno)})
        return rows


def _short(filename: str) -> str:
    parts = Path(filename).parts
    for root in ("glassnet", "numpy"):
        if root in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(root) - 1:])
    return Path(filename).name


def _line(filename: str, lineno: int) -> str:
    try:
        with open(filename) as f:
            return f.read().splitlines()[lineno - 1].strip()[:90]
    except (OSError, IndexError):
        return ""


# ---- child: one workload ------------------------------------------------------------------
def load_data(spec: dict, samples: int):
    import numpy as np
    if spec["data"] == "fashion_mnist":
        from glassnet.datasets import fashion_mnist
        (x, y), _ = fashion_mnist.load_data()
        x = x[:samples].astype("float32") / 255.0  # what the users' notes do
        return x, y[:samples].astype("int64")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, *spec["input_shape"]), dtype=np.float32)
    return x, rng.integers(0, spec["classes"], size=samples, dtype=np.int64)


def child(name: str, epochs: int, samples: int | None, trace: bool) -> dict:
    rss_start = vm("VmRSS")
    import glassnet as gn  # and NumPy
    rss_import = vm("VmRSS")
    spec = WORKLOADS[name]
    samples = samples or spec["samples"]
    batch = spec["batch"]
    x, y = load_data(spec, samples)
    trim()
    rss_data = vm("VmRSS")

    warm = build_model(gn, spec, width_scale=1 / 2048)  # one unit per hidden layer
    warm.fit(x[:2 * batch], y[:2 * batch], batch_size=batch, epochs=1, verbose=0)
    warm.predict(x[:batch], batch_size=batch, verbose=0)
    del warm
    trim()

    first = measure_fit(gn, spec, x, y, batch, epochs)
    model = first.pop("model")
    theory = theoretical_bytes(model, batch, y.dtype.itemsize)
    del model
    second = measure_fit(gn, spec, x, y, batch, epochs)
    second.pop("model")
    overhead = first["fit_peak"] - first["before"]
    overhead_second = second["fit_peak"] - second["before"]
    out = {
        "workload": name, "description": spec["description"], "epochs": epochs,
        "samples": samples, "batch": batch, "fit_s": round(first.pop("fit_s"), 2),
        "exact_hwm": first.pop("exact"),
        "rss": {"start": rss_start, "import": rss_import, "data": rss_data, **first},
        "dataset_bytes": int(x.nbytes + y.nbytes),
        "overhead": overhead, "theory": theory,
        "ratio": overhead / theory["total"],
        "overhead_second": overhead_second,
        "ratio_second": overhead_second / theory["total"],
        "growth_after_fit": first["after"] - first["built"],
    }
    gc.collect()
    if trace:
        out["trace"] = trace_step(gn, spec, x, y, batch, epochs)
    return out


def measure_fit(gn, spec, x, y, batch, epochs) -> dict:
    """Steps 3 and 4b of the docstring for one model: RSS before it is built, at the build's
    peak, once built, at the fit's peak and after it (bytes), the fit's seconds, whether the
    peak is exact, and the model. Run twice: the first model pays the process's one-time
    costs, the second (the first one gone) is what each further model in a notebook or in
    `glassnet lab` costs."""
    trim()
    before = vm("VmRSS")
    with PeakRSS() as build_peak:
        model = build_model(gn, spec)
    trim()  # NOTE: drops the initializers' freed float64 draws (the build peak, reported)
    built = vm("VmRSS")
    t0 = time.perf_counter()
    with PeakRSS() as fit_peak:
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
    fit_s = time.perf_counter() - t0
    gc.collect()
    return {"before": before, "built": built, "build_peak": build_peak.peak,
            "fit_peak": fit_peak.peak, "after": vm("VmRSS"), "fit_s": fit_s,
            "exact": fit_peak.exact, "model": model}


def trace_step(gn, spec, x, y, batch, epochs) -> dict:
    """The same fit under tracemalloc (live bytes, no allocator effects), then the live
    allocations at the peak of 2 more training steps."""
    tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0]
    model = build_model(gn, spec)
    tracemalloc.reset_peak()  # the build's float64 draws are not training
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
    fit_peak = tracemalloc.get_traced_memory()[1] - base
    with PeakSnapshot() as snap:
        model.fit(x[:2 * batch], y[:2 * batch], batch_size=batch, epochs=1, verbose=0)
    theory = theoretical_bytes(model, batch, y.dtype.itemsize)
    tracemalloc.stop()
    return {"peak": fit_peak, "ratio": fit_peak / theory["total"],
            "step_peak": snap.peak - base, "top": snap.top()}


# ---- parent: run children, write the report -----------------------------------------------
ALLOCATORS = {"glibc default": {}, "mmap threshold 128 KiB": {"MALLOC_MMAP_THRESHOLD_": "131072"}}


def run_child(name: str, args, allocator: str, trace: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name,
           "--epochs", str(args.epochs)]
    if args.samples:
        cmd += ["--samples", str(args.samples)]
    if not trace:
        cmd.append("--no-trace")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep +
               os.environ.get("PYTHONPATH", ""), **ALLOCATORS[allocator])
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{name} failed:\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]), allocator=allocator)


NOTES = "<!-- notes: hand-written below this line, kept when the tables are regenerated -->"


def mb(n: float) -> str:
    return f"{n / MB:.1f}"


def markdown(results: list) -> str:
    lines = [
        "# Peak memory of `fit`", "",
        ("`PYTHONPATH=src python benchmarks/memory.py` (see its docstring for the method). "
         "MB = 2^20 bytes. overhead = peak RSS during fit − RSS before the model was built "
         "(after imports, data and a warm-up); theoretical = weights + gradients + "
         "optimizer slots + one batch of activations; goal: ratio ≤ 1.3. 2nd model: the "
         "same for a second model of the same shape fitted after the first one is gone "
         "(the process's one-time costs paid)."), "",
        ("| workload | malloc | data set (user's) | before | fit peak | overhead | weights "
         "| grads | slots | activations | theoretical | **ratio** | tracemalloc ratio "
         "| overhead, 2nd model | ratio, 2nd model | fit s |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t, rss = r["theory"], r["rss"]
        tr = r.get("trace", {}).get("ratio")
        lines.append(
            f"| {r['workload']} ({r['samples']}×{r['epochs']} ep, b{r['batch']}) "
            f"| {r['allocator']} | {mb(r['dataset_bytes'])} | {mb(rss['before'])} "
            f"| {mb(rss['fit_peak'])} "
            f"| {mb(r['overhead'])} | {mb(t['weights'])} | {mb(t['gradients'])} "
            f"| {mb(t['slots'])} | {mb(t['activations'])} | {mb(t['total'])} "
            f"| **{r['ratio']:.2f}** | {'' if tr is None else f'{tr:.2f}'} "
            f"| {mb(r['overhead_second'])} | {r['ratio_second']:.2f} | {r['fit_s']} |")
    lines += ["", "RSS along the way (MB):", "",
              ("| workload | malloc | start | import | + data | before (after warm-up) "
               "| built | build peak | after fit |"), "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["rss"]
        lines.append(f"| {r['workload']} | {r['allocator']} | {mb(s['start'])} "
                     f"| {mb(s['import'])} | {mb(s['data'])} | {mb(s['before'])} | {mb(s['built'])} "
                     f"| {mb(s['build_peak'])} | {mb(s['after'])} |")
    for r in results:
        top = r.get("trace", {}).get("top")
        if not top:
            continue
        lines += ["", (f"## {r['workload']}: live allocations at the traced peak of a "
                       f"training step (tracemalloc, {mb(r['trace']['step_peak'])} MB "
                       "in all)"), "",
                  "| MB | count | site | code |", "|---|---|---|---|"]
        lines += [f"| {mb(t['bytes'])} | {t['count']} | `{t['site']}` | `{t['code']}` |"
                  for t in top]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="W4,W7")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--child", default=None)
    parser.add_argument("--out", default=str(HERE / "results" / "memory.json"))
    parser.add_argument("--md", default=str(HERE / "memory.md"))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.epochs, args.samples, not args.no_trace)))
        return
    if args.quick:
        args.workloads, args.samples = "W7", args.samples or 4096
        args.out, args.md = str(HERE / "results" / "memory-quick.json"), None
    results = []
    for name in args.workloads.split(","):
        for i, allocator in enumerate(ALLOCATORS):
            r = run_child(name, args, allocator, trace=i == 0 and not args.no_trace)
            results.append(r)
            print(f"{name} [{allocator}]: overhead {mb(r['overhead'])} MB / theoretical "
                  f"{mb(r['theory']['total'])} MB = {r['ratio']:.2f}  (data set "
                  f"{mb(r['dataset_bytes'])} MB, fit {r['fit_s']} s)", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    if args.md:
        md = Path(args.md)
        notes = md.read_text().partition(NOTES)[2] if md.exists() else ""
        md.write_text(markdown(results) + "\n" + NOTES + (notes or "\n"))
        print(markdown(results))


if __name__ == "__main__":
    main()
