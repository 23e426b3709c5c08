"""Benchmark backends other than kumotui's own engines: KumoMTA and Postfix.

Each backend module finds its tools, builds their command lines (argument
lists, never shell text) and parses their output into
:class:`kumotui.samples.Sample` and :class:`kumotui.samples.Summary`. They
start no processes themselves: the job model does that, locally or over
SSH, and feeds the bytes it reads to the parsers here.

This package holds what the backends share: splitting a byte stream into
lines (tools that redraw a counter use ``\\r``), stripping ANSI colour,
sizes such as ``100KB`` and a TCP readiness probe.
"""

from __future__ import annotations

from kumotui.errors import KumotuiError

BACKENDS = ("builtin", "kumomta", "postfix")


def available_backends() -> list[str]:
    """The backends whose tools are installed here, builtin always first."""
    from kumotui.backends import kumomta, postfix

    found = ["builtin"]
    try:
        kumomta.find_kumomta()
        found.append("kumomta")
    except KumotuiError:
        pass
    try:
        postfix.find_postfix_tools()
        found.append("postfix")
    except KumotuiError:
        pass
    return found


def resolve_backend(name: str) -> str:
    """``auto`` picks kumomta when kumod and traffic-gen are installed, else builtin."""
    if name not in (*BACKENDS, "auto"):
        raise KumotuiError(f"--backend {name!r}: choose auto, {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    return "kumomta" if "kumomta" in available_backends() else "builtin"
