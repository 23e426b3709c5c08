"""Standalone benchmark engines: an SMTP sink and an SMTP traffic generator.

Each engine runs on its own, as ``python3 -m kumotui.engines.NAME`` or as a
plain script copied to a host that has nothing but Python 3: it imports only
the standard library (and uvloop when present) and ``smtp_common``, the
process plumbing both engines share, which is copied along with them; never
the rest of kumotui. Both speak the same output contract, JSON lines on
stdout: a ``ready`` line, ``progress`` samples about every 0.5 s, then one
``summary`` (or an ``error`` and a non-zero exit). :mod:`kumotui.jobs` starts
them as child processes (``BuiltinSinkJob``, ``BuiltinGenJob``) and reads
those lines.
"""
