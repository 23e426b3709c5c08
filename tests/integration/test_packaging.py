"""A plain, non-editable install still finds the shipped profiles."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_carries_profiles_and_loads_them(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("kumotui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "kumotui/profiles/kumomta.yaml" in names
    assert "kumotui/profiles/kumomta-extended.yaml" in names
    # Test and demo code stays out of what users install.
    assert not [n for n in names if "demo" in n or "screenshots" in n or n.startswith(("tests/", "scripts/"))]

    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = (
        "import kumotui.tuning.profiles as p;"
        "print(p.shipped_profiles_dir()); print(len(p.load_profile('kumomta-extended').params))"
    )
    # Run from an empty directory with only the unpacked wheel on the path, so
    # the checkout's kumotui/profiles/ cannot be what is found.
    run = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    where, count = run.stdout.split()
    assert where.startswith(str(target)) and where.endswith("kumotui/profiles")
    assert int(count) > 12
