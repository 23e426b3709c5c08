"""Preview, confirm and apply a plan; or, read-only, show how to apply it by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, TextArea
from textual.worker import Worker, WorkerState

from kumotui.tuning.apply import ApplyFailed, Outcome, apply_plan
from kumotui.tuning.findings import Finding
from kumotui.tuning.journal import EntryKind
from kumotui.tuning.plan import Plan, make_plan, manual_steps
from kumotui.tuning.profiles import Profile
from kumotui.tuning.target import Target
from kumotui.tuning.values import normalize, takes_away
from kumotui.ui.notices import describe_error


def _key_width(keys: Sequence[str]) -> int:
    return min(max((len(k) for k in keys), default=0), 34)


def render_preview(plan: Plan, profile: Profile | None = None) -> Content:
    """What apply will do: runtime changes, the drop-in as written, boot warnings.

    A change that takes capacity away from the current value (a smaller
    number, a narrower range) is marked, whoever proposed it.
    """
    parts: list[Content] = []
    if plan.changes:
        width = _key_width([c.key for c in plan.changes])
        parts.append(
            Content.from_markup(f"[b]Runtime[/b] [$text-muted]({len(plan.changes)} written now, each read back)[/]")
        )
        for change in plan.changes:
            param = profile.param(change.key) if profile else None
            lowers = param is not None and takes_away(param.rule, change.before, change.after)
            line = Content.from_markup(
                "  $key  [$text-muted]$before →[/] [$text-accent b]$after[/]",
                key=change.key.ljust(width),
                before=normalize(change.before),
                after=change.after,
            )
            if lowers:
                line += Content.from_markup("  [$text-warning]⚠ lower than now[/]")
            parts.append(line)
    else:
        parts.append(Content.from_markup("[b]Runtime[/b] [$text-muted]nothing to write: values already match[/]"))
    # Warnings come before the file text: at 80x24 they must be visible
    # without scrolling, right above the key that confirms.
    if plan.overrides:
        parts.append(Content(""))
        parts.append(Content.from_markup("[$text-warning b]⚠ At boot another file wins:[/]"))
        for override in plan.overrides:
            parts.append(Content.from_markup("  [$text-warning]$o[/]", o=str(override)))
    if plan.warnings:
        parts.append(Content(""))
        for warning in plan.warnings:
            parts.append(Content.from_markup("[$text-warning b]⚠[/] [$text-warning]$w[/]", w=warning))
    parts.append(Content(""))
    if plan.dropin_after is None:
        parts.append(Content.from_markup("[b]At boot[/b] [$text-muted]not persisted[/]"))
    elif not plan.dropin_changed:
        parts.append(
            Content.from_markup("[b]Drop-in[/b] $path [$text-muted](already up to date)[/]", path=str(plan.dropin))
        )
    else:
        what = "new file" if plan.dropin_before is None else "replaces the current file"
        parts.append(
            Content.from_markup("[b]Drop-in[/b] $path [$text-muted]($what)[/]", path=str(plan.dropin), what=what)
        )
        for text in plan.dropin_after.rstrip("\n").splitlines():
            style = "$text-muted" if text.startswith("#") or not text else "$text"
            parts.append(Content.from_markup(f"  [{style}]$text[/]", text=text))
    return Content("\n").join(parts)


def render_outcome(outcome: Outcome, error: str | None = None) -> Content:
    """Each key's verified result, the drop-in, and how to undo."""
    parts: list[Content] = []
    if error:
        parts.append(Content.from_markup("[$text-error b]✖ $e[/]", e=error))
        parts.append(Content(""))
    elif outcome.ok:
        entry = outcome.entry
        undo = " (r rolls it back)" if entry.kind is EntryKind.APPLY and (entry.changes or entry.dropin) else ""
        parts.append(
            Content.from_markup(
                f"[$text-success b]✔ Done[/] [$text-muted]journal entry $id{undo}[/]", id=outcome.entry.id
            )
        )
        parts.append(Content(""))
    width = _key_width([r.key for r in outcome.results])

    def shown(value: str | None) -> str:
        return normalize(value) if value is not None else "(unreadable)"

    value_width = max((len(shown(r.read_back)) for r in outcome.results if r.ok), default=0)
    for result in outcome.results:
        read_back = shown(result.read_back)
        if result.ok:
            parts.append(
                Content.from_markup(
                    "[$text-success]✔[/] $key  $value  [$text-muted]read back, as written[/]",
                    key=result.key.ljust(width),
                    value=read_back.ljust(value_width),
                )
            )
        else:
            parts.append(
                Content.from_markup(
                    "[$text-error b]✖[/] $key  [$text-error]$why[/]",
                    key=result.key.ljust(width),
                    why=result.error or f"kept {read_back}",
                )
            )
    dropin = {
        "written": "written",
        "removed": "removed (there was none before)",
        "restored": "restored",
        "unchanged": "unchanged",
        "untouched": "not touched",
    }.get(outcome.dropin, outcome.dropin)
    path = outcome.entry.dropin.path if outcome.entry.dropin else "drop-in"
    parts.append(Content(""))
    parts.append(Content.from_markup("[$text-muted]$path $d[/]", path=path, d=dropin))
    for override in outcome.overrides:
        parts.append(Content.from_markup("[$text-warning b]⚠[/] [$text-warning]$o[/]", o=str(override)))
    for note in outcome.notes:
        parts.append(Content.from_markup("[$text-muted]$n[/]", n=note))
    return Content("\n").join(parts)


