"""The engine's client order ids: `model.ids`, where the gate reads them too."""

from __future__ import annotations

from ordergate.model.ids import PREFIX as PREFIX
from ordergate.model.ids import derive_client_order_id as derive_client_order_id
