"""kumotui: tune a KumoMTA host's kernel and prove it with a live SMTP benchmark.

The package is layered, each package importing only those below it (import-linter
contracts in ``pyproject.toml`` enforce it):

- :mod:`.engines`: the stdlib-only SMTP sink and generator, shipped to remote hosts as they are;
- :mod:`.backends`: the tools a benchmark can run (built-in, KumoMTA, Postfix) behind one protocol;
- :mod:`.hosts`: where kumotui acts, this machine or one over SSH;
- :mod:`.tuning`: profiles, findings, plans, journaled apply and rollback;
- :mod:`.bench`: benchmark runs, live figures, hints, records and reports;
- :mod:`.onboarding`: the guided first-time setup;
- :mod:`.ui` (Textual) and :mod:`.cli` (argparse): the two faces of the same core.

Below them all sit :mod:`.errors`, :mod:`.paths`, :mod:`.settings`, :mod:`.ids`
and :mod:`.text`. Only :mod:`.ui` imports Textual.
"""

__version__ = "0.1.0"
