"""Running the app under Pilot the way every UI test starts: the CLI's factory, a size, workers settled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from textual.app import App
from textual.pilot import Pilot

from tests.support.waits import settle


@asynccontextmanager
async def started(app: App[Any], size: tuple[int, int] = (80, 24)) -> AsyncIterator[Pilot[Any]]:
    """``app`` running headless at ``size`` (80x24 is the SSH case), once its first reads have settled."""
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        yield pilot
