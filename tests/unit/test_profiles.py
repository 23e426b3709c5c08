"""Profiles: the shipped ones, inheritance, and every refusal with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumotui.errors import ProfileError
from kumotui.tuning.profiles import available_profiles, load_profile
from kumotui.tuning.values import Rule

KUMOMTA_KEYS = {
    "vm.max_map_count",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "fs.file-max",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "kernel.shmmax",
    "net.core.somaxconn",
    "vm.nr_hugepages",
    "kernel.shmmni",
}


def test_kumomta_profile_has_the_twelve_published_values() -> None:
    profile = load_profile("kumomta")
    assert {p.key for p in profile.params} == KUMOMTA_KEYS
    assert profile.source
    assert profile.param("net.ipv4.tcp_tw_reuse").rule is Rule.EXACTLY  # type: ignore[union-attr]
    assert profile.param("net.ipv4.ip_local_port_range").rule is Rule.COVERS  # type: ignore[union-attr]
    assert profile.param("kernel.shmmax").value == "68719476736"  # type: ignore[union-attr]
    for param in profile.params:
        assert len(param.why) > 80, param.key
        assert "default" in param.why, f"{param.key}: why should give the kernel default"


def test_extended_inherits_and_overrides() -> None:
    profile = load_profile("kumomta-extended")
    keys = {p.key for p in profile.params}
    assert keys >= KUMOMTA_KEYS
    assert {"net.core.netdev_max_backlog", "fs.nr_open", "net.ipv4.tcp_rmem"} <= keys
    somaxconn = profile.param("net.core.somaxconn")
    assert somaxconn is not None and somaxconn.value == "4096"
    assert somaxconn.origin == "kumomta-extended"
    assert profile.param("vm.max_map_count").origin == "kumomta"  # type: ignore[union-attr]


def test_available_profiles_lists_shipped_and_user(tmp_path: Path) -> None:
    user = tmp_path / "config" / "profiles"
    user.mkdir(parents=True)
    (user / "mine.yaml").write_text(
        "name: mine\nextends: kumomta\nparams:\n  vm.nr_hugepages: {value: 64, rule: at-least}\n"
    )
    names = [name for name, _ in available_profiles()]
    assert {"kumomta", "kumomta-extended", "mine"} <= set(names)
    mine = load_profile("mine")
    assert mine.param("vm.nr_hugepages").value == "64"  # type: ignore[union-attr]
    assert len(mine.params) == 12


def test_user_profile_may_shadow_and_extend_shipped_name(tmp_path: Path) -> None:
    user = tmp_path / "config" / "profiles"
    user.mkdir(parents=True)
    (user / "kumomta.yaml").write_text(
        "name: kumomta\nextends: kumomta\nparams:\n  fs.nr_open: {value: 2000000, rule: at-least}\n"
    )
    profile = load_profile("kumomta")
    assert len(profile.params) == 13


def _write(tmp_path: Path, text: str, name: str = "bad.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


GOOD_HEAD = "name: t\ntitle: T\nsource: s\nparams:\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("name: t\nparams: [\n", 3, "YAML syntax error"),
        (
            "name: t\ncolour: red\nparams:\n  a.b: {value: 1, rule: exactly}\n",
            2,
            "unknown field 'colour'",
        ),
        (
            GOOD_HEAD + "  net.core.somaxconn: {value: 1, rule: biggest}\n",
            5,
            "unknown rule 'biggest'",
        ),
        (
            GOOD_HEAD + "  net.core.somaxconn:\n    value: lots\n    rule: at-least\n",
            6,
            "needs whole numbers",
        ),
        (GOOD_HEAD + "  net.core.somaxconn: {value: 1.5, rule: at-least}\n", 5, "value must be"),
        (GOOD_HEAD + "  net.core.somaxconn: {value: true, rule: exactly}\n", 5, "value must be"),
        (
            GOOD_HEAD + "  net.ipv4.ip_local_port_range: {value: '6000 5000', rule: covers}\n",
            5,
            "lo <= hi",
        ),
        (GOOD_HEAD + "  net.ipv4.ip_local_port_range: {value: 5000, rule: covers}\n", 5, "'lo hi'"),
        (GOOD_HEAD + "  somaxconn: {value: 1, rule: at-least}\n", 5, "not a dotted sysctl name"),
        (
            GOOD_HEAD + "  'net.core.x; rm -rf /': {value: 1, rule: at-least}\n",
            5,
            "not a dotted sysctl name",
        ),
        (
            GOOD_HEAD + "  net.core.somaxconn: {value: 1, rule: at-least, colour: red}\n",
            5,
            "unknown field 'colour'",
        ),
        (GOOD_HEAD + "  net.core.somaxconn: {rule: at-least}\n", 5, "missing 'value'"),
        (
            "title: x\nparams:\n  a.b: {value: 1, rule: exactly}\n",
            1,
            "missing required field 'name'",
        ),
        (
            "name: t\nextends: nosuch\nparams:\n  a.b: {value: 1, rule: exactly}\n",
            2,
            "extends unknown profile 'nosuch'",
        ),
        ("- just\n- a list\n", 1, "must be a YAML mapping"),
        ("name: t\nparams: {}\n", 2, "'params' must be a mapping"),
    ],
)
def test_bad_profile_is_refused_with_file_line_and_reason(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    error = caught.value
    assert error.path == path
    assert error.line == line
    assert message in error.reason
    assert str(error).startswith(f"{path}:{line}: ")


def test_extends_cycle_is_refused(tmp_path: Path) -> None:
    user = tmp_path / "config" / "profiles"
    user.mkdir(parents=True)
    (user / "a.yaml").write_text("name: a\nextends: b\nparams:\n  a.b: {value: 1, rule: exactly}\n")
    (user / "b.yaml").write_text("name: b\nextends: a\nparams:\n  a.c: {value: 1, rule: exactly}\n")
    with pytest.raises(ProfileError, match=r"extends cycle: a -> b -> a"):
        load_profile("a")


def test_unknown_profile_name_lists_available() -> None:
    with pytest.raises(ProfileError, match="available: kumomta, kumomta-extended"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="no such profile file"):
        load_profile("./missing.yaml")


def test_values_as_lists_and_huge_ints(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GOOD_HEAD
        + "  net.ipv4.tcp_rmem: {value: [4096, 131072, 16777216], rule: at-least}\n"
        + "  kernel.shmmax: {value: 18446744073709551615, rule: at-least}\n"
        + "  net.ipv4.tcp_congestion_control: {value: bbr, rule: exactly, why: 'x'}\n",
    )
    profile = load_profile(path)
    assert profile.param("net.ipv4.tcp_rmem").value == "4096 131072 16777216"  # type: ignore[union-attr]
    assert profile.param("kernel.shmmax").value == str(2**64 - 1)  # type: ignore[union-attr]
