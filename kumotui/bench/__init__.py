"""Benchmark runs, whatever the backend: options, the run itself, live figures, hints, records, reports.

Above :mod:`kumotui.tuning` (a run records the kernel values it started from)
and below the faces: the CLI's ``bench`` and the app's benchmark screen drive
the same :func:`~kumotui.bench.run.prepare_plan` and
:func:`~kumotui.bench.run.run_and_record`.
"""
