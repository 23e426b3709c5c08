"""Charts as data, the HTML report's SVG, readable job lines, and the benchmark form's memory and wording."""

from __future__ import annotations

import json
import stat
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kumotui.bench.charts import CPU_LINES, Chart, Curve, Trail, chart_svg, cpu_values, nice_ticks, overlay_charts
from kumotui.bench.form import (
    FIELD_FLAGS,
    FIELD_LABELS,
    BenchForm,
    for_the_form,
    form_path,
    load_form,
    save_form,
)
from kumotui.bench.joblog import readable_line
from kumotui.bench.live import LiveWatch
from kumotui.bench.report import report_html, report_markdown
from kumotui.engines import smtp_gen
from kumotui.errors import KumotuiError
from tests.support.demo import demo_runs

SVG = "{http://www.w3.org/2000/svg}"


# --- charts -------------------------------------------------------------------------------


def test_a_trail_spans_the_whole_run_in_bounded_memory() -> None:
    trail = Trail(("sent", "delivered"), limit=10)
    for second in range(1000):
        trail.add(float(second), (float(second), None if second % 2 else 1.0))
    assert len(trail) < 10  # bounded however long the run
    sent, delivered = trail.curves()
    assert sent.points[0] == (0.0, 0.0)  # from the start...
    assert sent.points[-1][0] >= 1000 - trail.stride  # ...to the last stride
    steps = {round(b[0] - a[0]) for a, b in zip(sent.points, sent.points[1:], strict=False)}
    assert steps == {trail.stride}  # evenly spaced
    assert all(value == 1.0 for _, value in delivered.points)  # gaps left out, not zeros


def test_many_cores_become_busiest_average_least() -> None:
    assert cpu_values([10.0, 20.0]) == (10.0, 20.0)
    many = [float(i) for i in range(CPU_LINES + 4)]
    assert cpu_values(many) == (max(many), sum(many) / len(many), 0.0)


@pytest.mark.parametrize(("top", "expected"), [(5_236.0, [0, 2000, 4000, 6000]), (13.8, [0, 5, 10, 15]), (0.0, [0, 1])])
def test_ticks_are_round_and_cover_the_data(top: float, expected: list[float]) -> None:
    assert nice_ticks(top, 3) == expected


def test_an_svg_chart_has_axes_units_ticks_and_one_line_per_curve() -> None:
    chart = Chart(
        "Messages per second",
        "msgs/s",
        (Curve("sent", ((0.0, 0.0), (1.0, 4800.0), (2.0, 5236.0))), Curve("received", ())),
    )
    root = ET.fromstring(chart_svg(chart))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Messages per second" in texts and "msgs/s" in texts and "seconds" in texts
    assert {"0", "2k", "4k", "6k"} <= set(texts)  # y ticks with round values
    assert "received (no data)" in texts and "sent" in texts
    lines = [p for p in root.iter(f"{SVG}polyline") if p.get("stroke") not in ("#333",)]
    assert len(lines) == 1  # one curve with points; the axes are the other polyline
    points = [tuple(map(float, xy.split(","))) for xy in (lines[0].get("points") or "").split()]
    assert len(points) == 3 and points[0][1] > points[2][1]  # 0 is at the bottom, 5,236 near the top


def test_two_runs_overlay_on_the_same_axes(tmp_path: Path) -> None:
    before, after = demo_runs(tmp_path)
    throughput, latency = overlay_charts(before.series, after.series)
    assert [c.name for c in throughput.curves] == ["A sent", "B sent"]
    assert all(curve.points for curve in (*throughput.curves, *latency.curves))
    assert max(v for _, v in throughput.curves[1].points) > max(v for _, v in throughput.curves[0].points)


