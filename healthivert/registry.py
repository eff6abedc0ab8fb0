"""Explicit registries: a name picks an implementation; a bad name lists the valid ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, Callable[..., T]], Generic[T]):
    """Factories by name, filled by the :meth:`register` decorator (no import scanning)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str):
        """Decorator: make a factory available under ``name``."""

        def wrap(factory):
            self[name] = factory
            return factory

        return wrap

    def create(self, name: str, **kwargs) -> T:
        """The implementation registered as ``name``, built with ``kwargs``."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {', '.join(sorted(self))}")
        return self[name](**kwargs)
