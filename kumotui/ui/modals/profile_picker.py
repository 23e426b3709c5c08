"""Choose the profile the host is judged by."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from kumotui.errors import KumotuiError
from kumotui.tuning.profiles import available_profiles, load_profile
from kumotui.ui.keys import LIST_KEYS


class ProfileScreen(ModalScreen[str | None]):
    """Every profile findable by name (user profiles shadow shipped ones).

    Each is loaded in a worker to show its title and size; a profile that
    fails to load is listed with the core's reason and cannot be chosen.
    Dismisses with the chosen name, or None.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="profile-cancel", tooltip="Keep the current profile"),
        *LIST_KEYS,
    ]

    class ProfilesListed(Message):
        """Profile names with a one-line description, or the reason one cannot load."""

        def __init__(self, profiles: list[tuple[str, str, bool]]) -> None:
            super().__init__()
            self.profiles = profiles

    def __init__(self, current: str) -> None:
        """Create the picker with ``current`` highlighted."""
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        """Title, the list, keys."""
        with Vertical(id="profile-dialog"):
            yield Static(Content.from_markup("[b]Profile[/b] · judge this host by"), id="profile-title")
            yield OptionList(id="profile-list")
            yield Footer()

    def on_mount(self) -> None:
        """List the profiles."""
        self.list_profiles()

    @work(thread=True, group="profiles", exclusive=True, exit_on_error=False)
    def list_profiles(self) -> None:
        """Load each profile for its title (and to catch broken ones early)."""
        listed: list[tuple[str, str, bool]] = []
        for name, path in available_profiles():
            try:
                profile = load_profile(str(path))
            except KumotuiError as error:
                listed.append((name, f"cannot be used: {error}", False))
                continue
            listed.append((name, f"{profile.title} ({len(profile.params)} parameters)", True))
        self.post_message(self.ProfilesListed(listed))

    def on_profile_screen_profiles_listed(self, message: ProfilesListed) -> None:
        """Fill the list with the current profile highlighted."""
        options = self.query_one(OptionList)
        options.add_options(
            [
                Option(
                    Content.from_markup(
                        "[b]$name[/b]$mark\n[$text-muted]$about[/]",
                        name=name,
                        mark=" (current)" if name == self.current else "",
                        about=about,
                    ),
                    id=name,
                    disabled=not usable,
                )
                for name, about, usable in message.profiles
            ]
        )
        names = [name for name, _, _ in message.profiles]
        if self.current in names:
            options.highlighted = names.index(self.current)
        options.focus()

    @on(OptionList.OptionSelected, "#profile-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Keep the current profile."""
        self.dismiss(None)
