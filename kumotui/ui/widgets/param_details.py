"""The panel that explains the highlighted parameter in full."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from kumotui.text.escape import printable
from kumotui.tuning.plan import PlanRow
from kumotui.tuning.values import STATUS_ICON, Rule, Status

RULE_MEANING = {
    Rule.AT_LEAST: "passes at or above {target}; never lowered",
    Rule.AT_MOST: "passes at or below {target}; never raised",
    Rule.EXACTLY: "passes only at exactly {target}",
    Rule.COVERS: "passes when the range contains {target}; only ever widened",
}
"""Each rule in words, so the operator need not know the profile format."""


@dataclass(frozen=True)
class Explanation:
    """What the details panel says about one row besides the finding itself.

    The screen builds it from the core (catalog facts, the plan's action and
    warnings); the panel only lays it out.
    """

    row: PlanRow
    units: str | None = None
    kernel_default: str | None = None
    action: str = ""
    """What apply would do with this key, in one sentence."""
    warnings: tuple[str, ...] = ()
    """Anything to confirm before applying (a value lowered, a kernel caveat)."""
    boot: str = ""
    """Whether the value survives a reboot after apply, and which file decides."""


def _status_style(row: PlanRow) -> str:
    if row.finding.status is Status.OK:
        return "$text-success"
    if row.finding.current is None:
        return "$text-warning"
    return "$text-error"


LABEL_WIDTH = 12
"""Field labels are padded to this, values start one cell later."""


def hanging(value: str, width: int | None) -> str:
    """Wrap ``value`` to ``width`` cells with continuation lines under the value column."""
    if width is None or width <= LABEL_WIDTH + 10:
        return value
    indent = " " * (LABEL_WIDTH + 1)
    return "\n".join(
        textwrap.wrap(value, width - LABEL_WIDTH - 1, subsequent_indent="", break_on_hyphens=False)
    ).replace("\n", "\n" + indent)


def explain(info: Explanation, width: int | None = None) -> Content:
    """The panel's text for one row: verdict and action first, then why, then the numbers.

    The first lines are what an operator on an 80x24 terminal sees without
    scrolling, so they say what apply would do and warn before the reasons.
    With ``width``, long field values wrap under their value column rather
    than under the label.
    """
    row = info.row
    finding = row.finding
    status = finding.status
    lines: list[Content] = [
        Content.from_markup(
            f"[b]$key[/b]  [{_status_style(row)} b]$icon $status[/]",
            key=finding.key,
            icon=STATUS_ICON[status],
            status=str(status),
        ),
    ]
    if info.action:
        lines.append(Content.from_markup("[b]Apply:[/b] $action", action=printable(info.action, keep="")))
    for warning in info.warnings:
        lines.append(Content.from_markup("[$text-warning b]⚠ $warning[/]", warning=printable(warning, keep="")))
    if finding.why:
        lines += [Content(""), Content(finding.why)]
    lines.append(Content(""))

    def field(label: str, value: str, style: str = "") -> None:
        markup = f"[$text-muted]{label:<{LABEL_WIDTH}}[/] " + (f"[{style}]$value[/]" if style else "$value")
        lines.append(Content.from_markup(markup, value=hanging(printable(value, keep=""), width)))

    current = finding.current if finding.current is not None else f"({finding.error})"
    field("Current", " ".join(current.split()))
    field("Recommended", finding.recommended)
    if row.write is not None:
        label = "You typed" if row.edited else "Proposed"
        field(label, row.write, "$text-accent b" if row.included else "$text-muted")
    field("Rule", f"{finding.rule}: " + RULE_MEANING[finding.rule].format(target=finding.recommended))
    if info.units:
        field("Units", info.units)
    if info.kernel_default:
        field("Default", info.kernel_default)
    if info.boot:
        field("At boot", info.boot, "$text-warning" if info.boot.startswith("⚠") else "")
    return Content("\n").join(lines)


class ParamDetails(VerticalScroll):
    """Why a parameter matters, how it is judged, and what apply would do to it.

    Shows the full current, recommended and proposed values that the table
    may have cut short, the rule in words, units and the usual kernel
    default, and a warning when the change would lower the current value.
    """

    DEFAULT_CSS = """
    ParamDetails {
        height: auto;
        padding: 0 1;
        & > #details-text { width: 1fr; }
    }
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create an empty panel; ``explain`` fills it."""
        super().__init__(name=name, id=id, classes=classes)
        self.explanation: Explanation | None = None

    def compose(self) -> ComposeResult:
        """One text block, scrolled when it is taller than the panel."""
        yield Static(
            Content.from_markup("[$text-muted]Highlight a parameter to see what it does.[/]"),
            id="details-text",
        )

    def explain(self, explanation: Explanation | None) -> None:
        """Show ``explanation`` (None: nothing is highlighted)."""
        if explanation == self.explanation:
            return
        self.explanation = explanation
        self._render_text()
        self.scroll_home(animate=False)

    def _render_text(self) -> None:
        text = self.query_one("#details-text", Static)
        if self.explanation is None:
            text.update(Content.from_markup("[$text-muted]No parameter is highlighted.[/]"))
        else:
            text.update(explain(self.explanation, text.size.width or None))

    def on_resize(self) -> None:
        """Re-wrap the field values once the text's new width is known."""
        self.call_after_refresh(self._render_text)
