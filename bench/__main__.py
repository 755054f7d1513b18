"""``make bench``: every benchmark, each against its baseline measured in the same run."""

from __future__ import annotations

import runpy
import sys
from importlib.util import find_spec

#: module → what it measures; modules not present yet are skipped with a note
BENCHMARKS = {
    "bench.rest": "REST chat latency vs the minimal Rasa bot",
    "bench.routing.run": "department routing speed vs the linear baseline",
    "bench.tickets.run": "ticket store creates/updates per second vs a bare-table floor",
    "bench.wechat.run": "WeChat signed-XML round trips vs the REST channel",
    "bench.ingest.run": "hotline ingest calls/s vs the bare NLU parse rate",
    "bench.load.run": "production profile: REST/WeChat at 10/50/100 conversations, "
    "1 vs 2 servers (PostgreSQL + Redis)",
}


def main() -> None:
    for module, what in BENCHMARKS.items():
        print(f"\n== {module}: {what}", flush=True)
        if find_spec(module.rsplit(".", 1)[0]) is None or find_spec(module) is None:
            print("   (not present)")
            continue
        sys.argv = [module]
        runpy.run_module(module, run_name="__main__")


if __name__ == "__main__":
    main()
