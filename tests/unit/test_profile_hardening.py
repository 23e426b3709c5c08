"""Hostile profiles: nothing a profile says reaches a file, a terminal or a shell unchecked.

Each profile here is a real file a stranger could share. Control
characters and line breaks in any text, YAML anchors, deep nesting, numbers
no kernel has and oversized files are refused at load, with the file and
line, before anything is built from them; and what kumotui renders (the
sysctl drop-in, the systemd drop-in) refuses anything that is not plain
data even when it did not come through a profile. Alias bombs and huge
files, which need a memory bound to be tried safely, are in
``tests/integration/test_profile_bombs.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kumotui.errors import KumotuiError, ProfileError
from kumotui.tuning import limits
from kumotui.tuning.dropin import UnsafeDropin, render_dropin
from kumotui.tuning.profiles import MAX_PROFILE_BYTES, load_profile
from tests.support.cli import Cli
from tests.support.trees import host_flags, make_tree

HEAD = "name: t\ntitle: T\nsource: s\nparams:\n"
PARAM = "  net.core.somaxconn: {value: 1024, rule: at-least, why: ok}\n"


def refused(tmp_path: Path, text: str) -> ProfileError:
    path = tmp_path / "shared.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    assert caught.value.path == str(path)
    return caught.value


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ('name: "t\\nkernel.core_pattern = |/tmp/x"\nparams:\n' + PARAM, 1, "a line break"),
        ('name: t\ntitle: "T\\e]0;owned\\a"\nparams:\n' + PARAM, 2, "an escape (ESC)"),
        ('name: t\nsource: "a\\rb"\nparams:\n' + PARAM, 2, "a carriage return"),
        ('name: t\ntitle: "T\\u202e"\nparams:\n' + PARAM, 2, "U+202E"),  # right-to-left override
        (HEAD + '  net.core.somaxconn: {value: 1024, rule: at-least, why: "a\\tb"}\n', 5, "a tab"),
        (
            HEAD + "  net.core.somaxconn:\n    value: 1024\n    rule: at-least\n    why: |\n      two\n      lines\n",
            8,
            "a line break",
        ),
        (HEAD + '  "net.core.somaxconn\\n": {value: 1024, rule: at-least}\n', 5, "a line break"),
        (HEAD + '  net.core.somaxconn: {value: "1024\\n", rule: at-least}\n', 5, "a line break"),
        (HEAD + '  kernel.core_pattern: {value: "core\\x00x", rule: exactly}\n', 5, "U+0000"),
        (HEAD + '  net.ipv4.tcp_rmem: {value: [4096, "8192\\u2028", 16384], rule: at-least}\n', 5, "U+2028"),
    ],
    ids=[
        "name-newline",
        "title-escape",
        "source-cr",
        "title-bidi",
        "why-tab",
        "why-literal-block",
        "key",
        "value",
        "value-nul",
        "list-item-line-separator",
    ],
)
def test_control_characters_anywhere_are_refused_with_file_and_line(
    tmp_path: Path, text: str, line: int, what: str
) -> None:
    error = refused(tmp_path, text)
    assert error.line == line, error
    assert what in error.reason and "one line of printable characters" in error.reason


def test_a_long_why_folded_by_yaml_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "folded.yaml"
    path.write_text(
        HEAD + "  net.core.somaxconn:\n    value: 1024\n    rule: at-least\n    why: >-\n      two\n      lines\n"
    )
    assert load_profile(str(path)).params[0].why == "two lines"


def test_a_profile_name_cannot_add_a_line_to_the_drop_in(sim_paths: dict[str, Path], tmp_path: Path, cli: Cli) -> None:
    """The name goes into the drop-in's header; a line break in it would add a setting read as root at boot."""
    profile = tmp_path / "shared.yaml"
    profile.write_text(
        'name: "x\\nkernel.core_pattern = |/tmp/evil %p"\nparams:\n'
        "  vm.max_map_count: {value: 768000, rule: at-least, why: ok}\n"
    )
    run = cli("apply", "--yes", "--profile", profile, *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"{profile}:1: a line break in text" in run.stderr
    assert not (sim_paths["sysctl_d"] / "90-kumomta.conf").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "../../../tmp/evil"), ("name", "my profile"), ("extends", "../../../tmp/evil"), ("name", "-rf")],
)
def test_names_are_one_short_word(tmp_path: Path, field: str, value: str) -> None:
    text = (
        f"name: t\n{field}: '{value}'\nparams:\n" + PARAM if field != "name" else f"name: '{value}'\nparams:\n" + PARAM
    )
    error = refused(tmp_path, text)
    assert f"'{field}' must be one word" in error.reason


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("anchor: &a 1\n" + HEAD + PARAM, 1),
        (HEAD + "  net.core.somaxconn: &v {value: 1024, rule: at-least}\n  net.core.rmem_max: *v\n", 5),
        ("name: &n t\nparams:\n" + PARAM, 1),
    ],
    ids=["anchor", "alias", "anchored-name"],
)
def test_anchors_and_aliases_are_refused(tmp_path: Path, text: str, line: int) -> None:
    error = refused(tmp_path, text)
    assert error.line == line and "anchors and aliases are not allowed" in error.reason


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("1" * 5000, "a number written with 5000 characters"),
        ("1_" * 3000 + "1", "a number written with 6001 characters"),
        ("0x" + "f" * 5000, "a number written with 5002 characters"),
        ("!!int '" + "9" * 5000 + "'", "a number written with 5000 characters"),
        ("'" + "9" * 5000 + "'", "text of 5000 characters; at most 4096"),
        ("[4096, " + "7" * 4500 + "]", "a number written with 4500 characters"),
        ("'4096 " + "7" * 30 + "'", "a number of 30 digits"),
    ],
    ids=["plain", "underscores", "hex", "tagged", "quoted", "in-a-list", "quoted-field"],
)
def test_absurd_numbers_are_refused_with_file_and_line(tmp_path: Path, value: str, what: str, cli: Cli) -> None:
    """Python's int() raises ValueError past 4300 digits; a traceback is not an error message."""
    path = tmp_path / "shared.yaml"
    path.write_text(HEAD + f"  net.ipv4.tcp_rmem:\n    rule: at-least\n    value: {value}\n")
    run = cli("check", "--profile", path, "--sysctl-root", tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"{path}:7: " in run.stderr and what in run.stderr, run.stderr
    assert len(run.stderr) < 500  # the message names the problem, not the number


def test_a_20_digit_kernel_number_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(HEAD + "  kernel.shmmax: {value: 18446744073692774399, rule: at-least}\n")
    assert load_profile(str(path)).params[0].value == "18446744073692774399"


def test_absurd_numbers_in_set_and_in_a_tree_are_errors_not_tracebacks(
    sim_paths: dict[str, Path], tmp_path: Path, cli: Cli
) -> None:
    run = cli("apply", "--dry-run", "--set", f"net.core.somaxconn={'9' * 5000}", *host_flags(sim_paths))
    assert run.returncode == 2 and "a number of 5000 digits" in run.stderr, run.stderr
    tree = make_tree(tmp_path / "odd-tree", {"net.core.somaxconn": "7" * 5000})
    check = cli("check", "--sysctl-root", tree)
    assert check.returncode == 1, check.stderr
    assert "Traceback" not in check.stderr


def test_deep_nesting_is_refused_before_the_composer_recurses(tmp_path: Path) -> None:
    start = time.monotonic()
    error = refused(tmp_path, HEAD + "  net.core.somaxconn: {value: " + "[" * 100_000 + "\n")
    assert "nested deeper than" in error.reason and error.line == 5
    assert time.monotonic() - start < 5


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, HEAD + PARAM + "  net.core.somaxconn: {value: 1, rule: at-most, why: hidden}\n")
    assert error.line == 6 and "given twice (first on line 5)" in error.reason


