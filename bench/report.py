"""Turns benchmark rows into rotary/floor ratios and a plain-text table."""

from __future__ import annotations

from typing import Any

TARGET_CPU_RATIO = 3.0
"""rotary's CPU per delivery should stay within this multiple of the floor's."""

COLUMNS = (
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


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """rotary/floor for each (subscribers, scenario) measured on both servers."""
    by_key = {(r["subscribers"], r["scenario"], r["server"]): r for r in rows}
    out = []
    for (subscribers, scenario, server), rotary in by_key.items():
        floor = by_key.get((subscribers, scenario, "floor"))
        if server != "rotary" or floor is None:
            continue
        entry: dict[str, Any] = {"subscribers": subscribers, "scenario": scenario}
        for name in RATIO_FIELDS:
            entry[name] = rotary[name] / floor[name] if floor[name] else float("nan")
        entry["within_target"] = entry["server_cpu_us_per_delivery"] <= TARGET_CPU_RATIO
        out.append(entry)
    return out


def render_table(rows: list[dict[str, Any]], ratio_rows: list[dict[str, Any]]) -> str:
    cells = [[fmt.format(row[key]).strip() for _, key, fmt in COLUMNS] for row in rows]
    widths = [max([len(title)] + [len(c[i]) for c in cells]) for i, (title, _, _) in enumerate(COLUMNS)]
    header = " | ".join(title.rjust(w) for (title, _, _), w in zip(COLUMNS, widths))
    lines = [header, "-" * len(header)]
    lines += [" | ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.append("")
    lines.append("rotary/floor:  N  scenario  CPU/delivery  p50  p99  burst deliv/s  (target CPU <= "
                 f"{TARGET_CPU_RATIO:.0f}x)")
    for r in ratio_rows:
        verdict = "ok" if r["within_target"] else "MISSED"
        lines.append(f"  {r['subscribers']:>5} {r['scenario']:<7} {r['server_cpu_us_per_delivery']:>6.2f}x "
                     f"{r['latency_p50_ms']:>6.2f}x {r['latency_p99_ms']:>6.2f}x "
                     f"{r['fanout_per_s']:>6.2f}x  {verdict}")
    return "\n".join(lines)
