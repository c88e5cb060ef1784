"""Worker processes for sweep points: fresh interpreters running ``python -m goldstone.lab.workers``.

Unlike a `multiprocessing` pool (spawn or forkserver), a worker never imports the caller's
``__main__``, so ``goldstone.sweep(..., workers=2)`` works from a plain script with no
``if __name__ == "__main__":`` guard. The parent sends one JSON task per line on the worker's
stdin; the worker answers one JSON line per task. A worker dies with its parent (Linux), runs on
one torch thread, and writes anything the experiments print to a log file, never to the terminal.
"""

from __future__ import annotations

import ctypes
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
    import importlib

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
