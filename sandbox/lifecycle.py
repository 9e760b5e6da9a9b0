"""What every stand-in shares: `async with Server() as s:` starts it and stops it, and
tests wait on its state through one condition, notified whenever the state changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

_T = TypeVar("_T")


class Served:
    _changed: asyncio.Condition  # created by each stand-in in __init__

    async def _wait_for(self, predicate: Callable[[], _T], limit: float) -> _T:
        """The first truthy predicate() value, rechecked on every _notify()."""
        async with asyncio.timeout(limit), self._changed:
            return await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
