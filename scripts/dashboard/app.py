"""The dashboard's web app: one page, its libraries, server-sent events and lake history.

Routes:

``GET /``                                 the page (``static/index.html``)
``GET /static/...``, ``/vendor/...``      its code, and Leaflet and uPlot from ``node_modules``
``GET /api/basemap``                      route sections, towns, cameras (the map's base layer)
``GET /api/stream``                       server-sent events: a ``snapshot``, then changes
``GET /api/state``                        the same snapshot as one JSON document
``GET /api/health``                       the pipeline-health document
``GET /api/history/vehicle/{deviceId}``   the lake: one vehicle's readings (``?minutes=60``)
``GET /api/history/incident/{id}``        the lake: an incident's reports and alerts

The server pushes, browsers never poll. Every ``DASHBOARD_COALESCE_SECONDS`` one ``positions``
message carries the vehicles whose position changed (at most one row per vehicle); alerts,
incidents and road conditions are pushed as they arrive; ``flags`` (slow/wet/fog/incident
sections) and ``health`` when they change. Each message is encoded once for all browsers. A
browser too slow to keep up does not hold the server back: its queue is dropped and it gets a
fresh snapshot instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import orjson
import uvicorn
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles

from emr_jobs.core.settings import SettingsError
from emr_jobs.settings import JobSettings
from scripts.dashboard import history
from scripts.dashboard.basemap import basemap
from scripts.dashboard.settings import DashboardSettings
from scripts.dashboard.state import LiveState

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
NODE_MODULES = HERE / "node_modules"
#: URL prefix -> folder in node_modules (Leaflet's CSS finds its images beside it).
VENDOR = {"leaflet": "leaflet/dist", "uplot": "uplot/dist"}
VENDOR_FILES = (
    "leaflet/dist/leaflet.js",
    "leaflet/dist/leaflet.css",
    "uplot/dist/uPlot.iife.min.js",
    "uplot/dist/uPlot.min.css",
)
#: Messages a browser may have waiting before it is dropped to a fresh snapshot.
QUEUE_LIMIT = 32
CLOSE = ("close", "")


class FrontEndMissing(SettingsError):
    """Leaflet or uPlot are not installed in scripts/dashboard/node_modules."""


def check_front_end(node_modules: Path = NODE_MODULES) -> None:
    missing = [f for f in VENDOR_FILES if not (node_modules / f).is_file()]
    if missing:
        raise FrontEndMissing(
            f"the dashboard's front-end libraries are missing in {node_modules} "
            f"({', '.join(missing)}); run `bash scripts/setup_dashboard.sh` (part of `make setup`)"
        )


def encode(obj: object) -> str:
    return orjson.dumps(obj).decode()


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[tuple[str, str]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_LIMIT)
    )
    resyncs: int = 0


class Hub:
    """Fans messages out to every connected browser; runs the coalescing tick."""

    def __init__(
        self, state: LiveState, interval: float, health: Callable[[], dict] | None = None
    ) -> None:
        self.state = state
        self.interval = interval
        self.health = health or (lambda: {})
        self.subscribers: set[Subscriber] = set()
        self._flags: dict = {}
        self._health_at = None
        self.frames = 0
        self.rows = 0

    def snapshot(self) -> dict:
        return {
            "positions": self.state.positions.snapshot(),
            "alerts": self.state.alerts(),
            "incidents": self.state.incidents(),
            "conditions": self.state.conditions(),
            "flags": self.state.section_flags(),
            "health": self.health(),
            "sent": int(time.time() * 1000),
        }

    def subscribe(self) -> Subscriber:
        sub = Subscriber()
        sub.queue.put_nowait(("snapshot", encode(self.snapshot())))
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def close(self) -> None:
        """End every open stream (the server is stopping)."""
        for sub in list(self.subscribers):
            while sub.queue.full():
                sub.queue.get_nowait()
            sub.queue.put_nowait(CLOSE)

    def publish(self, event: str, data: object) -> None:
        """Queue one message for every browser (on the event loop's thread)."""
        if not self.subscribers:
            return
        text = encode(data)
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait((event, text))
            except asyncio.QueueFull:
                self._resync(sub)

    def _resync(self, sub: Subscriber) -> None:
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.resyncs += 1
        sub.queue.put_nowait(("snapshot", encode(self.snapshot())))

    def tick(self) -> None:
        changes = self.state.positions.take_changes()
        if changes:
            self.frames += 1
            self.rows += len(changes.rows)
            self.publish("positions", dict(changes.as_message(), sent=int(time.time() * 1000)))
        flags = self.state.section_flags()
        if flags != self._flags:
            self._flags = flags
            self.publish("flags", flags)
        health = self.health()
        if health.get("at") != self._health_at:
            self._health_at = health.get("at")
            self.publish("health", health)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            ran = loop.time()
            try:
                self.tick()
            except Exception:  # a bad record must not stop the pushes
                log.exception("dashboard tick failed")
            # A late tick never makes the next one early: frames stay an interval apart, so
            # a vehicle moves at most once per interval on every screen.
            next_at = max(next_at + self.interval, ran + self.interval)


@dataclass
class Services:
    """What the app runs beside the event loop: the Kafka feed and the health monitor."""

    start: Callable[[LiveState], None] = lambda state: None
    stop: Callable[[], None] = lambda: None
    health: Callable[[], dict] = dict


def create_app(
    settings: DashboardSettings,
    job: JobSettings,
    *,
    state: LiveState | None = None,
    services: Services | None = None,
    backfill: bool = True,
) -> FastAPI:
    """The app. ``services`` starts the Kafka feed and the health monitor (``__main__``);
    without it the app serves what is put into ``state`` (tests)."""
    check_front_end()
    state = state or LiveState(
        history_minutes=settings.history_minutes,
        vehicle_ttl_seconds=settings.vehicle_ttl_seconds,
    )
    services = services or Services()
    hub = Hub(state, settings.coalesce_seconds, services.health)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def listener(kind: str, data: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(hub.publish, kind, data)

        state.listener = listener
        services.start(state)
        if backfill:
            threading.Thread(
                target=_backfill,
                args=(state, job, settings.history_minutes),
                daemon=True,
                name="dashboard-backfill",
            ).start()
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            task.cancel()
            state.listener = None
            services.stop()

    app = FastAPI(
        title="Smart City operations dashboard",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.live = state
    app.state.hub = hub
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for prefix, folder in VENDOR.items():
        app.mount(f"/vendor/{prefix}", StaticFiles(directory=NODE_MODULES / folder), name=prefix)
    csp = content_security_policy(settings.tile_url)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/basemap")
    def get_basemap() -> dict:
        return dict(
            basemap(),
            tileUrl=settings.tile_url,
            coalesceSeconds=settings.coalesce_seconds,
            historyMinutes=settings.history_minutes,
        )

    @app.get("/api/state")
    def get_state() -> dict:
        return hub.snapshot()

    @app.get("/api/health")
    def get_health() -> dict:
        return services.health()

    @app.get("/api/stream", response_class=EventSourceResponse)
    async def stream(
        limit: Annotated[int | None, Query(ge=1, description="close after N messages")] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events: ``snapshot`` first, then ``positions``, ``alert``,
        ``incident``, ``condition``, ``flags`` and ``health`` as they happen."""
        sub = hub.subscribe()
        sent = 0
        try:
            while limit is None or sent < limit:
                event, data = await sub.queue.get()
                if (event, data) == CLOSE:
                    return
                yield ServerSentEvent(raw_data=data, event=event)
                sent += 1
        finally:
            hub.unsubscribe(sub)

    @app.get("/api/history/vehicle/{device_id}")
    def vehicle_history(
        device_id: str,
        minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60,
        until: Annotated[
            datetime | None,
            Query(description="ISO-8601; default: the vehicle's newest reading, or now"),
        ] = None,
    ) -> dict:
        if until is None:
            fix = state.positions.newest(device_id)
            until = datetime.fromtimestamp(fix.event_ms / 1000, UTC) if fix else datetime.now(UTC)
        elif until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        rows = _lake(lambda: history.vehicle_track(job, device_id, until=until, minutes=minutes))
        return {
            "deviceId": device_id,
            "until": until.isoformat(),
            "minutes": minutes,
            "readings": rows,
        }

    @app.get("/api/history/incident/{incident_id}")
    def incident_history(incident_id: str) -> dict:
        rows = _lake(lambda: history.incident_timeline(job, incident_id))
        return {"incidentId": incident_id, "timeline": rows}

    return app


class DashboardServer(uvicorn.Server):
    """uvicorn, ending every open event stream when asked to stop, so that shutdown never
    waits for browsers to hang up."""

    def __init__(self, config: uvicorn.Config, hub: Hub) -> None:
        super().__init__(config)
        self.hub = hub

    def handle_exit(self, sig: int, frame) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: nothing is streaming
            asyncio.get_running_loop().call_soon_threadsafe(self.hub.close)
        super().handle_exit(sig, frame)


def _lake(read: Callable[[], list[dict]]) -> list[dict]:
    try:
        return read()
    except ValueError as err:  # a malformed id (SettingsError is a ValueError: checked first)
        if isinstance(err, SettingsError):
            raise HTTPException(503, f"the lake cannot be read: {err}") from None
        raise HTTPException(400, str(err)) from None
    except Exception as err:  # noqa: BLE001 - a missing table, a catalog error: say so
        raise HTTPException(503, f"the lake cannot be read: {type(err).__name__}: {err}") from None


def _backfill(state: LiveState, job: JobSettings, minutes: int) -> None:
    """Alerts and road conditions of the last ``minutes`` from the lake, so the feed and the
    charts are not empty after a restart. Quietly nothing while the lake has no such tables."""
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    for stream in ("road_conditions", "alerts"):
        try:
            rows = history.recent(job, stream, since=since)
        except Exception as err:  # noqa: BLE001 - history is a nicety; live data still flows
            log.info("no %s history from the lake (%s)", stream, err)
            continue
        for row in rows:
            state.ingest(stream, row)
        if rows:
            log.info(
                "loaded %d %s of the last %d minutes from the lake", len(rows), stream, minutes
            )


def content_security_policy(tile_url: str) -> str:
    """Only this server's own scripts, styles and data; tiles from their origin if set."""
    images = "'self' data:"
    if tile_url.startswith(("http://", "https://")):
        parsed = urlparse(tile_url)
        images += f" {parsed.scheme}://{parsed.netloc.replace('{s}', '*')}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {images}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
