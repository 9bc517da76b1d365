"""Turns benchmark rows into rotary/floor ratios and a plain-text table."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

TARGET_CPU_RATIO = 3.0
"""rotary's CPU per delivery should stay within this multiple of the floor's."""

COLUMNS = (
    ("#", "round", "{}"),
    ("N", "subscribers", "{}"),
    ("scenario", "scenario", "{}"),
    ("server", "server", "{}"),
    ("load", "load", "{}"),
    ("deliveries", "deliveries", "{}"),
    ("lost", "lost", "{}"),
    ("deliv/s", "deliveries_per_s", "{:.0f}"),
    ("burst deliv/s", "fanout_per_s", "{:.0f}"),
    ("p50 ms", "latency_p50_ms", "{:.2f}"),
    ("p99 ms", "latency_p99_ms", "{:.2f}"),
    ("srv CPU", "server_cpu_share", "{:.0%}"),
    ("gen CPU", "generator_cpu_share", "{:.0%}"),
    ("other CPU", "other_cpu_share", "{:.0%}"),
    ("us/deliv", "server_cpu_us_per_delivery", "{:.2f}"),
)

RATIO_FIELDS = ("server_cpu_us_per_delivery", "latency_p50_ms", "latency_p99_ms", "fanout_per_s")


def medians(rows: list[dict[str, Any]]) -> dict[tuple[int, str, str], dict[str, float]]:
    """The median of each ratio field over the rounds of one (subscribers, scenario, server)."""
    groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["subscribers"], row["scenario"], row["server"]), []).append(row)
    return {
        key: {name: statistics.median(r[name] for r in group) for name in RATIO_FIELDS}
        for key, group in groups.items()
    }


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """rotary/floor for each (subscribers, scenario) measured on both servers, from medians."""
    by_key = medians(rows)
    out = []
    for (subscribers, scenario, server), rotary in by_key.items():
        floor = by_key.get((subscribers, scenario, "floor"))
        if server != "rotary" or floor is None:
            continue
        entry: dict[str, Any] = {
            "subscribers": subscribers,
            "scenario": scenario,
            "rotary": rotary,
            "floor": floor,
        }
        for name in RATIO_FIELDS:
            entry[name] = rotary[name] / floor[name] if floor[name] else float("nan")
        entry["within_target"] = entry["server_cpu_us_per_delivery"] <= TARGET_CPU_RATIO
        out.append(entry)
    return out


def render_table(rows: list[dict[str, Any]], ratio_rows: list[dict[str, Any]]) -> str:
    cells = [[fmt.format(row[key]).strip() for _, key, fmt in COLUMNS] for row in rows]
    widths = [max([len(title)] + [len(c[i]) for c in cells]) for i, (title, _, _) in enumerate(COLUMNS)]
    header = " | ".join(title.rjust(w) for (title, _, _), w in zip(COLUMNS, widths, strict=True))
    lines = [header, "-" * len(header)]
    lines += [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines += [
        "",
        f"rotary/floor (medians over rounds; target: CPU per delivery <= {TARGET_CPU_RATIO:.0f}x)",
        "      N scenario  us/deliv rotary  floor   ratio     p50     p99  burst deliv/s",
    ]
    lines += [_ratio_line(r) for r in ratio_rows]
    return "\n".join(lines)


def _ratio_line(r: dict[str, Any]) -> str:
    cpu = "server_cpu_us_per_delivery"
    verdict = "ok" if r["within_target"] else "MISSED"
    return (
        f"  {r['subscribers']:>5} {r['scenario']:<8} {r['rotary'][cpu]:>15.2f} {r['floor'][cpu]:>6.2f} "
        f"{r[cpu]:>6.2f}x {r['latency_p50_ms']:>6.2f}x {r['latency_p99_ms']:>6.2f}x "
        f"{r['fanout_per_s']:>13.2f}x  {verdict}"
    )


def save(result: dict[str, Any], text: str, out: Path, prefix: str) -> None:
    """Prints the report and keeps the raw result as JSON under ``out`` (git-ignored)."""
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"results: {path}")
