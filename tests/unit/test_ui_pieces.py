"""The UI's pure pieces: fitting columns, cutting values, wording, rendering."""

from __future__ import annotations

from pathlib import Path

from kumotui.tuning.apply import KeyResult, Outcome
from kumotui.tuning.dropin import Override
from kumotui.tuning.findings import Finding
from kumotui.tuning.journal import DropinChange, Entry, KeyChange
from kumotui.tuning.plan import Plan, PlanRow
from kumotui.tuning.rollback import journal_view
from kumotui.tuning.values import Rule, Status
from kumotui.ui.render import entry_label, render_entry, render_outcome, render_preview
from kumotui.ui.widgets.param_details import Explanation, explain, hanging
from kumotui.ui.widgets.param_table import ellipsize, fit_widths

NATURAL = {"key": 28, "current": 20, "recommended": 11, "status": 9, "proposed": 10}


def finding(status: Status = Status.BELOW, current: str | None = "65530", proposed: str | None = "768000") -> Finding:
    return Finding("vm.max_map_count", current, "768000", Rule.AT_LEAST, status, proposed, "Why it matters.")


def test_ellipsize_marks_the_cut() -> None:
    assert ellipsize("9223372036854775807", 12) == "92233720368…"
    assert ellipsize("4096", 12) == "4096"
    assert len(ellipsize("x" * 40, 10)) == 10


def test_fit_widths_keeps_natural_widths_when_they_fit() -> None:
    assert fit_widths(NATURAL, 100) == NATURAL


def test_fit_widths_cuts_long_values_before_keys() -> None:
    widths = fit_widths(NATURAL, 70)  # an 80-column table less cell padding
    assert sum(widths.values()) <= 70
    assert widths["key"] == 28  # net.ipv4.ip_local_port_range stays whole
    assert widths["current"] >= 11  # "32768 60999" stays whole
    assert widths["status"] == 9


def test_fit_widths_cuts_keys_only_when_values_cannot_give_more() -> None:
    widths = fit_widths({**NATURAL, "key": 34}, 60)
    assert sum(widths.values()) <= 60
    assert 16 <= widths["key"] < 34
    assert widths["status"] == 9


def test_rows_rank_problems_first() -> None:
    change = PlanRow(finding(), "768000")
    missing = PlanRow(finding(Status.MISSING, None, None), None)
    ok = PlanRow(finding(Status.OK, "800000", "800000"), None)
    excluded = PlanRow(finding(), "768000", included=False)
    assert [r.rank for r in (change, excluded, missing, ok)] == [0, 0, 1, 2]


def test_details_lead_with_the_action_and_warnings() -> None:
    info = Explanation(
        row=PlanRow(finding(), "1000", edited=True),
        units="count",
        kernel_default="65530",
        action="write 1000 now.",
        warnings=("This goes against the rule at-least (65530 → 1000).",),
    )
    lines = explain(info, width=40).plain.splitlines()
    assert lines[0].startswith("vm.max_map_count") and "▼ below" in lines[0]
    assert lines[1] == "Apply: write 1000 now."
    assert lines[2].startswith("⚠ This goes against")
    assert any(line.startswith("You typed    1000") for line in lines)
    assert any(line.startswith("Default      65530") for line in lines)


def test_hanging_indent_keeps_values_in_their_column() -> None:
    text = hanging("at-least: passes at or above 768000; never lowered", 36)
    first, *rest = text.splitlines()
    assert rest and all(line.startswith(" " * 13) for line in rest)
    assert len(first) <= 36 - 13


def test_preview_marks_lowering_and_shows_overrides() -> None:
    plan = Plan(
        profile="kumomta",
        changes=(),
        dropin=Path("etc/sysctl.d/90-kumomta.conf"),
        dropin_before=None,
        dropin_after="# header\nvm.max_map_count = 768000\n",
        overrides=(Override("vm.max_map_count", "768000", "262144", Path("etc/sysctl.conf"), 2),),
    )
    text = render_preview(plan).plain
    assert "nothing to write" in text
    assert "etc/sysctl.conf:2 sets 262144" in text
    assert "(new file)" in text and "vm.max_map_count = 768000" in text


def test_outcome_names_each_key_and_the_failure() -> None:
    entry = Entry(
        "20260314-093000-demo", "apply", "2026-03-14T09:30:00+00:00", "mta-01", "kumomta", (), status="restored"
    )
    outcome = Outcome(
        entry,
        (
            KeyResult("net.core.somaxconn", "4096", "8192", "8192", True),
            KeyResult("vm.nr_hugepages", "0", "20", "3", False, "the kernel kept 3 instead"),
        ),
    )
    text = render_outcome(outcome, "vm.nr_hugepages = 20: the kernel kept 3. Restored the previous values.").plain
    assert text.startswith("✖ vm.nr_hugepages = 20")
    assert "✔ net.core.somaxconn" in text and "8192  read back, as written" in text
    assert "✖ vm.nr_hugepages" in text and "kept 3 instead" in text


def test_journal_entries_say_what_rollback_would_restore() -> None:
    applied = Entry(
        "20260314-093000-ab12",
        "apply",
        "2026-03-14T09:30:00+00:00",
        "mta-01",
        "kumomta",
        (KeyChange("vm.max_map_count", "65530", "768000"),),
        DropinChange("etc/sysctl.d/90-kumomta.conf", None, "x = 1\n"),
        status="applied",
    )
    (view,) = journal_view([applied])
    assert view.can_roll_back
    assert "2026-03-14 09:30:00" in entry_label(view).plain
    text = render_entry(view).plain
    assert "768000 → 65530" in text and "removed" in text
    undone = Entry(**{**applied.__dict__, "rolled_back_by": "20260314-094000-cd34"})
    (view,) = journal_view([undone])
    assert not view.can_roll_back
    assert "already rolled back" in render_entry(view).plain
