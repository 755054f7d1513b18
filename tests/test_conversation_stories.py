"""The end-to-end test stories (``tests/conversations/``) pass on the session model.

``citizenbot eval conversations --skip-nlu-cv`` runs ``rasa test core --e2e``:
each user text goes through the real NLU, each action is predicted by the real
policies, offline (no action server). Cross-validation of the NLU is left to the
command itself (it trains several models).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import ROOT

CITIZENBOT = Path(sys.executable).with_name("citizenbot")
#: the issue asks for at least this many stories, covering every flow
MIN_STORIES = 40


@pytest.mark.stack
def test_every_conversation_story_passes(model: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(CITIZENBOT), "eval", "conversations", "--skip-nlu-cv",
            "--model", str(model), "--out", str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    failed = tmp_path / "conversations" / "failed_test_stories.yml"
    details = failed.read_text(encoding="utf-8") if failed.exists() else result.stderr[-3000:]
    assert result.returncode == 0, f"{result.stdout}\n{details}"
    passed, total = result.stdout.split("stories: ", 1)[1].split(" ", 1)[0].split("/")
    assert int(total) >= MIN_STORIES and passed == total, result.stdout
