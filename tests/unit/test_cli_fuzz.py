"""Every command's arguments, fuzzed: an exit status and a line, never a traceback, never a write outside.

A seeded generator builds hostile command lines from each subcommand's own
options (read from the parser, so a new flag is fuzzed the day it is added):
flags in any order, repeated or without their value, values that are empty,
huge, negative, not numbers, unicode, escape codes, host strings ssh would
read as options, paths to files, links, and places nothing can be made;
stray flags, ``--`` and ``-``. NULs are left out (argv cannot carry them).
Each command line runs in-process through :func:`kumotui.cli.main` against
a simulated host in the test's temporary directory, which is also the
working directory.

Asserted for every one: it ends with ``SystemExit`` or a return of 0, 1, 2
or 130 and no other exception; stderr has no traceback; and nothing was
written, created, renamed, removed or chmod-ed outside the temporary
directory. That last one is enforced, not just observed: a Python audit
hook (PEP 578) refuses such an operation before it happens and records it.

What is not run for real: SSH (opening a remote host fails at once with a
KumotuiError, so no host string, however hostile, reaches ssh), a sink
(``kumotui sink`` returns as soon as its job is built), a benchmark
(``kumotui bench`` stops after the plan is prepared) and the app (its
factory returns a stub); their argument checks, profile loading, host
validation and planning all run. ``--set`` keys come from a fixed list:
key-to-path traversal is tested where the sysctl layer is.

``KUMOTUI_FUZZ_SEED`` and ``KUMOTUI_FUZZ_CASES`` replay a failure or search longer.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import kumotui.cli
import kumotui.ui.app as ui_app
from kumotui.cli import bench as cli_bench
from kumotui.cli import build_parser, main
from kumotui.errors import KumotuiError
from kumotui.hosts import remote
from tests.support.trees import MODERN_KERNEL, make_tree

SEED = int(os.environ.get("KUMOTUI_FUZZ_SEED", "1313"))
CASES = int(os.environ.get("KUMOTUI_FUZZ_CASES", "600"))
EXITS = {0, 1, 2, 130}

NUMBERS = ["0", "1", "-1", "2", "65535", "65536", "1e309", "nan", "inf", "-inf", "0x10", "1_000", "３", "٣", "1.5"]
NUMBERS += ["9" * 5000, "-" + "9" * 400, " 7 ", "", "1e-400", "100KB", "1MiB", "64MiB", "65MiB", "-0"]
HOSTILE = ["", " ", "-", "--", "-x", "--nope", "\x1b]0;owned\x07", "\x1b[2J", "a\nb", "a\rb", "\u202eevil", "ü✔日本"]
HOSTILE += ["x" * 10000, "%s%n", "{0}", "$(touch pwned)", "`touch pwned`", "; touch pwned", "'\"", "\\", "..", "."]
HOSTS = ["-Fevil", "-oProxyCommand=touch pwned", "-Fevil@localhost", "root@-J", "bad host!", "root@", "h:0", "h:99999"]
HOSTS += ["[::1", "[::1]:22", "fuzz.invalid", "root@fuzz.invalid:2222", "kumotui-fuzz", "x" * 300, "é.example"]
ADDRESSES = ["127.0.0.1:2", "127.0.0.1:0", "127.0.0.1:65536", "[::1]:25", "::1:25", "10.0.0.1:25", "0.0.0.0:2026"]
ADDRESSES += [":25", "127.0.0.1", "localhost:smtp", "[::1", "x:y"]
PATHS = ["tree", "missing", "file", "dir", "empty", "link", "dangling", "sim", "sim/deeper", "file/below", ""]
PATHS += ["dir with space", "ünï", "x" * 300, "-", "state", "d", ".", "profile.yaml", "bad.yaml"]
"""Relative to the temporary working directory (and never absolute): every path argument stays inside it."""
PROFILES = ["kumomta", "kumomta-extended", "nope", "profile.yaml", "bad.yaml", "file", "dir", "../nope", "KUMOMTA"]
SETS = ["vm.max_map_count=1048576", "vm.max_map_count=1", "net.core.somaxconn=", "=1", "noequals", "a..b=1"]
SETS += ["kernel.hostname=\x1b[2J", "net.ipv4.ip_local_port_range=1 2 3", "fs.file-max=" + "9" * 40, "x.y.z=1"]
SETS += ["vm.max_map_count=-1", "vm.nr_hugepages=٣", "net.core.rmem_max=0x10"]
ONLY = ["", ",", ",,", "vm.max_map_count", "vm.max_map_count,net.core.somaxconn", "nope", " ", "a..b"]
WORDS = ["root", "nobody", "kumod", "-x", "user name", "ü", "x" * 100, "a@b", "user@example.com", "@", ""]
RUN_IDS = ["", "2026", "20261201-2126", "nope", "-", "x" * 200, "../etc"]

PATH_DESTS = {"sysctl_root", "sysctl_d", "state_dir", "system_root", "identity", "output", "dir", "files"}
SAFE_GLOBALS = ["--sysctl-root", "tree", "--sysctl-d", "d", "--state-dir", "state", "--system-root", "."]
"""Given first on every command line: a fuzzed path option may change them, but only to another path in the pool."""


def pool_for(action: argparse.Action) -> list[str]:
    """The values worth trying for one option."""
    dest = action.dest
    if dest in PATH_DESTS:
        return PATHS
    if dest in ("host", "sink_host"):
        return HOSTS
    if dest in ("target", "listen"):
        return ADDRESSES
    if dest in ("profile", "a", "b"):
        return PROFILES
    if dest == "sets":
        return SETS
    if dest == "only":
        return ONLY
    if dest in ("run", "other", "id"):
        return RUN_IDS
    if action.choices:
        return [*map(str, action.choices), "nope", ""]
    if action.type is not None:
        return NUMBERS
    return WORDS


def fuzzed_argv(rng: random.Random, parser: argparse.ArgumentParser) -> list[str]:
    """One hostile command line for ``parser`` (a subcommand's, or the top level's for the app)."""
    actions = [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]
    argv: list[str] = []
    for _ in range(rng.randint(0, 6)):
        roll = rng.random()
        action = rng.choice(actions) if actions else None
        if roll < 0.08 or action is None:
            argv.append(rng.choice(["--nope-fuzz", "-Z", "--", "-", rng.choice(HOSTILE)]))
        elif not action.option_strings:  # a positional
            argv.append(rng.choice(pool_for(action)))
        elif action.nargs == 0:
            argv.append(rng.choice(action.option_strings))
        else:
            flag = rng.choice(action.option_strings)
            value = rng.choice(pool_for(action) if rng.random() < 0.85 else HOSTILE)
            if roll < 0.12:
                argv.append(flag)  # the value left out
            elif rng.random() < 0.5:
                argv.append(f"{flag}={value}")
            else:
                argv += [flag, value]
    if rng.random() < 0.02:
        argv.append(rng.choice(["--help", "-h", "--version"]))
    return argv


def command_lines(seed: int, cases: int) -> Iterator[list[str]]:
    rng = random.Random(seed)
    top = build_parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices
    names = [None, *commands]
    for case in range(cases):
        name = names[case % len(names)]  # every command, in turn
        if name is None:
            yield [*SAFE_GLOBALS, *fuzzed_argv(rng, top)]
        else:
            yield [*SAFE_GLOBALS, name, *fuzzed_argv(rng, commands[name])]


class WriteGuard:
    """A PEP 578 audit hook that refuses writes outside ``allowed`` while armed, and records them.

    Audit hooks cannot be removed, so it stays installed for the test
    process and does nothing unless armed.
    """

    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    EVENTS: ClassVar[dict[str, int]] = {
        "os.mkdir": 1,
        "os.rename": 2,
        "os.remove": 1,
        "os.rmdir": 1,
        "os.chmod": 1,
        "os.chown": 1,
        "os.truncate": 1,
        "os.symlink": 2,
        "os.link": 2,
        "shutil.rmtree": 1,
        "os.utime": 1,
    }
    """Event -> how many leading arguments are paths it changes."""
    _installed: ClassVar[WriteGuard | None] = None

    def __init__(self) -> None:
        self.allowed: tuple[str, ...] = ()
        self.armed = False
        self.refused: list[str] = []

    @classmethod
    def get(cls) -> WriteGuard:
        if cls._installed is None:
            cls._installed = cls()
            sys.addaudithook(cls._installed.hook)
        return cls._installed

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.armed:
            return
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & self.WRITE_FLAGS
            )
            paths = [path] if writes else []
        elif event in self.EVENTS:
            paths = list(args[: self.EVENTS[event]])
        else:
            return
        for path in paths:
            if isinstance(path, int) or path is None:  # an open fd: decided when it was opened
                continue
            text = os.path.abspath(os.fsdecode(path))
            if "/__pycache__/" in text or text == os.devnull:
                continue
            if not any(text == root or text.startswith(root + os.sep) for root in self.allowed):
                self.refused.append(f"{event} {text}")
                raise PermissionError(f"fuzz guard: {event} outside the temporary directory: {text}")

    @contextlib.contextmanager
    def inside(self, *roots: Path) -> Iterator[None]:
        self.allowed = tuple(str(root.resolve()) for root in roots)
        self.armed = True
        try:
            yield
        finally:
            self.armed = False


@pytest.fixture
def playground(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory: a simulated tree, files, links, a profile; and nothing real to reach."""
    work = tmp_path / "work"
    work.mkdir()
    make_tree(work / "tree", MODERN_KERNEL)
    (work / "file").write_text("not a directory\n")
    (work / "dir").mkdir()
    (work / "dir" / "keep").write_text("x\n")
    (work / "empty").mkdir()
    (work / "link").symlink_to(work / "empty")
    (work / "dangling").symlink_to(work / "nowhere")
    (work / "profile.yaml").write_text(
        "name: fuzz\ntitle: Fuzz\nparams:\n  vm.max_map_count: {value: 768000, rule: at-least, why: maps}\n"
    )
    (work / "bad.yaml").write_text("name: [unclosed\n")
    monkeypatch.chdir(work)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def no_ssh(self: object, spec: object, *args: object, **kwargs: object) -> None:
        raise KumotuiError(f"{spec}: fuzz: no SSH here")

    def prepared_only(*args: object, **kwargs: object) -> object:
        raise KumotuiError("fuzz: the benchmark was prepared, not run")

    class StubApp:
        return_code = 0

        def run(self) -> None:
            """The app is not opened."""

    monkeypatch.setattr(remote.RemoteHost, "__init__", no_ssh)
    monkeypatch.setattr(cli_bench, "_serve", lambda job: 0)
    monkeypatch.setattr(cli_bench, "_run", prepared_only)
    monkeypatch.setattr(kumotui.cli, "_is_terminal", lambda stream: True, raising=False)
    monkeypatch.setattr(ui_app, "make_app", lambda *args, **kwargs: StubApp())
    return tmp_path


