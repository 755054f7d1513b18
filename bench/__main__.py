"""``make bench``: every benchmark, each against its baseline measured in the same run."""

from __future__ import annotations

import runpy
import sys
from importlib.util import find_spec

#: module → what it measures; modules not present yet are skipped with a note
BENCHMARKS = {
    "bench.chat": "chat under open-loop load vs the minimal Rasa bot: REST and WeChat, "
    "default and production profiles, saturation and p95 ratios (docs/performance.md)",
    "bench.nlu.run": "NLU parse per message on one core (p95 budget 5 ms) vs the minimal "
    "bot's jieba + DIET parse of the same messages",
    "bench.routing.run": "department routing speed vs the linear baseline",
    "bench.tickets.run": "ticket store creates/updates per second vs a bare-table floor",
    "bench.wechat.run": "WeChat signed-XML round trips vs the REST channel",
    "bench.ingest.run": "hotline ingest calls/s vs the bare NLU parse rate",
}
#: still runnable by hand, not part of ``make bench``: ``bench.rest`` (one REST window,
#: superseded by bench.chat) and ``bench.load.run`` (production profile at 10/50/100
#: conversations, 1 vs 2 servers; bench.chat measures the recommended configuration)


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
