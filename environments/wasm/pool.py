"""A pool of worker processes that run untrusted modules, one run per worker at a time.

Workers are `python -m environments.wasm.worker` processes, started on demand (up to `size`, by
default one per core) and reused across runs, so their in-memory module caches stay warm. Each worker is
driven by one parent thread that sends a request and waits for its reply. A worker that dies mid-run
(a wasmtime abort, a signal, a kill) fails only that run, with `WorkerCrashed`; the next run starts a
fresh worker. Cancelling a running job kills its worker, which is how runs are stopped. A worker dies
with the process that started it (SIGKILL included), so a module mid-run never outlives its node.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Generic, TypeAlias, TypeVar

from apps.sdk.parent import PARENT_PID_ENV
from environments.wasm.errors import RunCancelled, WasmError, WorkerCrashed, WorkerTimeout
from environments.wasm.runs import (
    CompileLimits,
    CompileRequest,
    CompileResult,
    WasmLimits,
    WasmResult,
    WasmRun,
)
from environments.wasm.wire import Reply, receive_reply

R = TypeVar("R", WasmResult, CompileResult)

REPLY_GRACE_S = 30.0
"""How much longer than a run's deadline (and its compile's) a worker may take to answer."""


class WasmJob(Generic[R]):
    """One request in the pool: its future, and a way to cancel it (killing its worker if running)."""

    def __init__(self, request: WasmRun | CompileRequest, reply_type: type[R], timeout_s: float) -> None:
        self.request = request
        self.reply_type: type[R] = reply_type
        self.timeout_s = timeout_s
        self.future: Future[R] = Future()
        self.cancel_requested = False
        self._worker: _Worker | None = None

    def cancel(self) -> None:
        """Cancel the job: a queued one never runs; a running one's worker is killed (RunCancelled)."""
        self.cancel_requested = True
        if not self.future.cancel() and self._worker is not None:
            self._worker.kill_if_running(self)

    def deliver(self, reply: Reply) -> None:
        """Complete the job with a worker's reply (an error if it is not the kind expected)."""
        if isinstance(reply, self.reply_type):
            self.future.set_result(reply)
        else:
            self.future.set_exception(WasmError(f"the wasm worker sent an unexpected {type(reply).__name__}"))

    def result(self, timeout: float | None = None) -> R:
        """Block until the job is done; its reply, or its error raised."""
        return self.future.result(timeout)

    async def wait(self) -> R:
        """Await the job; cancelling the awaiting task cancels the job."""
        try:
            return await asyncio.wrap_future(self.future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.future.cancelled() and not (task is not None and task.cancelling()):
                raise RunCancelled("the run was cancelled before it started") from None
            self.cancel()
            raise


AnyJob: TypeAlias = WasmJob[WasmResult] | WasmJob[CompileResult]


class _Worker:
    """One worker process and the parent thread that drives it."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self._pool = pool
        self._index = index
        self._inbox: queue.SimpleQueue[AnyJob | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._current: AnyJob | None = None
        self._thread = threading.Thread(target=self._loop, name=f"wasm-worker-{index}", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def assign(self, job: AnyJob) -> None:
        job._worker = self
        self._inbox.put(job)

    def shut_down(self) -> None:
        """Let the worker finish its current job, then end it and its thread."""
        self._inbox.put(None)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def kill_if_running(self, job: AnyJob) -> None:
        with self._lock:
            if self._current is job and self._process is not None:
                self._process.kill()

    def cancel_current(self) -> None:
        with self._lock:
            current = self._current
        if current is not None:
            current.cancel()

    def _loop(self) -> None:
        while (job := self._inbox.get()) is not None:
            if job.future.set_running_or_notify_cancel():
                self._execute(job)
            self._pool._worker_idle(self)
        self._stop_process()

    def _execute(self, job: AnyJob) -> None:
        with self._lock:
            self._current = job
        try:
            reply = self._exchange(job)
        except WasmError as exc:
            job.future.set_exception(exc)
        except Exception as exc:  # e.g. the worker could not be started: fail the job, keep the thread
            job.future.set_exception(WasmError(f"the wasm worker failed: {type(exc).__name__}: {exc}"))
        else:
            job.deliver(reply)
        finally:
            with self._lock:
                self._current = None

    def _exchange(self, job: AnyJob) -> Reply:
        conn = self._ensure_process()
        if job.cancel_requested:
            raise RunCancelled("the run was cancelled before it started")
        limit = (job.request.limits or WasmLimits()) if isinstance(job.request, WasmRun) else WasmLimits()
        try:
            conn.send(job.request)
            if not conn.poll(job.timeout_s):
                self._kill()
                raise WorkerTimeout(
                    f"the wasm worker did not answer within {job.timeout_s:g} s (a blocking host call?); "
                    "it was killed"
                )
            return receive_reply(conn, max(limit.stdout_bytes, limit.stderr_bytes))
        except (EOFError, OSError, ValueError, KeyError, TypeError) as exc:
            cause = self._kill()
            if job.cancel_requested:
                raise RunCancelled("the run was cancelled before it finished") from exc
            raise WorkerCrashed(
                f"the wasm worker process {cause} while running module {job.request.module.name} "
                f"(sha256 {job.request.sha256}); it has been replaced"
            ) from exc

    def _ensure_process(self) -> Connection:
        if self._process is None or self._conn is None or self._process.poll() is not None:
            self._kill()
            parent_end, child_end = socket.socketpair()
            with child_end:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "environments.wasm.worker",
                        str(child_end.fileno()),
                        str(self._pool.cache_dir),
                        json.dumps(dataclasses.asdict(self._pool.compile_limits)),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    pass_fds=[child_end.fileno()],
                    env={**os.environ, PARENT_PID_ENV: str(os.getpid())},
                )
            with self._lock:
                self._process, self._conn = process, Connection(parent_end.detach())
        return self._conn

    def _kill(self) -> str:
        """Make sure the process is gone; describe how it ended."""
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return "was not running"
        if process.poll() is None:
            process.kill()
        code = process.wait()
        if code < 0:
            return f"(pid {process.pid}) was killed by {signal.Signals(-code).name}"
        return f"(pid {process.pid}) exited with code {code}"

    def _stop_process(self) -> None:
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if conn is not None:
            conn.close()  # the worker sees EOF and exits
        if process is not None:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class WorkerPool:
    """Runs requests on up to `size` worker processes sharing the compile cache in `cache_dir`."""

    def __init__(self, size: int, cache_dir: Path, compile_limits: CompileLimits | None = None) -> None:
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self.size = size
        self.cache_dir = cache_dir
        self.compile_limits = compile_limits or CompileLimits()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._pending: collections.deque[AnyJob] = collections.deque()
        self._closed = False

    @property
    def worker_pids(self) -> list[int]:
        """Pids of the worker processes alive now."""
        return [pid for pid in (worker.pid for worker in self._workers) if pid is not None]

    def submit_run(self, run: WasmRun) -> WasmJob[WasmResult]:
        limits = run.limits or WasmLimits()
        job = WasmJob(run, WasmResult, limits.wall_time_s + self.compile_limits.time_s + REPLY_GRACE_S)
        self._submit(job)
        return job

    def submit_compile(self, request: CompileRequest) -> WasmJob[CompileResult]:
        job = WasmJob(request, CompileResult, self.compile_limits.time_s + REPLY_GRACE_S)
        self._submit(job)
        return job

    def close(self) -> None:
        """Cancel queued and running jobs, end every worker process and its thread."""
        with self._lock:
            self._closed = True
            pending, self._pending = list(self._pending), collections.deque()
            workers = list(self._workers)
        for job in pending:
            job.future.cancel()
        for worker in workers:
            worker.cancel_current()
            worker.shut_down()
        for worker in workers:
            worker.join(10)

    def _submit(self, job: AnyJob) -> None:
        with self._lock:
            if self._closed:
                raise RunCancelled("the wasm worker pool is closed")
            if self._idle:
                worker = self._idle.pop()
            elif len(self._workers) < self.size:
                worker = _Worker(self, len(self._workers))
                self._workers.append(worker)
            else:
                self._pending.append(job)
                return
            worker.assign(job)

    def _worker_idle(self, worker: _Worker) -> None:
        with self._lock:
            while self._pending:
                job = self._pending.popleft()
                if not job.future.cancelled():
                    worker.assign(job)
                    return
            if not self._closed:
                self._idle.append(worker)
