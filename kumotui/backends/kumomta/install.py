"""Where KumoMTA's binaries live, and the ports and account its sink uses.

Facts from KumoMTA's packages (``KUMOMTA.md``): binaries in
``/opt/kumomta/sbin``; the sink policy listens on 2026 (ESMTP) and 8002 (HTTP).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kumotui.errors import KumotuiError

DEFAULT_PREFIX = Path("/opt/kumomta")
SINK_PORT = 2026
"""The port KumoMTA's sink policy listens on (its docs' ``--target <sink>:25`` example is wrong)."""
SINK_HTTP_PORT = 8002
DEFAULT_KUMOD_USER = "kumod"
"""The account kumod drops to when started as root (``--user``)."""
POLICY_NAME = "sink.lua"


# --- discovery -------------------------------------------------------------


@dataclass(frozen=True)
class KumoTools:
    """Where kumod and traffic-gen are."""

    sbin: Path

    @property
    def kumod(self) -> Path:
        """The MTA daemon (also the sink, with kumotui's policy)."""
        return self.sbin / "kumod"

    @property
    def traffic_gen(self) -> Path:
        """KumoMTA's SMTP load generator."""
        return self.sbin / "traffic-gen"


def find_kumomta(
    env: Mapping[str, str] | None = None,
    need: tuple[str, ...] = ("kumod", "traffic-gen"),
) -> KumoTools:
    """Find KumoMTA's binaries in ``$KUMOMTA_PREFIX/sbin`` or ``/opt/kumomta/sbin``.

    Args:
        env: the environment to read ``KUMOMTA_PREFIX`` from (default: this process's).
        need: the binaries the caller will run; a sink needs only ``kumod``.

    Raises:
        KumotuiError: a needed binary is missing or not executable, saying
            what was looked for and where.
    """
    environ = os.environ if env is None else env
    override = environ.get("KUMOMTA_PREFIX")
    prefix = Path(override) if override else DEFAULT_PREFIX
    tools = KumoTools(prefix / "sbin")
    missing = [name for name in need if not os.access(tools.sbin / name, os.X_OK)]
    if missing:
        where = f"{tools.sbin} (from $KUMOMTA_PREFIX={override})" if override else f"{tools.sbin}"
        raise KumotuiError(
            f"KumoMTA not found: no executable {' or '.join(missing)} in {where}. "
            "Install the kumomta package, set KUMOMTA_PREFIX to its install prefix, "
            "or choose another backend (--backend builtin)."
        )
    return tools


# --- the sink policy --------------------------------------------------------


# --- kumod ------------------------------------------------------------------


# --- traffic-gen -------------------------------------------------------------
