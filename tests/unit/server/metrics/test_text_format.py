"""rotary's own writer of the Prometheus text format: Centrifugo's counter names unchanged (no added
``_total``), values and labels as Go's client writes them, and prometheus_client's parser reads it.
See https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from rotary.server.metrics.text import Family, number, render


def test_counter_names_stay_as_given_and_labels_are_escaped() -> None:
    family = Family("centrifugo_client_num_reply_errors", "counter", 'Errors "sent"\\ back\nto clients.')
    family.add([("method", "rpc"), ("code", "108"), ("channel_namespace", 'a"b\\c\nd')], 2)
    text = render([family]).decode()
    assert text == (
        '# HELP centrifugo_client_num_reply_errors Errors "sent"\\\\ back\\nto clients.\n'
        "# TYPE centrifugo_client_num_reply_errors counter\n"
        'centrifugo_client_num_reply_errors{channel_namespace="a\\"b\\\\c\\nd",code="108",method="rpc"} 2\n'
    )
    (parsed,) = text_string_to_metric_families(text)
    assert parsed.samples[0].labels["channel_namespace"] == 'a"b\\c\nd'


def test_le_and_quantile_come_last_and_numbers_read_as_go_writes_them() -> None:
    family = Family("x_seconds", "histogram", "h")
    family.add([("method", "publish"), ("le", "0.005")], 1, "_bucket")
    assert 'x_seconds_bucket{method="publish",le="0.005"} 1' in render([family]).decode()
    assert [number(v) for v in (0, 3.0, 0.25, float("nan"), float("inf"), 1e-06)] == [
        "0",
        "3",
        "0.25",
        "NaN",
        "+Inf",
        "1e-06",
    ]
