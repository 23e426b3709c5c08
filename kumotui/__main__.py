"""Allow ``python -m kumotui``."""

from kumotui.cli import main

raise SystemExit(main())