def run_one(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Run one command line; what went wrong, or None."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    capsys.readouterr()
    try:
        code: object = main(argv)
    except SystemExit as exit:
        code = exit.code if exit.code is not None else 0
    except BaseException as error:  # the point of the test: none may escape
        return f"{type(error).__name__}: {error}"
    _out, err = capsys.readouterr()
    if code not in EXITS:
        return f"exit status {code!r}"
    if "Traceback" in err:
        return "a traceback on stderr"
    return None


def test_fuzzed_command_lines(
    playground: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = WriteGuard.get()
    guard.refused.clear()
    failures: list[str] = []
    seen_commands: set[str] = set()
    for argv in command_lines(SEED, CASES):
        seen_commands.add(argv[len(SAFE_GLOBALS)] if len(argv) > len(SAFE_GLOBALS) else "")
        with guard.inside(playground):
            problem = run_one(argv, capsys, monkeypatch)
        if problem or guard.refused:
            shown = [arg if len(arg) <= 60 else arg[:60] + f"…({len(arg)} chars)" for arg in argv]
            failures.append(f"{(problem or guard.refused[-1])[:300]}\n    argv: {shown!r}")
            guard.refused.clear()
    assert not failures, f"{len(failures)} of {CASES} (seed {SEED}):\n" + "\n".join(failures[:15])
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) <= seen_commands


def test_the_guard_refuses_a_write_outside(playground: Path, tmp_path: Path) -> None:
    """The write guard itself: what the fuzz relies on for 'nothing written outside'."""
    guard = WriteGuard.get()
    outside = Path(tempfile.gettempdir()).parent / "kumotui-fuzz-guard-probe"
    with guard.inside(playground / "work"), pytest.raises(PermissionError, match="fuzz guard"):
        outside.write_text("x")
    assert not outside.exists() and guard.refused
    guard.refused.clear()
    with guard.inside(playground / "work"):
        (playground / "work" / "inside").write_text("fine\n")
