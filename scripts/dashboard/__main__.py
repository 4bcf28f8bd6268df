"""``python -m scripts.dashboard``: the live operations dashboard (``make dashboard``).

    python -m scripts.dashboard                    # the pipeline named by KAFKA_* and LAKE_*
    python -m scripts.dashboard --demo             # + broker, real-time simulation, job
    python -m scripts.dashboard --demo --vehicles 1000 --speedup 2
    python -m scripts.dashboard screenshot         # regenerate scripts/dashboard/screenshot.png

Serves http://127.0.0.1:8050 (DASHBOARD_HOST, DASHBOARD_PORT). Binding to another address is
a deliberate setting: the dashboard has no login. Exit codes: 0 stopped with Ctrl-C; 2 a wrong
setting, a missing front-end library, an unreachable broker or a port in use (one ``error:``
line says which).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import textwrap
from collections.abc import Sequence

from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.settings import SettingsError
from emr_jobs.settings import JobSettings
from scripts.dashboard.settings import DashboardSettings

log = logging.getLogger("dashboard")

#: The job's settings whose flags the dashboard takes (``JobSettings.add_flags`` would add
#: the job's others too: trigger interval and timeout mean nothing to the dashboard).
JOB_FLAGS = ("lake_uri",)
#: Where the help of a variable starts in the epilog.
_HELP_COLUMN = 40


def _epilog() -> str:
    """The dashboard's settings without a flag, generated from ``DashboardSettings``."""
    indent = " " * _HELP_COLUMN
    rows = []
    for env, info in DashboardSettings.variables():
        if (info.json_schema_extra or {}).get("flag"):  # type: ignore[union-attr]
            continue  # in the flag's help
        default = info.get_default(call_default_factory=True)
        if isinstance(default, float):
            default = f"{default:g}"
        name = f"  {env}={default}" if default not in (None, "") else f"  {env}"
        name = name.ljust(_HELP_COLUMN)
        if len(name) > _HELP_COLUMN:
            name = f"{name.rstrip()}\n{indent}"
        text = textwrap.fill(info.description or "", 96 - _HELP_COLUMN).replace("\n", "\n" + indent)
        rows.append(name + text)
    return "\n".join(
        [
            "settings without a flag (environment only):",
            *rows,
            "  and the pipeline's KAFKA_*, *_TOPIC and LAKE_* (scripts/dashboard/README.md)",
            "",
            "exit codes: 0 stopped with Ctrl-C; 2 a wrong setting, a missing front-end library,",
            "an unreachable broker or a port in use (one `error:` line says which).",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scripts.dashboard",
        description="The live operations dashboard: fleet map, alerts, road conditions and\n"
        "pipeline health, pushed to browsers with server-sent events.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "command",
        nargs="?",
        choices=["serve", "screenshot"],
        default="serve",
        help="serve (default) or screenshot (regenerates the README picture)",
    )
    DashboardSettings.add_flags(p)
    KafkaSettings.add_flags(p)
    JobSettings.add_flags(p, *JOB_FLAGS)
    demo = p.add_argument_group("demo (--demo, and screenshot)")
    demo.add_argument(
        "--demo",
        action="store_true",
        help="run a broker, the topics, a real-time simulation and the job beside it",
    )
    demo.add_argument(
        "--vehicles", type=int, default=None, help="simulated vehicles (200; screenshot: 60)"
    )
    demo.add_argument(
        "--speedup",
        type=float,
        default=None,
        help="simulated seconds per wall second (1 = real time; screenshot: 4)",
    )
    demo.add_argument(
        "--rewind",
        type=float,
        default=None,
        metavar="MINUTES",
        help="start the simulated clock MINUTES before now; with --speedup > 1 it "
        "catches up with the wall clock after MINUTES / (speedup - 1) "
        "(0; screenshot: 10)",
    )
    demo.add_argument(
        "--no-job",
        action="store_true",
        help="demo without the Spark job (no alerts, road conditions or lake)",
    )
    shot = p.add_argument_group("screenshot")
    shot.add_argument("--out", help="PNG to write (scripts/dashboard/screenshot.png)")
    shot.add_argument(
        "--wait",
        type=float,
        default=180.0,
        help="seconds of live data before the picture is taken (180)",
    )
    return p


def check_port(settings: DashboardSettings) -> None:
    """Fail now, with the setting's name, rather than after the broker and job are up."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((settings.host, settings.port))
        except OSError as err:
            raise SettingsError(
                f"cannot listen on {settings.host}:{settings.port} (DASHBOARD_HOST, "
                f"DASHBOARD_PORT / --host, --port): {err.strerror}"
            ) from None


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from scripts.dashboard.app import DashboardServer, Services, check_front_end, create_app
    from scripts.dashboard.feeds import LiveFeed
    from scripts.dashboard.health import HealthMonitor
    from scripts.local_broker import BrokerError
    from scripts.run_job import JarsMissing
    from scripts.topics import connect

    demo = None
    try:
        # Flags laid over the environment; an error names the flag or the variable set.
        settings = DashboardSettings.from_args(args)
        check_front_end()
        check_port(settings)
        if args.demo:
            from scripts.dashboard.demo import Demo

            demo = Demo(
                vehicles=args.vehicles or 200,
                speedup=args.speedup or 1.0,
                rewind_minutes=args.rewind or 0.0,
                run_job=not args.no_job,
            ).start()
            if demo.kafka is None or demo.job_settings is None:  # start() sets both or raises
                demo.stop()
                raise RuntimeError("the demo started without its Kafka and job settings")
            kafka, job = demo.kafka, demo.job_settings
        else:
            kafka, job = KafkaSettings.from_args(args), JobSettings.from_args(args)
        admin = connect(kafka, timeout=settings.connect_timeout_seconds)
    except (SettingsError, ConnectionError, BrokerError, JarsMissing, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        if demo is not None:
            demo.stop()
        return 2

    feed: LiveFeed | None = None
    health = HealthMonitor(
        kafka, job, admin, every=settings.health_seconds, lake_every=settings.lake_seconds
    )

    def start(state) -> None:
        nonlocal feed
        feed = LiveFeed(kafka, state, settings.consumer_group)
        health.live_newest = lambda: {s: v.newest_event_ms for s, v in state.stats.items()}
        feed.start()
        health.start()

    def stop() -> None:
        health.stop()
        if feed is not None:
            feed.stop()
        # Here, not after server.run(): on SIGTERM uvicorn re-raises the signal once it has
        # shut down, and the process ends without returning from run().
        if demo is not None:
            demo.stop()

    app = create_app(
        settings, job, services=Services(start=start, stop=stop, health=lambda: health.doc)
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = DashboardServer(config, app.state.hub)
    if not settings.is_loopback:
        log.warning(
            "listening on %s: anyone who can reach this machine sees the dashboard "
            "(it has no login)",
            settings.host,
        )
    log.info(
        "dashboard on http://%s:%d/  (Kafka %s, lake %s; Ctrl-C stops it%s)",
        "127.0.0.1" if settings.host == "0.0.0.0" else settings.host,
        settings.port,
        kafka.bootstrap_servers,
        job.lake_uri,
        " and the demo" if demo else "",
    )
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down cleanly
        pass
    finally:
        if demo is not None:
            demo.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # librdkafka's own log lines for a broker that went away are repeated by the health panel.
    logging.getLogger("dashboard.librdkafka").setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the screenshot's polling
    args = build_parser().parse_args(argv)
    if args.command == "screenshot":
        from scripts.dashboard.screenshot import take_screenshot

        return take_screenshot(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
