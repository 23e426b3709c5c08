"""Preview, confirm and apply a plan; or, read-only, show how to apply it by hand."""

from __future__ import annotations

import enum
from collections.abc import Mapping
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
from kumotui.tuning.plan import Plan, make_plan, manual_steps
from kumotui.tuning.profiles import Profile
from kumotui.tuning.target import Target
from kumotui.ui.notices import describe_error
from kumotui.ui.render import render_outcome, render_preview


class ApplyStage(enum.StrEnum):
    """Where the apply dialog stands."""

    PLANNING = "planning"
    PREVIEW = "preview"
    MANUAL = "manual"
    """Read-only: the dialog shows the commands to run by hand."""
    APPLYING = "applying"
    DONE = "done"


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

    stage: reactive[ApplyStage] = reactive(ApplyStage.PLANNING)

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
        self.post_message(self.ChangesApplied(apply_plan(plan, self.target, command="kumotui (app: apply)")))

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
            self.stage = ApplyStage.MANUAL
            area.focus()
            return
        self._show(render_preview(plan, self.profile))
        if plan.empty:
            self._show(
                Content.from_markup(
                    "[$text-success b]✔ Nothing to change[/]: every value and the drop-in are already as planned."
                )
            )
            self.stage = ApplyStage.DONE
        else:
            self.stage = ApplyStage.PREVIEW

    def on_apply_screen_changes_applied(self, message: ChangesApplied) -> None:
        """Replace the preview with each key's verified result."""
        self._show(render_outcome(message.outcome))
        self.result = "applied"
        self.stage = ApplyStage.DONE

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
        self.stage = ApplyStage.DONE

    def watch_stage(self, stage: ApplyStage) -> None:
        """Swap the keys and the widgets shown for each stage."""
        self.set_class(stage == ApplyStage.MANUAL, "-manual")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Enter applies only from the preview; nothing closes mid-write."""
        stage = self.stage
        if action == "confirm":
            return stage == ApplyStage.PREVIEW
        if action == "copy":
            return stage == ApplyStage.MANUAL
        if action == "cancel":
            return stage in (ApplyStage.PLANNING, ApplyStage.PREVIEW)
        if action == "close":
            return stage in (ApplyStage.MANUAL, ApplyStage.DONE)
        return True

    def action_confirm(self) -> None:
        """Write the plan shown."""
        if self.plan is None or self.stage != ApplyStage.PREVIEW:
            return
        self.stage = ApplyStage.APPLYING
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
