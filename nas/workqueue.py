"""One work queue for many processes: a task goes to whichever rank is free, results go back to rank 0.

Under torchrun the queue lives in the job's key-value store (the TCPStore torchrun's rendezvous made, the
default store of the gloo process group): a rank takes the next task with an atomic ``add`` on a counter,
posts each result under a numbered key, and rank 0 reads and deletes those keys as they appear. Every wait
polls the store; no collective is involved, so nothing times out while a rank trains a cell for hours
(gloo's collectives give up after 30 minutes), ranks may run on any number of machines, and several ranks
may share one GPU (NCCL refuses that). Single-process, the same API runs on plain Python state.

Who does what stays with the caller: which tasks are pending (rank 0 decides, e.g. from results already
on disk, and tells the others before the queue starts), writing results (rank 0 alone), and what a rerun
does after a rank died (the task it held was never posted, so it is still pending).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable

from nas.distributed import DistContext, job_store
from nas.io import _default as _json_default  # the toolkit's JSON encoding of numpy/torch scalars, tuples

_GENERATION: dict[tuple[str, int], int] = {}  # queues of one name made so far per rank: ranks make them in step


def dumps(value: Any) -> str:
    """JSON text of a result (tuples become lists, numpy/torch scalars numbers; NaN stays NaN)."""
    return json.dumps(value, default=_json_default)


def as_sent(value: Any) -> Any:
    """``value`` as a rank receives it through the store: the same on rank 0 and elsewhere."""
    return json.loads(dumps(value))


class Board:
    """Values rank 0 publishes under names, for every rank to wait for (polling; no timeout)."""

    def __init__(self, ctx: DistContext, prefix: str = "nasboard", *, store: Any = None):
        self.ctx, self.prefix = ctx, prefix
        self.store = store if store is not None else job_store(ctx)
        self.local: dict[str, Any] = {}

    def publish(self, key: str, value: Any) -> None:
        """Make ``value`` (JSON-serialisable) visible to every rank under ``key``."""
        if self.store is None:
            self.local[key] = value
        else:
            self.store.set(f"{self.prefix}/{key}", dumps(value))

    def wait(self, key: str, *, poll_s: float = 0.2) -> Any:
        """The value published under ``key``, waiting for it as long as it takes."""
        if self.store is None:
            return self.local[key]
        name = f"{self.prefix}/{key}"
        while not self.store.check([name]):
            time.sleep(poll_s)
        return json.loads(self.store.get(name))


class WorkQueue:
    """Tasks ``0 .. n_tasks-1`` handed out one at a time; results posted back to rank 0.

    Every rank builds the queue with the same ``name`` in the same order. ``take()`` returns the next
    task or None; ``post(result)`` sends a JSON-serialisable result to rank 0, which collects them with
    ``receive()``; ``finish()`` says this rank takes no more, and ``all_finished()`` tells rank 0 that
    every rank has finished (so every result has been posted).
    """

    def __init__(self, name: str, n_tasks: int, ctx: DistContext | None = None, *, store: Any = None):
        self.ctx = ctx or DistContext()
        self.n_tasks = int(n_tasks)
        gen = _GENERATION.get((name, self.ctx.rank), 0)
        _GENERATION[(name, self.ctx.rank)] = gen + 1
        self.prefix = f"nasq/{name}/{gen}"
        self.store = store if store is not None else job_store(self.ctx)  # a store given: tests, other jobs
        self.lock = threading.Lock()  # rank 0 may poll from a second thread while its main thread trains
        self._next = 0
        self._inbox: list[Any] = []
        self._read = 0  # rank 0: results read so far
        self._finished = 0

    def _add(self, key: str, amount: int) -> int:
        with self.lock:
            return int(self.store.add(f"{self.prefix}/{key}", amount))

    def take(self) -> int | None:
        """The next task nobody has taken yet, or None when all are taken."""
        if self.store is None:
            with self.lock:
                i, self._next = self._next, self._next + 1
        else:
            i = self._add("next", 1) - 1
        return i if i < self.n_tasks else None

    def post(self, result: Any) -> None:
        """Send ``result`` to rank 0 (written before it is counted, so rank 0 never reads half of it)."""
        if self.store is None:
            with self.lock:
                self._inbox.append(result)
            return
        with self.lock:
            slot = int(self.store.add(f"{self.prefix}/slots", 1)) - 1
            self.store.set(f"{self.prefix}/result/{slot}", dumps(result))
            self.store.add(f"{self.prefix}/posted", 1)

    def receive(self) -> list[Any]:
        """Rank 0: every result posted since the last call (read once, then deleted from the store)."""
        if self.store is None:
            with self.lock:
                out, self._inbox = self._inbox, []
                self._read += len(out)
            return out
        out = []
        with self.lock:
            posted = int(self.store.add(f"{self.prefix}/posted", 0))
            # a slot is counted in 'posted' only after its value was set, but slots may complete out of
            # order: read each slot below the count of slots handed out once it exists
            while self._read < posted:
                key = f"{self.prefix}/result/{self._read}"
                if not self.store.check([key]):
                    break
                out.append(json.loads(self.store.get(key)))
                self.store.delete_key(key)
                self._read += 1
        return out

    def finish(self) -> None:
        """This rank takes no more tasks (and has posted every result it will post)."""
        if self.store is None:
            with self.lock:
                self._finished += 1
        else:
            self._add("finished", 1)

    def all_finished(self) -> bool:
        """Whether every rank has called :meth:`finish`."""
        n = self._finished if self.store is None else self._add("finished", 0)
        return n >= self.ctx.world_size

    def drain(self, handle: Callable[[list[Any]], None], *, poll_s: float = 0.5) -> None:
        """Rank 0: hand results to ``handle`` until every rank has finished and every result was read."""
        while True:
            done = self.all_finished()  # read before the results: whatever was posted before is read below
            got = self.receive()
            if got:
                handle(got)
            if done and not got and self._read >= self._posted():
                return
            if not got:
                time.sleep(poll_s)

    def _posted(self) -> int:
        if self.store is None:
            with self.lock:
                return len(self._inbox) + self._read
        return self._add("posted", 0)


class Collector:
    """Rank 0: a background thread that hands a queue's results to ``handle`` every ``poll_s`` seconds.

    Rank 0 trains cells too; the thread merges the other ranks' records meanwhile. ``stop()`` drains what
    is left once every rank has finished.
    """

    def __init__(self, queue: WorkQueue, handle: Callable[[list[Any]], None], *, poll_s: float = 2.0):
        self.queue, self.handle, self.poll_s = queue, handle, poll_s
        self._halt = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=f"collect-{queue.prefix}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._halt.wait(self.poll_s):
                got = self.queue.receive()
                if got:
                    self.handle(got)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread by stop()
            self.error = exc

    def stop(self, *, drain: bool = True) -> None:
        """Stop the thread; with ``drain`` wait for every rank and hand over the remaining results."""
        self._halt.set()
        self._thread.join()
        if self.error is not None:
            raise self.error
        if drain:
            self.queue.drain(self.handle, poll_s=min(self.poll_s, 0.5))
