"""Run a Starlette app under uvicorn in a background thread on 127.0.0.1:<ephemeral>."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

ERROR_MODES = ("401", "403", "422", "429", "500", "503", "timeout", "bad_shape")


@dataclass
class Faults:
    """The error mode the next requests meet. `remaining=None` keeps it until cleared."""

    mode: str | None = None
    remaining: int | None = None
    skip: int = 0
    stall_s: float = 1.0

    def set(self, mode: str | None, times: int | None = None, after: int = 0) -> None:
        """Answer with `mode` `times` times (None: until cleared), after `after` normal answers."""
        if mode is not None and mode not in ERROR_MODES:
            raise ValueError(f"unknown error mode {mode!r}; one of {ERROR_MODES}")
        self.mode = mode
        self.remaining = times
        self.skip = after

    def take(self) -> str | None:
        mode = self.mode
        if mode is None:
            return None
        if self.skip > 0:
            self.skip -= 1
            return None
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.mode = None
                self.remaining = None
        return mode

    async def stall(self) -> None:
        await asyncio.sleep(self.stall_s)


class ServerThread:
    def __init__(self, app: Starlette) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="off", timeout_graceful_shutdown=1,
                                timeout_keep_alive=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-broker", daemon=True)
        self.base_url = ""

    def start(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake broker server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
