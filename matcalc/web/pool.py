"""Derivations in worker processes, each under a time limit: a runaway one is
killed (and its worker replaced) while the others go on answering.

Imports matcalc.web.service (in the workers) and the standard library.  A
thread or an asyncio task cannot be stopped in the middle of Python code; a
process can, which is why concurrent.futures' pools (which cannot cancel a
running task) are not used.  Each worker also has an address-space limit, so a
derivation that grows without end fails with MemoryError instead of taking the
machine's memory.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os

from . import service

MEMORY_LIMIT = 4 << 30          # bytes of address space per worker
MAX_TASKS = 500                 # a worker is replaced after this many derivations (caches stay bounded)


def _work(conn, memory_limit: int) -> None:
    """A worker's loop: a request in, (status, JSON object) out, until the pipe closes."""
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    except (ImportError, ValueError, OSError):       # not on this platform: the time limit still holds
        pass
    # warm up (imports, the grammar, NumPy for the check) before the first request's clock starts
    service.answer({"expr": "x'*A*x", "wrt": ["x"], "check": True})
    conn.send("ready")
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(service.answer(request))


class _Worker:
    def __init__(self, context, memory_limit: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_work, args=(child, memory_limit), daemon=True)
        self.process.start()
        child.close()
        self.tasks = 0

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


class Pool:
    """`await pool.answer(body)` -> (status, JSON object), in a worker, within `time_limit` s."""

    def __init__(self, workers: int | None = None, time_limit: float = 10.0, max_waiting: int = 200,
                 memory_limit: int = MEMORY_LIMIT):
        self.size = workers or max(2, os.cpu_count() or 2)
        self.time_limit = time_limit
        self.max_waiting = max_waiting
        self.memory_limit = memory_limit
        self._context = multiprocessing.get_context("spawn")   # no copy of the server's threads or sockets
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()
        self._waiting = 0
        self._replacing: set[asyncio.Future] = set()
        self._closed = False

    async def start(self) -> None:
        self._idle = asyncio.Queue()
        await asyncio.gather(*(self._spawn() for _ in range(self.size)))

    async def _spawn(self) -> None:
        """A new worker joins the idle queue once it says it is ready."""
        worker = _Worker(self._context, self.memory_limit)
        self._all.add(worker)
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = worker.conn.fileno()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
            worker.conn.recv()
        except (EOFError, OSError):
            self._all.discard(worker)
            raise RuntimeError("a derivation worker could not start") from None
        finally:
            loop.remove_reader(fd)
        self._idle.put_nowait(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        self._all.discard(worker)
        if self._closed:
            return
        self._replacing.add(asyncio.ensure_future(self._spawn()))
        self._replacing = {t for t in self._replacing if not t.done()}   # keep references until done

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._all]

    async def answer(self, body) -> tuple[int, dict]:
        if self._waiting >= self.max_waiting:
            return 503, service.error_body("busy", "the server is busy: try again in a moment")
        self._waiting += 1
        try:
            worker = await self._idle.get()
        finally:
            self._waiting -= 1
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = worker.conn.fileno()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            worker.conn.send(body)
            await asyncio.wait_for(ready, self.time_limit)
            reply = worker.conn.recv()
        except asyncio.TimeoutError:
            loop.remove_reader(fd)
            self._retire(worker)
            return 400, service.error_body(
                "limit exceeded", f"the derivation took longer than the {self.time_limit:g} s limit and was stopped",
                "a long product differentiated twice grows fast: try fewer factors, or the command line")
        except (EOFError, OSError):            # the worker died: a bug, or the memory limit at a bad moment
            loop.remove_reader(fd)
            self._retire(worker)
            return 500, service.error_body("internal error", "internal error: the derivation's worker "
                                           "process stopped unexpectedly (a bug in matcalc, please report it)")
        except asyncio.CancelledError:         # the server is stopping
            loop.remove_reader(fd)
            self._retire(worker)
            raise
        loop.remove_reader(fd)
        worker.tasks += 1
        if worker.tasks >= MAX_TASKS:
            self._retire(worker)
        else:
            self._idle.put_nowait(worker)
        return reply

    def close(self) -> None:
        self._closed = True
        for worker in list(self._all):
            worker.kill()
        self._all.clear()
