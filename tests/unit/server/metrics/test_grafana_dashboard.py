"""ops/grafana/rotary.json only queries metrics rotary exports.

Every PromQL expression of the dashboard (panel targets and variable queries) is tokenized, and each
metric name in it must be a sample name of rotary's exposition with every family filled in (one
observation of each kind, so families that appear only after traffic are there too).
See https://centrifugal.dev/docs/server/observability#grafana-dashboard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helpers.filled_metrics import filled_families

from rotary.server.metrics.text import render

DASHBOARD = Path(__file__).resolve().parents[4] / "ops" / "grafana" / "rotary.json"

TOKEN = re.compile(
    r"""(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')"""
    r"|(?P<range>\[[^\]]*\])"
    r"|(?P<matchers>\{[^}]*\})"
    r"|(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+|ms|[smhdwy])?)"  # numbers and durations
    r"|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)"
    r"|(?P<other>\S)"
)
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"bool", "and", "or", "unless", "offset", "atan2", *GROUPING}


def metric_names(expr: str) -> list[str]:
    """The metric names a PromQL expression selects: names that are not functions or aggregations
    (followed by "(" or by a grouping clause), keywords, or labels of a grouping clause."""
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(expr)]
    names: list[str] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "name" and text in GROUPING and following == "(":
            while tokens[i][1] != ")":
                i += 1
        elif kind == "name" and following != "(" and following not in GROUPING and text not in KEYWORDS:
            names.append(text)
        i += 1
    return names


def expressions(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]


def variable_metrics(dashboard: dict[str, Any]) -> Iterator[str]:
    """The metric of each ``label_values(<metric>, <label>)`` variable query."""
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found = re.match(r"label_values\(([A-Za-z_:][A-Za-z0-9_:]*)", variable["definition"])
            assert found, variable["definition"]
            yield found.group(1)


def exported_sample_names() -> set[str]:
    """Sample names of rotary's exposition with one observation in every family."""
    text = render(filled_families()).decode()
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if not line.startswith("#")}


def test_tokenizer_finds_metric_names_only() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, method) (rate(a_bucket{job=~"$job", x="y(z)"}[$__interval])))'
        " / on (instance) group_left b offset 5m + 1e3 * c_total"
    )
    assert metric_names(expr) == ["a_bucket", "b", "c_total"]


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_sample_names()
    queried = [name for expr in expressions(dashboard) for name in metric_names(expr)]
    queried += list(variable_metrics(dashboard))
    assert len(set(queried)) > 30
    assert sorted({name for name in queried if name not in exported}) == []


def test_panels_have_unique_ids_and_targets() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["type"] == "row" or panel["targets"], panel["title"]
