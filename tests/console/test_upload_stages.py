"""Issue 18, item 5: the hotline import as staff expect it, against the real model.

The upload page starts loading the model (once per console process); the job page
shows the stages — reading (N calls), loading the model, call n of N — and ends
with the tickets and the resolved contacts, each linked to its page.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot.console import upload
from tests.console.conftest import login
from tests.hotline.conftest import call

COMPLAINT = call(
    "UP-COMPLAINT/1",
    ("agent", "您好，12345热线。"),
    ("citizen", "我要投诉建设路工地夜间施工噪音太大，吵得睡不着，电话13812345678"),
)
INQUIRY = call(
    "UP-INQUIRY",
    ("agent", "您好，12345热线。"),
    ("citizen", "请问居住证怎么办理？"),
    ("agent", "您带身份证和租房合同到派出所办理就可以。"),
    ("citizen", "好的，谢谢"),
)


def _wait_done(disp: Any, url: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        job = disp.client.get(url.replace("/hotline/jobs/", "/api/hotline/jobs/")).json()
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in ("done", "failed"):
            job["seen"] = seen
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"job not finished: {seen}")


def test_upload_shows_stages_and_lists_tickets_and_contacts(
    app: Any, users: dict, model: Path, tmp_path: Path
) -> None:
    app.state.console.extras["model"] = model
    disp = login(app, "disp")
    page = disp.client.get("/hotline/upload")
    assert page.status_code == 200 and "语言模型" in page.text
    shared = upload.shared_model(app.state.console)
    assert shared.state in ("loading", "ready")  # opening the page started the load
    body = "\n".join(json.dumps(c, ensure_ascii=False) for c in (COMPLAINT, INQUIRY)) + "\n"
    answer = disp.api(
        "POST", "/hotline/upload?name=calls.jsonl", content=body.encode(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 202, answer.text
    job = _wait_done(disp, answer.json()["url"])
    assert job["status"] == "done", job
    assert job["calls_total"] == 2 and job["calls"] == 2
    summary = job["summary"]
    (ticket,) = summary["tickets"]
    (contact,) = summary["contacts"]
    assert ticket["call_id"] == "UP-COMPLAINT/1" and "噪音" in ticket["summary"]
    assert "13812345678" not in json.dumps(summary, ensure_ascii=False)
    assert contact["call_id"] == "UP-INQUIRY" and "居住证" in contact["summary"]

    html = disp.client.get(answer.json()["url"]).text
    assert f'href="/tickets/{ticket["number"]}"' in html
    contact_url = f"/hotline/contacts/{quote(contact['call_id'])}"
    assert f'href="{contact_url}"' in html
    assert "共 <span class=\"calls-total\">2</span> 通" in html
    shown = disp.client.get(contact_url)
    assert shown.status_code == 200 and "居住证" in shown.text
    assert disp.client.get("/hotline/contacts/nope").status_code == 404

    # the model is the console's, loaded once: a second upload does not wait for it
    assert shared.state == "ready"
    again = disp.api(
        "POST", "/hotline/upload?name=again.jsonl", content=body.encode(),
        headers={"Content-Type": "application/octet-stream"},
    )
    second = _wait_done(disp, again.json()["url"])
    assert "loading_model" not in second["seen"]
    assert second["summary"]["duplicates_skipped"] == 2


def test_a_waiting_job_says_it_is_loading_the_model(
    app: Any, users: dict, tmp_path: Path
) -> None:
    """The stage while the model loads (a model that takes its time, made here)."""
    console = app.state.console
    gate = threading.Event()

    class SlowModel(upload.SharedModel):
        def _load(self) -> None:
            gate.wait(30)
            self.error = "no model here"
            self._done.set()

    console.extras["shared_model"] = SlowModel(None)
    disp = login(app, "disp")
    body = json.dumps(COMPLAINT, ensure_ascii=False) + "\n"
    answer = disp.api(
        "POST", "/hotline/upload?name=calls.jsonl", content=body.encode(),
        headers={"Content-Type": "application/octet-stream"},
    )
    url = answer.json()["url"]
    api = url.replace("/hotline/jobs/", "/api/hotline/jobs/")
    deadline = time.monotonic() + 30
    while disp.client.get(api).json()["status"] != "loading_model":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    page = disp.client.get(url).text
    assert "正在加载语言模型" in page and "共 <span class=\"calls-total\">1</span> 通" in page
    gate.set()
    job = _wait_done(disp, url, 30)
    assert job["status"] == "failed" and "no model here" in job["error"]
