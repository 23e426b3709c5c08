"""Kernel tuning: profile -> findings -> plan -> journaled apply -> rollback.

:mod:`.values` (rules), :mod:`.catalog` (kernel limits), :mod:`.profiles`,
:mod:`.sysctl` and :mod:`.findings` read and judge; :mod:`.validate` and
:mod:`.plan` decide what to write; :mod:`.apply`, :mod:`.journal`,
:mod:`.dropin` and :mod:`.privilege` write it safely; :mod:`.limits` and
:mod:`.simulate` complete the picture. Works on any :class:`~kumotui.hosts.Host`.
"""
