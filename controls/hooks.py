"""Hooks: how a lower layer lets a higher one act inside its transaction
without importing it. The lower layer declares the hook and fires it; the
higher layer connects its service when its app is ready. Receivers run in
order, in the caller's transaction, and an error in one undoes the whole."""

from collections.abc import Callable
from typing import Any


class Hook:
    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__doc__ = doc
        self._receivers: list[Callable[..., Any]] = []

    def connect(self, receiver: Callable[..., Any]) -> None:
        if receiver not in self._receivers:
            self._receivers.append(receiver)

    def fire(self, **kwargs: Any) -> None:
        for receiver in self._receivers:
            receiver(**kwargs)

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self._receivers)} receiver(s)>"
