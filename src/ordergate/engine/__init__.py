"""The deterministic engine: `Engine.handle(event) -> outputs`, a pure function of (state,
event); `Engine.snapshot()` / `Engine.restore(data)`; `Engine.status()` for people."""

from ordergate.engine.core import Engine
from ordergate.engine.ids import derive_client_order_id
from ordergate.engine.image import SnapshotError
from ordergate.engine.status import EngineStatus

__all__ = ["Engine", "EngineStatus", "SnapshotError", "derive_client_order_id"]
