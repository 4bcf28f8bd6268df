"""Render the README's field tables from the contracts: `python -m scripts.docs`.

The README embeds this output verbatim; a test fails when the two differ.
"""

from __future__ import annotations

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS, LAKE, Field, _num


def _rule(f: Field) -> str:
    parts = []
    if f.min is not None and f.max is not None:
        parts.append(f"{_num(f.min)} – {_num(f.max)}")
    elif f.min is not None:
        parts.append(f"≥ {_num(f.min)}")
    elif f.max is not None:
        parts.append(f"≤ {_num(f.max)}")
    if f.enum:
        parts.append(" \\| ".join(f.enum))
    if f.type == "location":
        parts.append("latitude −90 – 90, longitude −180 – 180")
    return "; ".join(parts)


def render() -> str:
    out = []
    for stream in ALL_STREAMS:
        c = CONTRACTS[stream]
        out.append(f"#### `{stream}` (v{c.version}) — topic `{c.default_topic}` (`{c.topic_env}`)")
        out.append("")
        out.append(c.description + ".")
        out.append("")
        out.append("| field | type | required | rule | description |")
        out.append("|---|---|---|---|---|")
        for f in c.fields:
            required = "yes" if f.required else "no"
            out.append(f"| `{f.name}` | {f.type} | {required} | {_rule(f)} | {f.description} |")
        out.append("")
    out.append(
        "Every row of a stream's table also has: "
        + ", ".join(f"`{c['name']}` ({c['type']})" for c in LAKE.metadata_columns)
        + f". Tables are partitioned by `{LAKE.data_partition}(timestamp)` (hidden)."
    )
    out.append("")
    out.append(
        "Each `<stream>_quarantine` table has: "
        + ", ".join(f"`{c['name']}` ({c['type']})" for c in LAKE.quarantine_columns)
        + f"; partitioned by `{LAKE.quarantine_partition}`. The `{LAKE.duplicates_table}` "
        + "table has: "
        + ", ".join(f"`{c['name']}` ({c['type']})" for c in LAKE.duplicate_columns)
        + f"; partitioned by `{LAKE.duplicates_partition}`."
    )
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
