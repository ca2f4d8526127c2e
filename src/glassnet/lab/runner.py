"""Runs experiments: builds the task list, executes it (in parallel), summarises, reports.

A task is a plain picklable tuple `(experiment_name, config, seed)` and `execute_task`
is a top-level function, so any executor that offers `map(fn, iterable)` can run the
list: the default `concurrent.futures.ProcessPoolExecutor` (`--jobs N`), or a cluster.

Plugging in Ray (not a glassnet dependency; install it yourself)::

    import ray
    from ray.util.multiprocessing import Pool     # a multiprocessing.Pool on the cluster
    from glassnet import lab

    # one BLAS thread per worker process: parallelism comes from the tasks
    ray.init(address="auto", runtime_env={"env_vars": {"OPENBLAS_NUM_THREADS": "1"}})
    lab.run(["optimizers", "transfer"], mode="full", out="report", executor=Pool())

or with plain Ray tasks::

    class RayExecutor:
        def map(self, fn, tasks):
            remote = ray.remote(num_cpus=1)(fn)
            return ray.get([remote.remote(t) for t in tasks])

    lab.run(lab.names(), mode="full", executor=RayExecutor())

Each worker must be able to `import glassnet` (same version) and read the data
(Fashion-MNIST files or the generated fallback); outputs come back as plain values and the
figures are drawn in the calling process.
"""
from __future__ import annotations

import multiprocessing
import os
import platform
import sys
import time
import traceback

from . import base, experiments, report as report_mod

__all__ = ["execute_task", "make_tasks", "run", "run_tasks"]


