"""Turns benchmark rows into rotary/floor and rotary/Centrifugo ratios and a plain-text report."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

TARGET_CPU_RATIO = 3.0
"""rotary's CPU per delivery should stay within this multiple of the floor's."""
BASELINES = ("floor", "centrifugo")
"""What rotary's fan-out figures are divided by: the picows floor and Centrifugo itself."""
WEBTRANSPORT = "rotary-webtransport"
"""rotary with WebTransport subscribers, compared with rotary's bidirectional WebSocket ones."""
TARGET_WEBTRANSPORT_RATIO = 1.2
"""WebTransport's CPU per delivery should stay within this multiple of WebSocket's (issue 9)."""

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

TARGET_TRANSPORT_RATIO = 1.2
"""Every transport's CPU per delivery should stay within this multiple of bidirectional WebSocket's."""
ASGI = "rotary-asgi"
TARGET_ASGI_RATIO = 2.0
"""The ASGI mount under uvicorn should stay within this multiple of the standalone server (issue 13)."""


def _target(server: str) -> float:
    """The ratio to standalone WebSocket a target should stay within: the ASGI mount's, under any
    uvicorn settings, or a transport's."""
    return TARGET_ASGI_RATIO if server.startswith(ASGI) else TARGET_TRANSPORT_RATIO


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


