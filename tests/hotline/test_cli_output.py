"""Issue 18, item 5: ``citizenbot ingest`` tells staff what it is doing and which tickets it made.

The stage while the model loads, "n/N calls", then every ticket number (with its
department and masked summary) and the resolved contacts; a re-import of known
calls loads no model at all.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.hotline.conftest import write_jsonl
from tests.hotline.test_ingest import COMPLAINT, ID_NUMBER, INQUIRY, PHONE, _cli

TICKET = re.compile(r"GD\d{8}-\d{4}")


def test_cli_prints_stages_ticket_numbers_and_contacts(
    tmp_path: Path, env: dict[str, str], model: Path
) -> None:
    jsonl = write_jsonl(tmp_path / "calls.jsonl", [COMPLAINT, INQUIRY])
    done = _cli(env, "ingest", "--model", str(model), str(jsonl))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "language model loaded" in done.stderr and "2/2" in done.stderr
    numbers = TICKET.findall(done.stdout)
    assert len(numbers) == 1, done.stdout
    assert "tickets created / 新建工单 (1):" in done.stdout and "C-COMPLAINT" in done.stdout
    assert "resolved contacts / 当场解答 (1):" in done.stdout and "C-INQUIRY" in done.stdout
    assert PHONE not in done.stdout and ID_NUMBER not in done.stdout

    listed = json.loads(_cli(env, "tickets", "list", "--json").stdout)
    assert [r["number"] for r in listed] == numbers

    # known calls: nothing to parse, so no model is loaded and no ticket is listed
    again = _cli(env, "ingest", "--model", str(model), str(jsonl))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "language model" not in again.stderr and not TICKET.findall(again.stdout)