def _limit_threads():
    """One BLAS thread per worker: parallelism comes from processes, not from BLAS."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from .. import backend
    backend.set_blas_threads(1)


def execute_task(task):
    """Run one task `(experiment_name, config, seed)`; never raises.

    Returns:
        {"experiment", "config", "seed", "output" (dict or None), "error" (traceback text
        or None), "seconds"}.
    """
    name, config, seed = task
    if multiprocessing.parent_process() is not None:  # a pool worker (not the caller)
        _limit_threads()
    start, cpu = time.perf_counter(), time.process_time()
    try:
        output, error = experiments.get(name).run(dict(config), int(seed)), None
    except Exception:  # a failed run is reported, not fatal to the whole lab
        output, error = None, traceback.format_exc()
    return {"experiment": name, "config": config, "seed": int(seed), "output": output,
            "error": error, "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu}


def make_tasks(names, mode):
    """The task list of the named experiments, costliest first (better load balance)."""
    tasks = []
    for name in names:
        for config, seed in experiments.get(name).tasks(mode):
            tasks.append((name, dict(config), int(seed)))
    return sorted(tasks, key=lambda t: -float(t[1].get("cost", 1.0)))


def run_tasks(tasks, jobs=1, executor=None, on_result=None):
    """Execute tasks; calls `on_result(result)` as each finishes; returns all results.

    Args:
        tasks: list of (experiment_name, config, seed).
        jobs: worker processes when no executor is given; 1 runs in this process.
        executor: any object with `map(fn, iterable)` (Ray, Dask, a custom pool).
        on_result: callback for progress and streaming summaries.
    """
    results = []

    def done(result):
        results.append(result)
        if on_result is not None:
            on_result(result)

    if executor is not None:
        for result in executor.map(execute_task, tasks):
            done(result)
        return results
    if jobs <= 1 or len(tasks) <= 1:
        from .. import backend
        saved = backend.get_blas_threads()
        backend.set_blas_threads(1)  # as in a worker, and restored for the caller
        try:
            for task in tasks:
                done(execute_task(task))
        finally:
            if saved is not None:
                backend.set_blas_threads(saved)
        return results
    import concurrent.futures as cf
    # NOTE: spawn, not fork: a forked child inherits the parent's BLAS thread pool state
    # (and any lock held by one of its threads), a known source of hangs.
    # The environment is inherited at spawn, before the child loads NumPy and its BLAS.
    ctx = multiprocessing.get_context("spawn")
    saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                             "MKL_NUM_THREADS")}
    os.environ.update({k: "1" for k in saved})
    try:
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                                    initializer=_limit_threads) as pool:
            futures = [pool.submit(execute_task, t) for t in tasks]
            for fut in cf.as_completed(futures):
                done(fut.result())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return results


def _summarize(name, mode, results):
    """Claims, tables and figures of one experiment (errors become failed claims)."""
    module = experiments.get(name)
    ok = [base.TaskResult(r["config"], r["seed"], r["output"]) for r in results
          if r["error"] is None]
    ok.sort(key=lambda r: r.seed)  # completion order varies with the executor
    errors = [r for r in results if r["error"] is not None]
    start = time.perf_counter()
    try:
        outcome = module.summarize(ok, mode)
    except Exception:
        outcome = base.Outcome(claims=[base.Claim(
            text=f"{name}: the experiment could not be summarised", supported=False,
            note=traceback.format_exc(limit=6))])
    if errors:
        first = errors[0]
        outcome.notes.append(
            f"{len(errors)} of {len(results)} runs failed; first failure "
            f"(config {first['config']}, seed {first['seed']}):\n{first['error']}")
    summary_seconds = time.perf_counter() - start
    seconds = sum(r["seconds"] for r in results) + summary_seconds
    cpu = sum(r.get("cpu_seconds", 0.0) for r in results) + summary_seconds
    return {"name": name, "title": module.TITLE, "setup": module.SETUP,
            "outcome": outcome, "runs": len(results), "failed": len(errors),
            "seconds": seconds, "cpu_seconds": cpu, "data": _data_sources(results)}


def _data_sources(results):
    found = sorted({str(r["output"].get("data")) for r in results
                    if r["output"] and r["output"].get("data")})
    return ", ".join(found)


def run(names=None, mode="quick", out="report", jobs=None, executor=None, seeds=None,
        log=print):
    """Run experiments and write `out/index.html` and `out/results.json`.

    Args:
        names: experiment names (default: all, in the lab's order).
        mode: "smoke" (seconds, mechanics only), "quick" (small subsets, minutes) or
            "full" (the published setups where affordable).
        out: output directory (created).
        jobs: worker processes (default: the number of CPUs); ignored with `executor`.
        executor: an object with `map(fn, tasks)` to run the tasks elsewhere (see the
            module docstring for Ray).
        seeds: seeds per configuration (default 1 / 3 / 5 by mode).
        log: where progress lines go (`print`; None for silence).

    Returns:
        The list of results.json entries.
    """
    names = list(experiments.names() if names is None else names)
    for name in names:
        experiments.get(name)  # fail early on a typo, with the list of valid names
    base.set_seed_count(seeds)
    log = log or (lambda *a, **k: None)
    jobs = int(jobs or os.cpu_count() or 1)
    start = time.perf_counter()
    try:
        tasks = make_tasks(names, mode)
        pending = {n: sum(t[0] == n for t in tasks) for n in names}
        by_name = {n: [] for n in names}
        summaries = {}
        where = "an executor" if executor is not None else \
            f"{min(jobs, len(tasks))} process{'es' if min(jobs, len(tasks)) > 1 else ''}"
        log(f"glassnet lab: {len(names)} experiment(s), {len(tasks)} runs, mode {mode}, "
            f"on {where}")

        def on_result(result):
            name = result["experiment"]
            by_name[name].append(result)
            pending[name] -= 1
            if pending[name] == 0:
                summaries[name] = s = _summarize(name, mode, by_name[name])
                claims = s["outcome"].claims
                good = sum(bool(c.supported) for c in claims)
                log(f"  {name:<20} {s['runs']:>3} runs {s['seconds']:7.1f} s "
                    f"({s['cpu_seconds']:.1f} s CPU)   "
                    f"claims supported: {good}/{len(claims)}"
                    + (f"   ({s['failed']} runs FAILED)" if s["failed"] else ""))
                for c in claims:
                    if c.note.startswith("Traceback") or s["failed"]:
                        err = c.note if c.note.startswith("Traceback") else next(
                            r["error"] for r in by_name[name] if r["error"])
                        log("    " + err.strip().splitlines()[-1])
                        break

        run_tasks(tasks, jobs=jobs, executor=executor, on_result=on_result)
        for name in names:  # an experiment without tasks still gets summarised
            if name not in summaries:
                summaries[name] = _summarize(name, mode, by_name[name])
    finally:
        base.set_seed_count(None)
    wall = time.perf_counter() - start
    meta = {"mode": mode, "wall_seconds": wall, "jobs": jobs if executor is None else None,
            "executor": type(executor).__name__ if executor is not None else
            ("ProcessPoolExecutor" if jobs > 1 else "in-process"),
            "python": sys.version.split()[0], "machine": platform.platform(),
            "cpus": os.cpu_count(), "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "version": _version()}
    entries = report_mod.write(out, [summaries[n] for n in names], meta)
    good = sum(e["supported"] for e in entries)
    log(f"{good}/{len(entries)} claims supported; {wall:.1f} s wall for the runs, "
        f"{time.perf_counter() - start:.1f} s with the report: "
        f"{os.path.join(out, 'index.html')}")
    return entries


def _version():
    from .. import __version__
    return __version__
