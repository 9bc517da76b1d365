"""The scale benchmark's text report: every measured row, then medians and the ratios asked for.

The target (``--workers 2`` on Redis delivers at least 1.7x a single Redis node's deliveries/s) is
checked on the fan-out medians.
"""

from __future__ import annotations

from typing import Any

TARGET_WORKERS_RATIO = 1.7

COLUMNS = (
    ("#", "round", "{}"),
    ("setup", "setup", "{}"),
    ("kind", "kind", "{}"),
    ("N", "subscribers", "{}"),
    ("conns/worker", "connections_per_worker", "{}"),
    ("ops/s", "per_s", "{:.0f}"),
    ("srv us/op", "server_us_per_op", "{:.2f}"),
    ("+redis us/op", "total_us_per_op", "{:.2f}"),
    ("srv cores", "server_cores", "{:.2f}"),
    ("redis", "redis_cores", "{:.2f}"),
    ("gen", "generator_cores", "{:.2f}"),
    ("other", "other_cores", "{:.2f}"),
    ("load1", "loadavg", "{:.1f}"),
    ("tries", "tries", "{}"),
)


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if isinstance(value, list):
        return "/".join(map(str, value))
    return fmt.format(value)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    cells = [[_cell(row, key, fmt) for _, key, fmt in COLUMNS] for row in rows]
    widths = [max([len(title)] + [len(c[i]) for c in cells]) for i, (title, _, _) in enumerate(COLUMNS)]
    header = " | ".join(title.rjust(w) for (title, _, _), w in zip(COLUMNS, widths, strict=True))
    return [header, "-" * len(header)] + [
        " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells
    ]


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render(result: dict[str, Any]) -> str:
    lines = _table(result["rows"])
    lines += [
        "",
        "medians over rounds (ops = deliveries for fan-out, publications for api); ratios: "
        "ops/s and server CPU per op against memory and against one redis node;",
        "projected = workers x 1e6 / (srv us/op): ops/s with a whole core per worker",
        "  setup     kind       N    ops/s  srv us/op  srv cores  projected  ops/s:mem  cpu:mem"
        "  ops/s:redis  cpu:redis  projected:redis",
    ]
    for m in result["medians"]:
        lines.append(
            f"  {m['setup']:<9} {m['kind']:<6} {m['subscribers']:>5} {m['per_s']:>8.0f} "
            f"{m['server_us_per_op']:>10.2f} {m['server_cores']:>10.2f} {m['projected_per_s']:>10.0f} "
            f"{_ratio(m['per_s_vs_memory']):>10} {_ratio(m['cpu_vs_memory']):>8} "
            f"{_ratio(m['per_s_vs_redis']):>12} {_ratio(m['cpu_vs_redis']):>10} "
            f"{_ratio(m['projected_vs_redis']):>16}"
        )
    for m in result["medians"]:
        if m["setup"] == "redis-w2" and m["kind"] == "fanout" and m["per_s_vs_redis"] is not None:
            verdict = "met" if m["per_s_vs_redis"] >= TARGET_WORKERS_RATIO else "MISSED"
            lines.append(
                f"\ntarget: redis --workers 2 fan-out >= {TARGET_WORKERS_RATIO}x one redis node: "
                f"measured {m['per_s_vs_redis']:.2f}x ({verdict}); with a core per worker "
                f"(projected from CPU per delivery) {m['projected_vs_redis']:.2f}x"
            )
    return "\n".join(lines)
