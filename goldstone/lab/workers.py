"""Worker processes for sweep points and audit checkpoints: fresh interpreters running
``python -m goldstone.lab.workers``, or Ray tasks (`run_tasks`).

Unlike a `multiprocessing` pool (spawn or forkserver), a worker never imports the caller's
``__main__``, so ``goldstone.sweep(..., workers=2)`` works from a plain script with no
``if __name__ == "__main__":`` guard. The parent sends one JSON task per line on the worker's
stdin; the worker answers one JSON line per task. A worker dies with its parent (Linux), runs on
one torch thread, and writes anything the experiments print to a log file, never to the terminal.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from goldstone.core.errors import GoldstoneError

PARENT = "GOLDSTONE_WORKER_PARENT"


class PointError(GoldstoneError):
    """A sweep point failed; the message is the point's own error."""


def run_in_workers(tasks: list[dict[str, Any]], workers: int, target: str, log: Path,
                   on_done: Callable[[int], None]) -> None:
    """Call `target` ("module:function") with each task's keyword arguments in `workers` worker
    processes; `on_done(i)` after task i finishes. The first failing task stops the others and
    raises its error (a `PointError` with the point's own message for a `GoldstoneError`)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(tasks)):
        pending.put(i)
    failures: list[BaseException] = []
    stop = threading.Event()
    with open(log, "ab") as log_file:
        env = {**os.environ, PARENT: str(os.getpid()), "OMP_NUM_THREADS": "1"}
        procs = [subprocess.Popen([sys.executable, "-m", "goldstone.lab.workers", target], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=log_file, env=env, text=True)
                 for _ in range(min(workers, len(tasks)))]

        def drive(proc: subprocess.Popen) -> None:
            while not stop.is_set():
                try:
                    i = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    proc.stdin.write(json.dumps(tasks[i]) + "\n")
                    proc.stdin.flush()
                    reply = proc.stdout.readline()
                except OSError:
                    reply = ""
                answer = json.loads(reply) if reply else None
                if answer is None:
                    failures.append(GoldstoneError(f"a sweep worker died (exit code {proc.wait()}); see {log}"))
                elif "error" in answer:
                    failures.append(PointError(answer["error"]) if answer["user"] else RuntimeError(answer["error"]))
                else:
                    on_done(i)
                    continue
                stop.set()
                return

        threads = [threading.Thread(target=drive, args=(proc,), daemon=True) for proc in procs]
        finished = False
        try:
            for thread in threads:
                thread.start()
            while not stop.is_set() and any(thread.is_alive() for thread in threads):
                stop.wait(0.2)
            finished = not stop.is_set()
        finally:
            stop.set()
            for proc in procs:
                if finished:
                    proc.stdin.close()
                else:  # a failure or an interrupt: stop the other points now
                    proc.kill()
                proc.wait()
    if failures:
        raise failures[0]


def run_tasks(tasks: list[dict[str, Any]], target: str, workers: int = 1, backend: str = "local",
              address: str | None = None, log: Path | None = None, on_done: Callable[[int], None] = lambda i: None
              ) -> None:
    """Call `target` ("module:function") with each task's keyword arguments: in this process
    (one worker), in `workers` worker processes (`run_in_workers`, output to `log`), or as Ray
    tasks of one CPU each on a local cluster of `workers` CPUs or the cluster at `address`;
    `on_done(i)` after task i finishes."""
    if not tasks:
        return
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)
    if backend == "ray":
        _run_ray(tasks, function, workers, address, on_done)
    elif workers == 1 or len(tasks) == 1:
        for i, task in enumerate(tasks):
            function(**task)
            on_done(i)
    else:
        run_in_workers(tasks, workers, target, log, on_done)


def _run_ray(tasks: list[dict[str, Any]], function: Callable, workers: int, address: str | None,
             on_done: Callable[[int], None]) -> None:
    from goldstone.core.extras import optional_import

    ray = optional_import("ray", "ray", "--backend ray")
    started = not ray.is_initialized()
    if started:
        kwargs = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
        try:
            ray.init(**kwargs, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise GoldstoneError(f"--ray-address {address}: no Ray cluster could be reached there "
                                 f"({str(err).strip().splitlines()[0][:160]})") from None
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(function)
        index = {remote.remote(**task): i for i, task in enumerate(tasks)}
        pending = list(index)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)
            on_done(index[done[0]])
    finally:
        if started:
            ray.shutdown()


def _die_with_parent() -> None:
    """SIGKILL this process when its parent dies (Linux); exit now if it already has."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if str(os.getppid()) != os.environ.get(PARENT, str(os.getppid())):
        os._exit(1)


def main(target: str) -> None:
    _die_with_parent()
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the experiments print goes to the log, not into the answers
    import torch

    torch.set_num_threads(1)
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)
    for line in sys.stdin:
        try:
            function(**json.loads(line))
            answer: dict[str, Any] = {"ok": True}
        except GoldstoneError as err:
            answer = {"error": str(err), "user": True}
        except Exception:  # reported to the parent, which raises it there
            answer = {"error": traceback.format_exc(), "user": False}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main(sys.argv[1])
