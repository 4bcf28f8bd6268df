"""The benchmark's outputs: ``results.json``, ``results.md`` (the table) and ``results.png``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

TARGETS = {
    "producer_vs_tutorial": 100.0,  # at least 100x the tutorial's produce-then-flush loop
    "producer_vs_ceiling": 0.5,  # at least 50% of the simulator-only ceiling
    "job_vs_ceiling": 0.5,  # the job's drain at least 50% of the warm batch ceiling
    "job_vs_fleet": 5.0,  # the job sustains 5x a 10,000-vehicle fleet's real-time rate
    "latency_p99_margin_s": 3.0,  # p99 at 5,000 ev/s within trigger + 3 s
    "scaling": 0.8,  # throughput at 10,000 vehicles within 20% of 10 vehicles
    "producer_peak_rss_mb": 300.0,
}
LATENCY_TARGET_RATE = "5000"
#: The same figures on the previous main (one data and one quarantine query per stream, Parquet
#: file sinks, 40,000-event backlog, cold batch ceiling writing plain Parquet), from its README.
BEFORE = {
    "job_rows_per_s": 1_874.0,
    "ceiling_rows_per_s": 8_538.0,
    "job_vs_ceiling": 0.22,
    "latency_p99_5000_s": 15.8,
    "task_cpu_us_per_event": 174.0,
}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "not reached"
    if unit in ("events/s", "rows/s", "rows", "batches"):
        return f"{value:,.0f}"
    if unit == "ratio":
        return f"{value:.2f}×" if value < 10 else f"{value:.1f}×"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "µs":
        return f"{value:,.0f} µs"
    return f"{value:.2f}"


def _status(value: float | None, target: float, *, at_most: bool = False) -> str:
    if value is None:
        return "not measured"
    return "met" if (value <= target if at_most else value >= target) else "missed"


def _row(
    name: str, fig: dict | None, target: str = "", status: str = "", extra: str = ""
) -> dict[str, Any]:
    fig = fig or {}
    unit = fig.get("unit", "")
    return {
        "figure": name,
        "median": fig.get("median"),
        "min": fig.get("min"),
        "max": fig.get("max"),
        "n": fig.get("n", 0),
        "unit": unit,
        "extra": extra,
        "target": target,
        "status": status,
    }


def table_rows(results: dict) -> list[dict[str, Any]]:
    """Every figure with its ratio, target and status, in the order of the issue."""
    rows: list[dict[str, Any]] = []
    p = results.get("producer")
    if p:
        head = str(p["headline_vehicles"])
        for v, fig in p["simulator_only"].items():
            rows.append(
                _row(
                    f"Simulator only (CPU ceiling), {int(v):,} vehicles",
                    fig,
                    extra=f"{p['simulator_only_mb_s'][v]['median']:.1f} MB/s",
                )
            )
        rows.append(
            _row(
                "Tutorial pattern (produce + flush per message)",
                p["tutorial"],
                extra=f"{p['tutorial_mb_s']['median']:.2f} MB/s",
            )
        )
        for v, fig in p["producer"].items():
            rows.append(
                _row(
                    f"Producer, pace=max, {int(v):,} vehicles",
                    fig,
                    extra=f"{p['producer_mb_s'][v]['median']:.1f} MB/s",
                )
            )
        for v, fig in p["producer_vs_ceiling"].items():
            t = TARGETS["producer_vs_ceiling"]
            rows.append(
                _row(
                    f"Producer / simulator-only ceiling, {int(v):,} vehicles",
                    fig,
                    f"≥ {t:.2f}",
                    _status(fig["median"], t),
                )
            )
        t = TARGETS["producer_vs_tutorial"]
        rows.append(
            _row(
                f"Producer / tutorial pattern, {int(head):,} vehicles",
                p["producer_vs_tutorial"],
                f"≥ {t:.0f}×",
                _status(p["producer_vs_tutorial"]["median"], t),
            )
        )
        rows.append(
            _row(
                "Simulator-only ceiling / tutorial pattern (the most any producer could reach)",
                p["ceiling_vs_tutorial"],
            )
        )
        low, high = p["scaling_vehicles"]
        t = TARGETS["scaling"]
        rows.append(
            _row(
                f"Producer throughput, {high:,} / {low:,} vehicles",
                p["producer_scaling"],
                f"≥ {t:.2f}",
                _status(p["producer_scaling"]["median"], t),
            )
        )
        rows.append(
            _row(f"Simulator-only throughput, {high:,} / {low:,} vehicles", p["simulator_scaling"])
        )
    j = results.get("job")
    if j:
        rows.append(
            _row(
                f"Job drain (--available-now), {j['events']:,} events, first batch → caught up",
                j["streaming_rows_per_s"],
                extra=f"{j['batches_per_drain']['median']:.0f} batch(es)",
            )
        )
        rows.append(
            _row(
                f"Batch ceiling (parse + validate + Iceberg append, same events, "
                f"warm JVM), {j['events']:,} events",
                j["batch_ceiling_rows_per_s"],
            )
        )
        rows.append(
            _row(
                f"Batch ceiling, cold JVM (its warm-up pass, "
                f"{j['batch_ceiling_warmup_rows']:,} events)",
                j["batch_ceiling_cold_rows_per_s"],
            )
        )
        t = TARGETS["job_vs_ceiling"]
        rows.append(
            _row(
                "Job / batch ceiling",
                j["job_vs_ceiling"],
                f"≥ {t:.2f}",
                _status(j["job_vs_ceiling"]["median"], t),
            )
        )
        fleet = j["fleet"]
        rows.append(
            _row(
                f"Real-time rate of a {fleet['vehicles']:,}-vehicle fleet (simulator)",
                j["fleet_events_per_s"],
            )
        )
        t = TARGETS["job_vs_fleet"]
        rows.append(
            _row(
                f"Job drain / {fleet['vehicles']:,}-vehicle fleet's real-time rate",
                j["job_vs_fleet"],
                f"≥ {t:.0f}×",
                _status(j["job_vs_fleet"]["median"], t),
            )
        )
        rows.append(
            _row(
                f"Batch ceiling / {fleet['vehicles']:,}-vehicle fleet's real-time rate "
                "(the most the job could reach)",
                j["ceiling_vs_fleet"],
            )
        )
        for cap, c in j.get("by_cap", {}).items():
            rows.append(
                _row(
                    f"Job drain, at most {int(cap):,} records per trigger, first batch → caught up",
                    c["drain_rows_per_s"],
                    extra=f"{c['batches']} batches",
                )
            )
            rows.append(
                _row(
                    f"Job drain, at most {int(cap):,} records per trigger, after the "
                    "first batch (warm JVM)",
                    c["steady_rows_per_s"],
                )
            )
            rows.append(_row("  … / batch ceiling", c["steady_vs_ceiling"]))
            rows.append(
                _row(
                    f"  … / {fleet['vehicles']:,}-vehicle fleet's real-time rate",
                    c["steady_vs_fleet"],
                )
            )
        rows.append(_row("Job start-up (process start → first batch)", j["startup_seconds"]))
        rows.append(_row("Job task CPU per event", j["task_cpu_us_per_event"]))
        rows.append(_row("Batch ceiling task CPU per event", j["ceiling_task_cpu_us_per_event"]))
        rows.append(_row("Job / batch ceiling, task CPU per event", j["cpu_per_row_vs_ceiling"]))
        for v, fig in j["by_vehicles"].items():
            rows.append(
                _row(f"Job drain, {int(v):,} vehicles, {j['scaling_events']:,} events", fig)
            )
        if j.get("scaling"):
            low, high = j["scaling_vehicles"]
            t = TARGETS["scaling"]
            rows.append(
                _row(
                    f"Job throughput, {high:,} / {low:,} vehicles",
                    j["scaling"],
                    f"≥ {t:.2f}",
                    _status(j["scaling"]["median"], t),
                )
            )
    lat = results.get("latency")
    if lat:
        trigger = lat["trigger_seconds"]
        for rate, ph in lat["phases"].items():
            for q in ("p50", "p95", "p99"):
                target, status = "", ""
                if rate == LATENCY_TARGET_RATE and q == "p99":
                    limit = trigger + TARGETS["latency_p99_margin_s"]
                    target = f"≤ {limit:.0f} s"
                    status = _status(math.inf if ph[q] is None else ph[q], limit, at_most=True)
                value = ph[q] if ph[q] is not None else math.inf
                fig = {"median": value, "min": None, "max": None, "n": 1, "unit": "s"}
                rows.append(
                    _row(
                        f"End-to-end latency {q}, {int(rate):,} ev/s",
                        fig,
                        target,
                        status,
                        extra=f"{ph['rows']:,} rows",
                    )
                )
    al = results.get("alerts")
    if al:
        for per_rate in al["rates"].values():
            rows.extend(alert_rows(per_rate))
    d = results.get("dashboard")
    if d:
        rows.extend(dashboard_rows(d))
    m = results.get("memory")
    if m:
        t = TARGETS["producer_peak_rss_mb"]
        fig = m["producer_peak_rss_mb"]
        rows.append(
            _row(
                f"Producer peak RSS, {m['vehicles']:,} vehicles",
                fig,
                f"≤ {t:.0f} MB",
                _status(fig["median"], t, at_most=True),
            )
        )
    if j:
        for role, label in (("jvm", "JVM"), ("python", "Python driver"), ("total", "total")):
            rows.append(_row(f"Job driver peak RSS ({label})", j["driver_peak_rss_mb"][role]))
    return rows


def _single(value: float | None, unit: str) -> dict:
    shown = math.inf if value is None else value
    return {"median": shown, "min": None, "max": None, "n": 1, "unit": unit}


def alert_rows(al: dict) -> list[dict[str, Any]]:
    """The alerts section: event -> alert latency, road-condition freshness, CPU."""
    on, off = al["phases"]["on"], al["phases"]["off"]
    rate = f"{int(on['rate_target']):,} ev/s"
    target = on["alert_latency_target_s"]
    probe = on["probe_latency_s"]
    rows = []
    for q in ("p50", "p99"):
        at_most = q == "p99"
        rows.append(
            _row(
                f"Event → alert {q} (probe incidents), {rate}, lake writer running",
                _single(probe[q], "s"),
                f"≤ {target:.0f} s" if at_most else "",
                _status(math.inf if probe[q] is None else probe[q], target, at_most=True)
                if at_most
                else "",
                extra=f"{on['probes_alerted']}/{on['probes_sent']} probes",
            )
        )
    every = on["all_immediate_alerts_latency_s"]
    rows.append(
        _row(
            f"Event → alert p99, every rule but stopped-vehicle, {rate}",
            _single(every["p99"], "s"),
            extra=f"{every['n']:,} alerts",
        )
    )
    fresh = on["road_conditions_freshness_s"]
    limit = on["road_conditions_target_s"]
    rows.append(
        _row(
            f"Road-condition freshness p99 (window {on['road_conditions_window_s']} s + watermark "
            f"{on['road_conditions_watermark_s']} s)",
            _single(fresh["p99"], "s"),
            f"≤ {limit:.0f} s",
            _status(math.inf if fresh["p99"] is None else fresh["p99"], limit, at_most=True),
            extra=f"{fresh['n']:,} windows",
        )
    )
    rows.append(_row(f"Job CPU, lake writer alone, {rate}", _single(off["cpu_cores"], "cores")))
    rows.append(
        _row(f"Job CPU, lake writer + alert path, {rate}", _single(on["cpu_cores"], "cores"))
    )
    rows.append(_row("CPU the alert path costs", _single(al["alert_path_cpu_cores"], "cores")))
    return rows


def dashboard_rows(d: dict) -> list[dict[str, Any]]:
    """The dashboard at 10,000 vehicles: bytes to one browser, server CPU, event to screen."""
    fleet = f"{d['vehicles']:,} vehicles, {d['events_per_second']:,.0f} ev/s"
    rows = [
        _row(
            f"Dashboard: bytes/s to one browser, {fleet}",
            _single(d["sse_bytes_per_second"] / 1000, "kB/s"),
            extra=f"{d['rows_per_event']:.2f} rows per event",
        ),
        _row("Dashboard: server CPU", _single(d["server_cpu_percent"], "% of a core")),
        _row(
            "Dashboard: event → server-sent event p95",
            _single((d["event_to_sse_ms"]["p95"] or math.inf) / 1000, "s"),
            extra="1 s coalescing by design",
        ),
    ]
    page = d.get("browser")
    if page:
        shown = page.get("event_to_painted_ms") or {}
        if shown.get("p95") is not None:
            rows.append(
                _row(
                    "Dashboard: event → painted in chromium p95", _single(shown["p95"] / 1000, "s")
                )
            )
    return rows


def markdown(results: dict) -> str:
    meta = results["meta"]
    load = "–".join(
        f"{x:.1f}"
        for x in (meta["load_average_start"][0], meta.get("load_average_end", [math.nan])[0])
    )
    lines = [
        f"# Benchmark ({meta['mode']}) — {meta['started']}",
        "",
        f"`{meta['command']}` · {meta['cpus']} CPUs · 1-min load average {load} · "
        f"{meta.get('seconds', 0):.0f} s. Figures are machine-dependent; ratios are measured "
        "against baselines in the same run.",
        "",
        "| figure | median | min | max | runs | | target | status |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for r in table_rows(results):
        u = r["unit"]
        shown_unit = "" if u in ("ratio", "s", "MB", "µs") else f" {u}"
        lines.append(
            f"| {r['figure']} | {_fmt(r['median'], u)}{shown_unit} "
            f"| {_fmt(r['min'], u)} | {_fmt(r['max'], u)} | {r['n']} | {r['extra']} "
            f"| {r['target']} | {r['status']} |"
        )
    lat = results.get("latency")
    if lat:
        lines += [
            "",
            f"Latency phases (trigger {lat['trigger_seconds']} s):",
            "",
            "| rate | achieved | rows | p50 | p95 | p99 | not committed | drained after |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for rate, ph in lat["phases"].items():
            drained = "—" if ph["drain_seconds"] is None else f"{ph['drain_seconds']:.1f} s"
            pcts = " | ".join(
                _fmt(math.inf if ph[q] is None else ph[q], "s") for q in ("p50", "p95", "p99")
            )
            lines.append(
                f"| {int(rate):,} ev/s | {ph['achieved_rate']:,.0f} ev/s | "
                f"{ph['rows']:,} | {pcts} | {ph['not_committed']:,} | {drained} |"
            )
    lines += _before_after(results)
    lines += _steps(results)
    points = _batch_points(results)
    if points:
        lines += [
            "",
            "Job batch duration vs rows per trigger (the job's one query):",
            "",
            "| source | batches | rows per batch (median) | seconds per batch (median, min–max) |",
            "|---|---:|---:|---|",
        ]
        by_source: dict[str, list[dict]] = {}
        for pt in points:
            by_source.setdefault(pt["source"], []).append(pt)
        for source, pts in by_source.items():
            secs = sorted(x["seconds"] for x in pts)
            rws = sorted(x["rows"] for x in pts)
            lines.append(
                f"| {source} | {len(pts)} | {rws[len(rws) // 2]:,} | "
                f"{secs[len(secs) // 2]:.1f} s ({secs[0]:.1f}–{secs[-1]:.1f}) |"
            )
    profiles = [
        (name, prof)
        for name, prof in (
            ("backlog run", (results.get("job") or {}).get("profile")),
            ("batch ceiling", (results.get("job") or {}).get("ceiling_profile")),
            ("latency run", (results.get("latency") or {}).get("profile")),
        )
        if prof
    ]
    if profiles:
        lines += [
            "",
            "Job profile from Spark's own metrics (event log): where batch time goes "
            "(progress events' durationMs, summed over batches) and the tasks' CPU time:",
            "",
            "| run | queries | batches | rows read | addBatch (execution) | queryPlanning | "
            "latestOffset + getBatch | walCommit + commitOffsets |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, prof in profiles:
            for area, split in prof["batch_ms"].items():
                total = sum(split.values()) or 1

                def share(*phases: str, split: dict = split, total: int = total) -> str:
                    return (
                        f"{sum(split[p] for p in phases) / 1000:,.1f} s "
                        f"({sum(split[p] for p in phases) / total:.0%})"
                    )

                lines.append(
                    f"| {name} | {area} | {prof['batches'][area]} | {prof['rows_read'][area]:,} "
                    f"| {share('addBatch')} | {share('queryPlanning')} | "
                    f"{share('latestOffset', 'getBatch')} | "
                    f"{share('walCommit', 'commitOffsets')} |"
                )
        lines.append("")
        for name, prof in profiles:
            cpu = prof.get("process_cpu_s") or {}
            whole = (
                (
                    f"; the whole JVM used {cpu.get('jvm', 0):.1f} s of CPU and the Python "
                    f"driver {cpu.get('python', 0):.1f} s, in {prof.get('wall_s', 0):.0f} s of "
                    "wall time"
                )
                if cpu
                else ""
            )
            lines.append(
                f"- {name}: {prof['tasks']:,} tasks ran {prof['task_run_s']:.1f} s and used "
                f"{prof['task_cpu_s']:.1f} s of CPU ({prof['task_gc_s']:.1f} s GC){whole}"
            )
            threads = prof.get("jvm_threads_cpu_s") or {}
            if threads:
                lines.append(
                    "  - JVM CPU by thread: "
                    + ", ".join(f"{group} {seconds:.1f} s" for group, seconds in threads.items())
                )
            gen = prof.get("codegen") or {}
            if gen.get("classes"):
                lines.append(
                    f"  - Spark's code generator compiled {gen['classes']:,} classes "
                    f"(mean {gen.get('compile_ms_mean', 0):.0f} ms, largest source "
                    f"{gen.get('source_bytes_max', 0) / 1024:,.0f} KB), about "
                    f"{gen.get('compile_s_estimate', 0):.1f} s of compiling before the JIT"
                )
            sql = prof.get("sql_in_batches") or {}
            if sql.get("batches"):
                lines.append(
                    f"  - {sql['batches']} batch(es), {sql['batch_seconds']:.1f} s: "
                    + ", ".join(
                        f"{root} ×{e['count']} {e['seconds']:.1f} s"
                        + (f" ({e['what']})" if e["what"] else "")
                        for root, e in sql["executions"].items()
                    )
                    + f"; the driver between those executions "
                    f"{sql['driver_between_executions_s']:.1f} s"
                )
    if results.get("errors"):
        lines += ["", "Errors: " + ", ".join(sorted(results["errors"])) + " (see results.json)"]
    return "\n".join(lines) + "\n"


def _before_after(results: dict) -> list[str]:
    """The job's targets against the previous main's figures (``BEFORE``)."""
    j, lat = results.get("job"), results.get("latency")
    if not j and not lat:
        return []
    lines = [
        "",
        "Before (previous main: Parquet file sinks, ten queries) → after (this run):",
        "",
        "| figure | before | after |",
        "|---|---:|---:|",
    ]
    if j:
        lines += [
            f"| Job drain | {BEFORE['job_rows_per_s']:,.0f} rows/s (40,000 events) | "
            f"{_fmt(j['streaming_rows_per_s']['median'], 'rows/s')} rows/s "
            f"({j['events']:,} events) |",
            f"| Batch ceiling | {BEFORE['ceiling_rows_per_s']:,.0f} rows/s (cold JVM, JSON → "
            f"Parquet, no validation) | {_fmt(j['batch_ceiling_rows_per_s']['median'], 'rows/s')}"
            " rows/s (warm JVM, parse + validate + Iceberg) |",
            f"| Job / batch ceiling | {BEFORE['job_vs_ceiling']:.2f}× | "
            f"{_fmt(j['job_vs_ceiling']['median'], 'ratio')} |",
            f"| Job task CPU per event | {BEFORE['task_cpu_us_per_event']:,.0f} µs | "
            f"{_fmt(j['task_cpu_us_per_event']['median'], 'µs')} |",
        ]
    if lat and LATENCY_TARGET_RATE in lat["phases"]:
        p99 = lat["phases"][LATENCY_TARGET_RATE]["p99"]
        lines.append(
            f"| End-to-end p99 at 5,000 ev/s | {BEFORE['latency_p99_5000_s']:.1f} s | "
            f"{_fmt(math.inf if p99 is None else p99, 's')} |"
        )
    return lines


def _steps(results: dict) -> list[str]:
    """Where a batch's time goes, table by table, from the snapshots' commit times."""
    sources = []
    j, lat = results.get("job"), results.get("latency")
    if j and j.get("commit_steps"):
        sources.append(("backlog run", j["commit_steps"]))
    for cap, c in ((j or {}).get("by_cap") or {}).items():
        if c.get("commit_steps"):
            sources.append((f"backlog run, at most {int(cap):,} per trigger", c["commit_steps"]))
    if j and j.get("ceiling_steps"):
        sources.append(
            (
                "batch ceiling (warm pass)",
                {
                    t: {"batches": 1, "seconds": sec, "rows": 0}
                    for t, sec in j["ceiling_steps"].items()
                },
            )
        )
    for rate, ph in ((lat or {}).get("phases") or {}).items():
        if ph.get("steps"):
            sources.append((f"latency run, {int(rate):,} ev/s", ph["steps"]))
    if not sources:
        return []
    lines = [
        "",
        "Where batch time goes, by table (from the Iceberg snapshots' commit times: "
        "each step runs from the previous commit, or the batch's start, to this table's "
        "commit; summed over batches):",
        "",
        "| run | batches | steps (seconds, share) |",
        "|---|---:|---|",
    ]
    for name, steps in sources:
        total = sum(st["seconds"] for st in steps.values()) or 1.0
        batches = max((st["batches"] for st in steps.values()), default=0)
        shown = ", ".join(
            f"{table} {st['seconds']:.1f} s ({st['seconds'] / total:.0%})"
            for table, st in steps.items()
            if st["seconds"] >= 0.05 * total
        )
        lines.append(f"| {name} | {batches} | {shown} |")
    return lines


def _batch_points(results: dict) -> list[dict]:
    return [
        *(results.get("job") or {}).get("batch_points", []),
        *(results.get("latency") or {}).get("batch_points", []),
    ]


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    fig.suptitle(
        f"Smart City benchmark ({results['meta']['mode']}, {results['meta']['started']}; "
        f"{results['meta']['cpus']} CPUs; machine-dependent)"
    )

    def errbar(ax, xs, figs, label, **kw):
        med = [f["median"] for f in figs]
        lo = [f["median"] - f["min"] for f in figs]
        hi = [f["max"] - f["median"] for f in figs]
        ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=4, label=label, **kw)

    ax = axes[0][0]
    p = results.get("producer")
    if p:
        vs = [int(v) for v in p["producer"]]
        errbar(ax, vs, list(p["simulator_only"].values()), "simulator only (ceiling)")
        errbar(ax, vs, list(p["producer"].values()), "producer (send_events)")
        ax.axhline(p["tutorial"]["median"], color="grey", ls="--", label="tutorial pattern")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax.set(title="Producer throughput", xlabel="vehicles", ylabel="events/s")

    ax = axes[0][1]
    if p:
        vs = [int(v) for v in p["producer_vs_ceiling"]]
        errbar(ax, vs, list(p["producer_vs_ceiling"].values()), "producer / ceiling")
        ax.axhline(TARGETS["producer_vs_ceiling"], color="red", ls=":", label="target")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.1)
        ax.legend(fontsize=8)
    ax.set(title="Producer share of the CPU ceiling", xlabel="vehicles", ylabel="ratio")

    ax = axes[0][2]
    j = results.get("job")
    if j:
        labels = ["job drain", "batch ceiling\n(warm)", "batch ceiling\n(cold)"]
        figs = [
            j["streaming_rows_per_s"],
            j["batch_ceiling_rows_per_s"],
            j["batch_ceiling_cold_rows_per_s"],
        ]
        for v, fig_ in j["by_vehicles"].items():
            labels.append(f"job drain\n{int(v):,} veh.")
            figs.append(fig_)
        for cap, c in (j.get("by_cap") or {}).items():
            labels.append(f"job, ≤{int(cap) // 1000}k per\ntrigger, warm")
            figs.append(c["steady_rows_per_s"])
        ax.bar(labels, [f["median"] or 0 for f in figs], color="tab:blue")
        ax.axhline(
            j["batch_ceiling_rows_per_s"]["median"] * TARGETS["job_vs_ceiling"],
            color="red",
            ls=":",
            label="target: 0.5 × warm ceiling",
        )
        fleet = j["fleet_events_per_s"]["median"]
        ax.axhline(
            fleet * TARGETS["job_vs_fleet"],
            color="purple",
            ls="--",
            label=f"target: 5 × {j['fleet']['vehicles']:,}-vehicle fleet",
        )
        ax.axhline(fleet, color="grey", ls="-.", label="fleet real-time rate")
        ax.tick_params(axis="x", labelsize=7)
        ax.legend(fontsize=7)
    ax.set(title="Job throughput (Iceberg lake)", ylabel="rows/s")

    ax = axes[1][0]
    lat = results.get("latency")
    if lat:
        rates = list(lat["phases"])
        width = 0.25
        for i, q in enumerate(("p50", "p95", "p99")):
            vals = [lat["phases"][r][q] for r in rates]
            shown = [v if v is not None else 0 for v in vals]
            bars = ax.bar([k + (i - 1) * width for k in range(len(rates))], shown, width, label=q)
            for bar, v in zip(bars, vals, strict=True):
                if v is None:
                    ax.annotate("not reached", (bar.get_x(), 0), fontsize=7, rotation=90)
        ax.axhline(
            lat["trigger_seconds"] + TARGETS["latency_p99_margin_s"],
            color="red",
            ls=":",
            label="p99 target",
        )
        ax.set_xticks(range(len(rates)), [f"{int(r):,} ev/s" for r in rates])
        ax.legend(fontsize=8)
    ax.set(title="End-to-end latency", ylabel="seconds")

    ax = axes[1][1]
    points = _batch_points(results)
    for source in sorted({pt["source"] for pt in points}):
        pts = [pt for pt in points if pt["source"] == source]
        ax.scatter([pt["rows"] for pt in pts], [pt["seconds"] for pt in pts], s=14, label=source)
    if points:
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    ax.set(
        title="Job batch duration vs rows per trigger", xlabel="rows in the batch", ylabel="seconds"
    )

    ax = axes[1][2]
    labels, values = [], []
    m = results.get("memory")
    if m:
        labels.append(f"producer\n{m['vehicles']:,} veh.")
        values.append(m["producer_peak_rss_mb"]["median"])
    if j:
        for role in ("jvm", "python"):
            labels.append(f"job driver\n{role}")
            values.append(j["driver_peak_rss_mb"][role]["median"])
    if values:
        ax.bar(labels, values)
        ax.axhline(TARGETS["producer_peak_rss_mb"], color="red", ls=":", label="producer target")
        ax.legend(fontsize=8)
    ax.set(title="Peak RSS", ylabel="MB")

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _clean(value: Any) -> Any:
    """JSON has no infinity: not-reached values become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write(results: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {**results, "table": table_rows(results)}
    paths = {
        "json": out_dir / "results.json",
        "markdown": out_dir / "results.md",
        "chart": out_dir / "results.png",
    }
    paths["json"].write_text(json.dumps(_clean(results), indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(results), encoding="utf-8")
    chart(results, paths["chart"])
    return paths
