"""Profiling hook for ``python -m bench.profile``: on the PYTHONPATH of the servers only.

Python imports ``sitecustomize`` at start-up; with ``CITIZENBOT_PROFILE_DIR`` set,
a process that ``citizenbot run`` started (it sets ``CITIZENBOT_SERVICE``) gets two
signal handlers: SIGUSR1 starts cProfile on the main thread (the event loop, where
every request is served), SIGUSR2 stops it and writes ``<service>-<pid>.prof``.
Start-up (model loading) and warm-up stay out of the profile, and nothing in the
code base changes to be profiled.
"""

from __future__ import annotations

import os

_DIR = os.environ.get("CITIZENBOT_PROFILE_DIR")
_SERVICE = os.environ.get("CITIZENBOT_SERVICE")

if _DIR and _SERVICE:
    import cProfile
    import signal
    from pathlib import Path

    _profiler = cProfile.Profile()

    def _start(_signum: int, _frame: object) -> None:
        _profiler.enable()

    def _stop(_signum: int, _frame: object) -> None:
        _profiler.disable()
        Path(_DIR).mkdir(parents=True, exist_ok=True)
        _profiler.dump_stats(str(Path(_DIR) / f"{_SERVICE}-{os.getpid()}.prof"))

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