def test_a_profile_larger_than_the_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(HEAD + PARAM + "# padding\n" * (MAX_PROFILE_BYTES // 10 + 1))
    with pytest.raises(ProfileError, match="larger than 256 KB"):
        load_profile(str(path))


@pytest.mark.parametrize(
    ("values", "profile"),
    [
        ({"vm.max_map_count": "1\nkernel.core_pattern = |/tmp/evil"}, "p"),
        ({"vm.max_map_count = 1\nkernel.core_pattern": "|/tmp/evil"}, "p"),
        ({"kernel.//.//.x": "1"}, "p"),
        ({"vm.max_map_count": "1"}, "p\nkernel.core_pattern = |/tmp/evil"),
        ({"vm.max_map_count": "$(reboot)"}, "p"),
    ],
    ids=["value-newline", "key-newline", "key-path", "profile-newline", "value-shell"],
)
def test_the_drop_in_is_rendered_from_plain_data_only(values: dict[str, str], profile: str) -> None:
    with pytest.raises(UnsafeDropin):
        render_dropin(values, profile)


def test_an_existing_drop_in_line_is_checked_before_it_is_kept(sim_paths: dict[str, Path], cli: Cli) -> None:
    """Settings kept from the current drop-in go through the same check as new ones."""
    sim_paths["sysctl_d"].mkdir(parents=True)
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    dropin.write_text("kernel.core_pattern = |/bin/sh -c 'curl x'\n")
    run = cli("apply", "--yes", *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot go into a drop-in" in run.stderr and "fix or remove it" in run.stderr
    assert dropin.read_text() == "kernel.core_pattern = |/bin/sh -c 'curl x'\n"


@pytest.mark.parametrize("limit", ["65536\nExecStartPre=/bin/sh -c 'id > /tmp/x'", 0, True, 1 << 40, 65536.5])
def test_the_systemd_drop_in_takes_a_whole_number_only(limit: object) -> None:
    with pytest.raises(KumotuiError, match="LimitNOFILE must be a whole number"):
        limits.unit_dropin_text(limit)  # type: ignore[arg-type]
    assert limits.unit_dropin_text(65536).endswith("[Service]\nLimitNOFILE=65536\n")
