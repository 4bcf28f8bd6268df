"""The wire form of an event: compact UTF-8 JSON bytes (orjson).

The domain event (``producer.simulator.Event``) stays a Python object; only the producer turns
its payload into bytes, here. Keys keep the contract's field order.
"""

from __future__ import annotations

from typing import Any

import orjson


def to_json_bytes(payload: dict[str, Any]) -> bytes:
    """``payload`` as compact JSON bytes (no spaces, UTF-8, floats in shortest round-trip form)."""
    return orjson.dumps(payload)


def from_json_bytes(data: bytes) -> Any:
    """The inverse of :func:`to_json_bytes` (tests, tools)."""
    return orjson.loads(data)