class ApplyScreen(ModalScreen[str | None]):
    """The plan as the core will carry it out, confirmed before anything is written.

    The core builds and validates the plan in a worker; the preview shows
    the runtime changes, the drop-in as it will be written and any file that
    will override it at boot. Enter applies (in a worker), then each key's
    read-back result replaces the preview. Read-only, the same plan is shown
    as commands and file content to run by hand. Dismisses with True when
    something may have been written: ``"applied"`` when every change was
    verified, ``"failed"`` when the core had to restore; None otherwise.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "confirm",
            "Apply",
            id="apply-confirm",
            priority=True,
            tooltip="Write the changes shown, then read each one back",
        ),
        Binding("enter", "close", "Close", id="apply-close", priority=True, tooltip="Back to the table"),
        Binding(
            "c",
            "copy",
            "Copy",
            id="apply-copy",
            priority=True,
            tooltip="Copy the commands to the clipboard (OSC 52; or select them with the mouse)",
        ),
        Binding("escape", "cancel", "Cancel", id="apply-cancel", tooltip="Close without writing anything"),
        Binding("escape", "close", "Close", id="apply-close-escape", tooltip="Back to the table"),
    ]

    stage: reactive[str] = reactive("planning")
    """``planning``, ``preview``, ``manual`` (read-only), ``applying``, ``done``."""

    class PlanMade(Message):
        """The core built and validated the plan."""

        def __init__(self, plan: Plan) -> None:
            super().__init__()
            self.plan = plan

    class ChangesApplied(Message):
        """Every change was written and verified."""

        def __init__(self, outcome: Outcome) -> None:
            super().__init__()
            self.outcome = outcome

    def __init__(
        self,
        target: Target,
        profile: Profile,
        findings: list[Finding],
        *,
        sets: Mapping[str, str],
        excluded: set[str],
        read_only: bool,
    ) -> None:
        """Create the modal; the plan is built as soon as it opens.

        Args:
            target: where to write (tree, drop-in, journal).
            profile: the active profile.
            findings: the latest reading.
            sets: values the user typed, for included keys only.
            excluded: keys the user took out of the plan.
            read_only: show the commands to run by hand instead of writing.
        """
        super().__init__()
        self.target = target
        self.profile = profile
        self.findings = findings
        self.sets = dict(sets)
        self.excluded = set(excluded)
        self.read_only = read_only
        self.plan: Plan | None = None
        self.result: str | None = None
        self.commands = ""

    def compose(self) -> ComposeResult:
        """Title, a scrolling body, the manual commands (read-only), keys."""
        with Vertical(id="apply-dialog"):
            title = "Apply by hand" if self.read_only else "Apply"
            yield Static(Content.from_markup(f"[b]{title}[/b] · profile $p", p=self.profile.name), id="apply-title")
            with VerticalScroll(id="apply-body"):
                yield Static(Content.from_markup("[$text-muted]Checking the plan…[/]"), id="apply-text")
            yield TextArea(id="apply-commands", read_only=True, soft_wrap=False, show_cursor=False)
            yield Footer()

    def on_mount(self) -> None:
        """Build the plan."""
        self.make()

    @work(thread=True, group="plan", exclusive=True, exit_on_error=False)
    def make(self) -> None:
        """Build and validate the plan (reads the drop-in and the boot files)."""
        plan = make_plan(self.profile, self.findings, self.target, sets=self.sets, excluded=self.excluded)
        self.post_message(self.PlanMade(plan))

    @work(thread=True, group="write", exit_on_error=False)
    def write(self, plan: Plan) -> None:
        """Journal, write, verify; the core restores everything on a failure."""
        self.post_message(self.ChangesApplied(apply_plan(plan, self.target)))

    def on_apply_screen_plan_made(self, message: PlanMade) -> None:
        """Show the preview (or the commands, read-only)."""
        plan = self.plan = message.plan
        if self.read_only:
            self.commands = manual_steps(plan, self.target)
            why = "--read-only was given" if self.target.read_only else "not root, and sudo -n is not allowed"
            self.query_one("#apply-text", Static).update(
                Content.from_markup(
                    "[$text-muted]kumotui will not write here ($why). Run these yourself; "
                    "select text with the mouse, or press c to copy it all.[/]",
                    why=why,
                )
            )
            area = self.query_one("#apply-commands", TextArea)
            area.load_text(self.commands)
            self.stage = "manual"
            area.focus()
            return
        self._show(render_preview(plan, self.profile))
        if plan.empty:
            self._show(
                Content.from_markup(
                    "[$text-success b]✔ Nothing to change[/]: every value and the drop-in are already as planned."
                )
            )
            self.stage = "done"
        else:
            self.stage = "preview"

    def on_apply_screen_changes_applied(self, message: ChangesApplied) -> None:
        """Replace the preview with each key's verified result."""
        self._show(render_outcome(message.outcome))
        self.result = "applied"
        self.stage = "done"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A refused plan or a failed write is shown in the modal, in words."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if event.worker.group == "write":
            self.result = "failed"
        if isinstance(error, ApplyFailed):
            self._show(render_outcome(error.outcome, str(error)))
        else:
            what = "The plan was refused" if event.worker.group == "plan" else "Apply failed"
            self._show(Content.from_markup(f"[$text-error b]✖ {what}:[/] $e", e=describe_error(error)))
        self.stage = "done"

    def watch_stage(self, stage: str) -> None:
        """Swap the keys and the widgets shown for each stage."""
        self.set_class(stage == "manual", "-manual")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Enter applies only from the preview; nothing closes mid-write."""
        stage = self.stage
        if action == "confirm":
            return stage == "preview"
        if action == "copy":
            return stage == "manual"
        if action == "cancel":
            return stage in ("planning", "preview")
        if action == "close":
            return stage in ("manual", "done")
        return True

    def action_confirm(self) -> None:
        """Write the plan shown."""
        if self.plan is None or self.stage != "preview":
            return
        self.stage = "applying"
        self._show(Content.from_markup("[$text-muted]Applying: journal, write, read back…[/]"))
        self.write(self.plan)

    def action_copy(self) -> None:
        """Copy the commands through the terminal (works over SSH where OSC 52 is allowed)."""
        self.app.copy_to_clipboard(self.commands)
        self.notify("Commands copied to the clipboard.", timeout=3)

    def action_cancel(self) -> None:
        """Close without writing anything."""
        self.dismiss(None)

    def action_close(self) -> None:
        """Back to the table; say whether anything was written."""
        self.dismiss(self.result)

    def _show(self, content: Content) -> None:
        self.query_one("#apply-text", Static).update(content)
        self.query_one("#apply-body", VerticalScroll).scroll_home(animate=False)
