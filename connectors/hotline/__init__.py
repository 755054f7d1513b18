"""Hotline transcripts (12345 热线转写): each call becomes a routed ticket or a resolved contact.

Public API (what ``citizenbot ingest`` and the console's upload page use)::

    from connectors.hotline import ingest_paths, ingest_file, IngestSummary

    summary = ingest_paths(["calls.jsonl"], progress=lambda calls, nbytes: ...)
    summary = ingest_file(upload.file, "calls.txt")   # binary file object
    summary.as_dict()

Modules: ``formats`` (reading files), ``nlu`` (the Rasa model, loaded once, in a
process of its own), ``agent`` (what the agent did: answered, promised a follow-up,
handed over to 110/119/120), ``understand`` (ticket or resolved contact, kind,
category, facts, summary), ``ingest`` (batches, the store), ``commands`` (the CLI),
``vocabulary`` (the phrases all of these recognise: data). Names here are imported
on first use, so importing the package costs nothing until something is ingested.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.hotline.formats import Call, Problem, Turn
    from connectors.hotline.ingest import (
        IngestSummary,
        ModelUnavailable,
        Progress,
        count_calls,
        ingest_file,
        ingest_paths,
    )
    from connectors.hotline.nlu import load_nlu

_WHERE = {
    "Call": "formats",
    "Problem": "formats",
    "Turn": "formats",
    "IngestSummary": "ingest",
    "ModelUnavailable": "ingest",
    "Progress": "ingest",
    "count_calls": "ingest",
    "ingest_file": "ingest",
    "ingest_paths": "ingest",
    "load_nlu": "nlu",
}

__all__ = [
    "Call",
    "IngestSummary",
    "ModelUnavailable",
    "Problem",
    "Progress",
    "Turn",
    "count_calls",
    "ingest_file",
    "ingest_paths",
    "load_nlu",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'connectors.hotline' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"connectors.hotline.{module}"), name)
    globals()[name] = value
    return value
