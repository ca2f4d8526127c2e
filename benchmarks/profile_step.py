"""Profile glassnet's training step: where the time goes and how many NumPy calls it makes.

    PYTHONPATH=src python benchmarks/profile_step.py                # W1 and W2, batch 32
    PYTHONPATH=src python benchmarks/profile_step.py --cases W3:256 --steps 100 --top 30

For each case and for glassnet's `train_on_batch` and `_train_batch` ("step") paths:

1. cProfile over `--steps` steps: the functions with the largest own time per step. NumPy
   ufuncs and operators (`a @ b`, `np.exp`) are not calls the profiler sees, so their
   cost lands in the Python function that runs them (e.g. a VJP lambda in autograd/ops.py).
2. A count of NumPy calls per step, made by feeding the input batch as an ndarray subclass
   that counts every ufunc (operators, reductions, matmul) and every NumPy API function it
   reaches. Everything computed from the batch (forward, loss, backward) is counted; the
   optimizer's update on its own flat buffers is not (it never touches the batch). The
   hand-written NumPy floor is counted too, for reference (its optimizer update included,
   listed separately).
"""
from __future__ import annotations

import argparse
import cProfile
import collections
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads  # noqa: E402

COUNTS: collections.Counter = collections.Counter()
_DEPTH = [0]  # calls made inside a counted NumPy function are its own business


class Counted(np.ndarray):
    """An ndarray that counts the NumPy calls it takes part in (results stay Counted)."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if not _DEPTH[0]:
            COUNTS[f"{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")] += 1
        inputs = tuple(_plain(i) for i in inputs)
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is not None:  # results written in place stay countable too
            return _counted(out[0] if len(out) == 1 else tuple(out))
        return _counted(result)

    def __array_function__(self, func, types, args, kwargs):
        if not _DEPTH[0]:
            COUNTS[f"np.{func.__name__}"] += 1
        _DEPTH[0] += 1
        try:
            return super().__array_function__(func, types, args, kwargs)
        finally:
            _DEPTH[0] -= 1


def _plain(a):
    return a.view(np.ndarray) if isinstance(a, Counted) else a


def _counted(r):
    if isinstance(r, tuple):
        return tuple(_counted(x) for x in r)
    return r.view(Counted) if type(r) is np.ndarray else r


def _counted_tree(value):
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.view(Counted)
    if isinstance(value, list):
        return [_counted_tree(v) for v in value]
    return value


def numpy_calls(runner, steps: int) -> collections.Counter:
    """NumPy calls per training step reachable from the (Counted) input batch.

    glassnet gets the batch as a `glassnet.Tensor`, because its input checks call
    `np.asarray`, which would turn the subclass back into a plain ndarray. The floor's
    buffers are all made Counted, so its count includes its optimizer update.
    """
    if hasattr(runner, "gn"):
        runner.x = runner.gn.Tensor(runner.x.view(Counted))
    else:  # the floor keeps preallocated buffers: count through all of them
        for name, value in vars(runner).items():
            setattr(runner, name, _counted_tree(value))
    runner.train_step()  # the first step may build caches
    COUNTS.clear()
    for _ in range(steps):
        runner.train_step()
    per_step = collections.Counter({k: v / steps for k, v in COUNTS.items()})
    if hasattr(runner, "gn"):
        return per_step, 0
    COUNTS.clear()
    runner._update()
    update = sum(COUNTS.values())
    return per_step - COUNTS, update


def profile(runner, steps: int, top: int) -> None:
    for _ in range(5):
        runner.train_step()
    t0 = time.perf_counter()
    for _ in range(steps):
        runner.train_step()
    per_step = (time.perf_counter() - t0) / steps
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        runner.train_step()
    prof.disable()
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    total = sum(v[2] for v in stats.values())
    calls = sum(v[1] for v in stats.values()) / steps
    print(f"  {per_step * 1e3:.2f} ms/step unprofiled; {calls:.0f} Python-visible calls/step")
    print(f"  {'own %':>6} {'own µs/step':>11} {'cum µs/step':>11} {'calls/step':>10}  function")
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    for (file, line, name), (_, nc, tt, ct, _) in rows:
        where = _short(file, line, name)
        print(f"  {100 * tt / total:6.1f} {tt / steps * 1e6:11.1f} {ct / steps * 1e6:11.1f} "
              f"{nc / steps:10.1f}  {where}")
    groups = collections.Counter()
    for (file, line, name), v in stats.items():
        groups[_group(file, name)] += v[2]
    print("  own time by area: " + ", ".join(
        f"{k} {100 * t / total:.0f}%" for k, t in groups.most_common()))


def _short(file: str, line: int, name: str) -> str:
    if file == "~":
        return name
    parts = Path(file).parts
    key = "glassnet" if "glassnet" in parts else ("numpy" if "numpy" in parts else None)
    tail = "/".join(parts[parts.index(key):]) if key else Path(file).name
    return f"{tail}:{line} {name}"


def _group(file: str, name: str) -> str:
    if file == "~":
        return "numpy C methods" if "numpy" in name else "builtins"
    parts = Path(file).parts
    if "glassnet" in parts:
        i = parts.index("glassnet")
        return "glassnet/" + "/".join(parts[i + 1:-1] or [Path(file).stem])
    return "numpy (Python)" if "numpy" in parts else "other"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default="W1:32,W2:32", help="comma list of WORKLOAD:BATCH")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args(argv)
    for spec in args.cases.split(","):
        name, batch = spec.split(":")
        wl = workloads.WORKLOADS[name.upper()]
        x, y = workloads.make_batch(wl, int(batch))
        weights = workloads.make_weights(wl)
        print(f"\n=== {wl.name} batch {batch}: {wl.description}")
        counts = {}
        for label, fw in (("glassnet (train_on_batch)", "glassnet"),
                          ("glassnet (step)", "glassnet-step")):
            print(f"\n-- {label}")
            profile(workloads.RUNNERS[fw](wl, x, y, weights), args.steps, args.top)
        for label, fw in (("glassnet (step)", "glassnet-step"), ("NumPy floor", "numpy")):
            counts[label] = numpy_calls(workloads.RUNNERS[fw](wl, x, y, weights), 20)
        print("\n-- NumPy calls per step: forward + loss + backward (optimizer update apart)")
        for label, (c, update) in counts.items():
            top = ", ".join(f"{k} {v:g}" for k, v in c.most_common(12))
            extra = f" (+ {update} in its optimizer update)" if update else ""
            print(f"  {label}: {sum(c.values()):g} calls{extra} — {top}")


if __name__ == "__main__":
    main()