def ratios(rows: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """rotary/``baseline`` for each (subscribers, scenario) measured on both servers, from medians."""
    by_key = medians(rows)
    out = []
    for (subscribers, scenario, server), rotary in by_key.items():
        base = by_key.get((subscribers, scenario, baseline))
        if server != "rotary" or base is None:
            continue
        entry: dict[str, Any] = {
            "subscribers": subscribers,
            "scenario": scenario,
            "rotary": rotary,
            baseline: base,
        }
        for name in RATIO_FIELDS:
            entry[name] = rotary[name] / base[name] if base[name] else float("nan")
        if baseline == "floor":
            entry["within_target"] = entry["server_cpu_us_per_delivery"] <= TARGET_CPU_RATIO
        out.append(entry)
    return out


def webtransport_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """rotary's CPU per delivery over WebTransport / over WebSocket, from medians, where both ran."""
    by_key = medians(rows)
    cpu = "server_cpu_us_per_delivery"
    out = []
    for (subscribers, scenario, server), webtransport in by_key.items():
        websocket = by_key.get((subscribers, scenario, "rotary"))
        if server != WEBTRANSPORT or websocket is None or not websocket[cpu]:
            continue
        ratio = webtransport[cpu] / websocket[cpu]
        out.append(
            {
                "subscribers": subscribers,
                "scenario": scenario,
                "webtransport": webtransport[cpu],
                "websocket": websocket[cpu],
                "ratio": ratio,
                "within_target": ratio <= TARGET_WEBTRANSPORT_RATIO,
            }
        )


METRICS_TARGET = 1.05
"""rotary with Prometheus on should spend at most this multiple of its CPU per delivery with it off."""


def metrics_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """rotary with metrics on ("rotary" in the entries) over rotary with them off ("metrics off")."""
    renamed = {"rotary-metrics": "rotary", "rotary": "metrics off"}
    relabelled = [{**row, "server": renamed[row["server"]]} for row in rows if row["server"] in renamed]
    out = ratios(relabelled, "metrics off")
    for entry in out:
        entry["within_target"] = entry["server_cpu_us_per_delivery"] <= METRICS_TARGET
    return out


def transport_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each ``rotary-<transport>`` target (and the floor) over rotary on bidirectional WebSocket, for
    each (subscribers, scenario), from medians, with the spread of CPU per delivery over the rounds."""
    by_key = medians(rows)
    spread: dict[tuple[int, str, str], tuple[float, float]] = {}
    for key in by_key:
        values = [
            r["server_cpu_us_per_delivery"]
            for r in rows
            if (r["subscribers"], r["scenario"], r["server"]) == key
        ]
        spread[key] = (min(values), max(values))
    out = []
    for (subscribers, scenario, server), figures in sorted(by_key.items()):
        base = by_key.get((subscribers, scenario, "rotary"))
        if base is None or not (server.startswith("rotary") or server == "floor"):
            continue
        cpu = figures["server_cpu_us_per_delivery"]
        ratio = (
            cpu / base["server_cpu_us_per_delivery"] if base["server_cpu_us_per_delivery"] else float("nan")
        )
        low, high = spread[(subscribers, scenario, server)]
        out.append(
            {
                "subscribers": subscribers,
                "scenario": scenario,
                "server": server,
                "us_per_delivery": cpu,
                "us_per_delivery_min": low,
                "us_per_delivery_max": high,
                "ratio": ratio,
                "within_target": None if server == "floor" else ratio <= _target(server),
            }
        )
    return out


EXTRA_FIELDS = {
    "idle memory": ("kib_per_connection",),
    "api publish": ("per_s", "server_cpu_us_per_op"),
    "connect": ("per_s", "server_cpu_us_per_op"),
}
"""The figures of each non-fan-out measure that rotary/Centrifugo ratios are given for."""


def extra_ratios(extras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """rotary/Centrifugo for each (subscribers, measure) of the connect, memory and API rows, from medians."""
    groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for row in extras:
        groups.setdefault((row["subscribers"], row["measure"], row["server"]), []).append(row)
    out = []
    for (subscribers, measure, server), group in groups.items():
        base = groups.get((subscribers, measure, "centrifugo"))
        if server != "rotary" or base is None:
            continue
        for name in EXTRA_FIELDS[measure]:
            rotary = statistics.median(r[name] for r in group)
            centrifugo = statistics.median(r[name] for r in base)
            out.append(
                {
                    "subscribers": subscribers,
                    "measure": measure,
                    "figure": name,
                    "rotary": rotary,
                    "centrifugo": centrifugo,
                    "ratio": rotary / centrifugo if centrifugo else float("nan"),
                }
            )
    return out


def describe_extra(row: dict[str, Any]) -> str:
    if row["measure"] == "idle memory":
        return (
            f"RSS {row['rss_before_mb']:.1f} -> {row['rss_after_mb']:.1f} MiB, "
            f"{row['kib_per_connection']:.1f} KiB per connection"
        )
    return (
        f"{row['operations']} in {row['operations'] / row['per_s']:.2f}s = {row['per_s']:.0f}/s, "
        f"{row['server_cpu_us_per_op']:.1f} us server CPU each, srv CPU {row['server_cpu_share']:.0%}, "
        f"gen CPU {row['generator_cpu_share']:.0%}, other CPU {row['other_cpu_share']:.0%}"
    )


def render_report(result: dict[str, Any]) -> str:
    rows = result["rows"]
    cells = [[fmt.format(row[key]).strip() for _, key, fmt in COLUMNS] for row in rows]
    widths = [max([len(title)] + [len(c[i]) for c in cells]) for i, (title, _, _) in enumerate(COLUMNS)]
    header = " | ".join(title.rjust(w) for (title, _, _), w in zip(COLUMNS, widths, strict=True))
    lines = [header, "-" * len(header)]
    lines += [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    for baseline, ratio_rows in result["ratios"].items():
        if not ratio_rows:
            continue
        target = f"; target: CPU per delivery <= {TARGET_CPU_RATIO:.0f}x" if baseline == "floor" else ""
        lines += [
            "",
            f"rotary/{baseline} (medians over rounds{target})",
            f"      N scenario  us/deliv rotary {baseline:>10}   ratio     p50     p99  burst deliv/s",
        ]
        lines += [_ratio_line(r, baseline) for r in ratio_rows]
    if result.get("webtransport_ratios"):
        lines += [
            "",
            "rotary WebTransport/WebSocket "
            f"(medians; target: CPU per delivery <= {TARGET_WEBTRANSPORT_RATIO}x)",
            "      N scenario  us/deliv webtransport  websocket   ratio",
        ]
        lines += [
            f"  {r['subscribers']:>5} {r['scenario']:<8} {r['webtransport']:>21.2f} {r['websocket']:>10.2f} "
            f"{r['ratio']:>6.2f}x  {'ok' if r['within_target'] else 'MISSED'}"
            for r in result["webtransport_ratios"]
        ]
    if result.get("metrics_ratios"):
        lines += [
            "",
            f"rotary with / without prometheus.enabled (medians; target: CPU/delivery <= {METRICS_TARGET}x)",
            "      N scenario  us/deliv    on        off   ratio     p50     p99  burst deliv/s",
        ]
        lines += [_ratio_line(r, "metrics off") for r in result["metrics_ratios"]]
    if len({r["server"] for r in result.get("transport_ratios", [])}) > 1:
        lines += [
            "",
            "per transport / bidirectional WebSocket "
            f"(medians over rounds; target <= {TARGET_TRANSPORT_RATIO}x)",
            "      N scenario server                  us/deliv   (min - max)    ratio",
        ]
        lines += [_transport_line(r) for r in result["transport_ratios"]]
    if result["extras"]:
        lines += ["", "connect, idle memory, API publish (rotary and Centrifugo only)"]
        lines += [
            f"  {r['round']:>2} {r['subscribers']:>5} {r['server']:<10} {r['measure']:<11} "
            f"{describe_extra(r)}"
            for r in result["extras"]
        ]
    if result["extra_ratios"]:
        lines += [
            "",
            "rotary/centrifugo (medians over rounds)",
            "      N measure     figure                  rotary  centrifugo   ratio",
        ]
        lines += [
            f"  {r['subscribers']:>5} {r['measure']:<11} {r['figure']:<20} {r['rotary']:>10.1f} "
            f"{r['centrifugo']:>11.1f} {r['ratio']:>6.2f}x"
            for r in result["extra_ratios"]
        ]
    loads = ", ".join(f"{one:.2f}" for one, _, _ in result["load_averages"])
    lines += ["", f"1-minute load average before and after each server: {loads}"]
    return "\n".join(lines)


def _ratio_line(r: dict[str, Any], baseline: str) -> str:
    cpu = "server_cpu_us_per_delivery"
    verdict = ("ok" if r["within_target"] else "MISSED") if "within_target" in r else ""
    return (
        f"  {r['subscribers']:>5} {r['scenario']:<8} {r['rotary'][cpu]:>15.2f} {r[baseline][cpu]:>10.2f} "
        f"{r[cpu]:>6.2f}x {r['latency_p50_ms']:>6.2f}x {r['latency_p99_ms']:>6.2f}x "
        f"{r['fanout_per_s']:>13.2f}x  {verdict}"
    )


def _transport_line(r: dict[str, Any]) -> str:
    verdict = {True: "ok", False: "MISSED", None: ""}[r["within_target"]]
    return (
        f"  {r['subscribers']:>5} {r['scenario']:<8} {r['server']:<22} {r['us_per_delivery']:>8.2f} "
        f"({r['us_per_delivery_min']:>6.2f} - {r['us_per_delivery_max']:>6.2f}) "
        f"{r['ratio']:>6.2f}x  {verdict}"
    )


def save(result: dict[str, Any], text: str, out: Path, prefix: str) -> None:
    """Prints the report and keeps the raw result as JSON under ``out`` (git-ignored)."""
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"results: {path}")
