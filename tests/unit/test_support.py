"""Promises the shared test helpers make to the tests that use them."""

from __future__ import annotations

from tests.support.demo import DEMO_KERNEL
from tests.support.trees import MODERN_KERNEL


def test_demo_host_is_the_modern_kernel_fixture() -> None:
    """Screenshots show the same kernel the tests judge."""
    fixture = {k: v for k, v in MODERN_KERNEL.items() if k not in ("kernel.hostname", "kernel.osrelease")}
    assert fixture == DEMO_KERNEL
