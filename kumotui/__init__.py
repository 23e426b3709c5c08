"""kumotui: tune a KumoMTA host's kernel and prove it with a live SMTP benchmark.

The package is a core with no Textual import (profiles, sysctl access,
findings, apply and journal, benchmark engines, parsers, run records) under a
thin Textual UI in :mod:`kumotui.ui`. The CLI in :mod:`kumotui.cli` is the
other face of the same core.
"""

__version__ = "0.1.0"
