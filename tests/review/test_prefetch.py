"""The viewer's cache of drawn images, drawing the neighbours ahead in the background."""

from __future__ import annotations

import threading

import pytest

from healthivert.review.prefetch import RenderCache


def test_drawn_once_then_cached_and_bounded() -> None:
    cache, calls = RenderCache(max_entries=2), []

    def draw(k):
        return lambda: calls.append(k) or f"png {k}"

    assert cache.get("a", draw("a")) == "png a"
    assert cache.get("a", draw("a")) == "png a"
    cache.get("b", draw("b"))
    cache.get("c", draw("c"))  # "a", the least recently used, is dropped
    assert calls == ["a", "b", "c"] and "a" not in cache and "c" in cache


def test_a_request_waits_for_the_drawing_ahead_instead_of_drawing_twice() -> None:
    cache, calls, release = RenderCache(), [], threading.Event()

    def slow():
        release.wait(5)
        calls.append("ahead")
        return "ahead png"

    cache.ahead("next", slow)
    cache.ahead("next", slow)  # queued once
    threading.Timer(0.05, release.set).start()
    assert cache.get("next", lambda: calls.append("again") or "again") == "ahead png"
    assert calls == ["ahead"]


def test_a_failed_drawing_ahead_is_drawn_again_on_request() -> None:
    cache = RenderCache()

    def broken():
        raise OSError("file gone")

    cache.ahead("x", broken)
    cache.wait()
    assert "x" not in cache
    assert cache.get("x", lambda: "drawn") == "drawn"
    with pytest.raises(OSError):
        cache.get("y", broken)
    assert "y" not in cache


def test_pending_drawings_ahead_are_called_off_for_what_is_asked_now() -> None:
    cache, started, release, calls = RenderCache(), threading.Event(), threading.Event(), []

    def blocker():
        started.set()
        release.wait(5)
        return "first"

    cache.ahead("running", blocker)
    cache.ahead("queued", lambda: calls.append("queued") or "queued png")
    assert started.wait(5)
    assert cache.cancel_pending() == 1  # "running" has started: only "queued" is called off
    release.set()
    cache.wait()
    assert "queued" not in cache and calls == []
    assert cache.get("queued", lambda: "drawn now") == "drawn now"
    assert cache.get("running", lambda: "again") == "first"