class Page(HTMLParser):
    """What a browser would find in the report: tags, table cells, text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


@pytest.mark.parametrize("two", [False, True])
def test_the_html_report_has_the_markdowns_figures_and_svg_charts(tmp_path: Path, two: bool) -> None:
    before, after = demo_runs(tmp_path)
    runs = (before, after) if two else (before,)
    page = Page()
    html = report_html(*runs)
    page.feed(html)
    assert html.startswith("<!DOCTYPE html>") and page.tags.count("svg") == 2 and "script" not in page.tags
    markdown = report_markdown(*runs)
    # Every table cell of the Markdown report is in the page (the page is made from it).
    cells = {
        c.strip().replace("\\|", "|")
        for line in markdown.splitlines()
        if line.startswith("| ")
        for c in line.split(" | ")
    }
    cells = {c.strip("| ").strip() for c in cells} - {"", "---", "---:"}
    assert cells <= set(page.text)
    for chart in ET.fromstring("<r>" + "".join(html.split("<figure>")[1:]).split("</figure>")[0] + "</r>"):
        assert chart.tag == f"{SVG}svg"


def test_html_escapes_what_a_user_typed(tmp_path: Path) -> None:
    run = replace(demo_runs(tmp_path)[0], label="<script>alert(1)</script>")
    html = report_html(run)
    assert "<script>" not in html and "&lt;script&gt;" in html


# --- job log lines --------------------------------------------------------------------------


def test_engine_json_lines_read_as_time_role_event_figures() -> None:
    state = {"sent": 19167, "failed": 0, "connections": 50, "bytes": 22_000_000, "hist": []}
    progress = json.dumps(smtp_gen.present(state, 3.5, "progress"))
    line = readable_line("gen", progress, 7.2)
    assert line.startswith("0:08 gen  progress")
    assert "sent 19,167" in line and "failed 0" in line and "msgs/s" in line and "{" not in line
    assert len(line) < len(progress)
    assert readable_line("sink", '{"type": "error", "error": "port in use"}', 0.4) == "0:01 sink error    port in use"


def test_text_lines_stay_text_and_control_characters_are_shown_escaped() -> None:
    line = readable_line("gen", "\x1b[32mtraffic-gen: 100 sent\x1b[0m\x07", 61.0)
    assert line.startswith("1:01 gen  traffic-gen: 100 sent") and "\x07" not in line and "\x1b" not in line
    assert readable_line("sink", "{not json", 1.0) == "0:01 sink {not json"


# --- the form's memory and words ------------------------------------------------------------


def test_the_form_is_remembered_privately_and_read_back(tmp_path: Path) -> None:
    state = tmp_path / "state"
    form = BenchForm(messages="1234", label="before tuning", through="127.0.0.1:2525")
    save_form(state, form)
    assert stat.S_IMODE(form_path(state).stat().st_mode) == 0o600
    assert load_form(state) == (form, "")
    assert load_form(tmp_path / "none") == (BenchForm(), "")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{", "not read"),
        ("[]", "expected a JSON object"),
        ('{"messages": 5}', "'messages' is not a short line of text"),
        ('{"messages": "1\\u001b[2J"}', "'messages' is not a short line of text"),
        ('{"rm": "-rf"}', "unknown field 'rm'"),
        ('{"sink": "elsewhere"}', "sink must be one of local, target"),
    ],
)
def test_a_bad_remembered_form_gives_the_defaults_and_says_why(tmp_path: Path, content: str, why: str) -> None:
    save_form(tmp_path, BenchForm())
    form_path(tmp_path).write_text(content)
    form, problem = load_form(tmp_path)
    assert form == BenchForm() and why in problem and str(form_path(tmp_path)) in problem


def test_errors_name_the_forms_labels_not_flags() -> None:
    assert set(FIELD_FLAGS) <= set(FIELD_LABELS)
    for form, expected in (
        (BenchForm(messages="lots"), "Messages 'lots': expected a whole number"),
        (BenchForm(concurrency="0"), "Concurrency must be within 1-100000"),
        (BenchForm(body_size="12XB"), "Body size"),
        (BenchForm(sink_workers="0"), "Sink workers"),
    ):
        with pytest.raises(KumotuiError) as error:
            form.options()
        worded = for_the_form(str(error.value))
        assert worded.startswith(expected) and "--" not in worded.split(":")[0]
    assert for_the_form("--through needs --local-sink") == "Through MTA needs --local-sink"


def test_a_live_run_through_an_mta_charts_delivered(tmp_path: Path) -> None:
    from kumotui.bench.options import BenchOptions

    through = BenchOptions(target=None, local_sink=True, through="127.0.0.1:2525")
    direct = BenchOptions(target=None, local_sink=True)
    assert LiveWatch(through, {}).throughput.names == ("sent", "delivered")
    assert LiveWatch(direct, {}).throughput.names == ("sent", "received")
