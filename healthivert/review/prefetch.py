"""A bounded cache of drawn images that can also draw ahead, in one background thread.

The viewer draws a vertebra's planes and figures when it is first opened (a few hundred ms of
matplotlib on a loaded 2-core machine). Once a page is shown, the viewer asks this cache to draw
its neighbours' images in the background, so that moving to the next or previous vertebra finds
them ready. A request for an image being drawn in the background waits for that drawing instead
of starting a second one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any


class RenderCache:
    """Results of drawing functions by key, at most ``max_entries`` (least recently used dropped).

    ``get`` draws in the calling thread unless the result is there or being drawn; ``ahead``
    queues drawings on one background thread (a failure there is dropped: ``get`` draws again
    and raises in the caller).
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Future] = OrderedDict()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._queued: dict[Hashable, Future] = {}  # key -> its pool task, until it has run

    def _claim(self, key: Hashable) -> tuple[Future, bool]:
        """The key's future, and whether the caller must fill it (it was not there)."""
        with self._lock:
            future = self._entries.get(key)
            if future is not None:
                self._entries.move_to_end(key)
                return future, False
            future = Future()
            self._entries[key] = future
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return future, True

    def _fill(self, key: Hashable, future: Future, draw: Callable[[], Any]) -> None:
        try:
            future.set_result(draw())
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits, and forgotten
            with self._lock:
                if self._entries.get(key) is future:
                    del self._entries[key]
            future.set_exception(exc)

    def get(self, key: Hashable, draw: Callable[[], Any]) -> Any:
        """The result for ``key``: cached, waited for (being drawn ahead), or drawn now."""
        while True:
            future, mine = self._claim(key)
            if mine:
                self._fill(key, future, draw)
            try:
                return future.result()
            except CancelledError:  # its drawing ahead was called off before it started
                continue

    def ahead(self, key: Hashable, draw: Callable[[], Any]) -> None:
        """Draw ``key`` in the background unless it is cached or being drawn."""
        future, mine = self._claim(key)
        if not mine:
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthivert-draw-ahead")
            pool = self._pool
        task = pool.submit(self._run, key, future, draw)
        with self._lock:
            if not task.done():
                self._queued[key] = task

    def _run(self, key: Hashable, future: Future, draw: Callable[[], Any]) -> None:
        with self._lock:
            self._queued.pop(key, None)
        self._fill(key, future, draw)

    def cancel_pending(self) -> int:
        """Call off the drawings ahead that have not started (the reader moved on: what they now
        ask for is drawn first); returns how many."""
        with self._lock:
            called_off = 0
            for key, task in list(self._queued.items()):
                if task.cancel():
                    called_off += 1
                    future = self._entries.pop(key, None)
                    if future is not None:
                        future.cancel()
                del self._queued[key]  # called off, or running already
        return called_off

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def wait(self) -> None:
        """Wait for the drawings queued so far (tests)."""
        with self._lock:
            futures = list(self._entries.values())
        for f in futures:
            try:
                f.result()
            except BaseException:  # noqa: BLE001, S110 - a failed drawing is not waited for again
                pass
