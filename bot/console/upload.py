"""Hotline transcript upload (热线转写上传): stream to disk, ingest in a thread, show progress.

The file never sits in memory: the page's script sends the raw file
(``application/octet-stream``) and the body is streamed to a temporary file
under ``var/uploads`` while it is counted against ``CONSOLE_UPLOAD_MAX_MB``;
without JavaScript a normal multipart form works too (Starlette spools it to
disk). Ingesting runs ``connectors.hotline.ingest_file`` on a background
thread — the NLU parse is ~10 ms per turn, minutes for a big file — so the event
loop keeps serving; one ingest runs at a time (the NLU is one model on one
thread anyway) and later uploads wait their turn. The job page refreshes
itself until the summary is there.

Stages staff see on the job page: reading the file (the N of "call n of N"),
waiting for an earlier import, loading the language model, call n of N, then the
tickets and resolved contacts, each linked. The model is one per console process
(:class:`SharedModel`): loading starts in the background as soon as someone opens
the upload page, so by the time a file is chosen it is usually ready, and every
later upload reuses it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.console.accounts import HOTLINE_ROLES
from bot.console.core import Console, Refused, console_of, render, require_user
from bot.console.security import BodyTooLarge

#: jobs kept for the job pages; older finished ones are forgotten
KEEP_JOBS = 50
#: job statuses in the order a job goes through them (``failed`` may end any)
STAGES = ("reading", "queued", "loading_model", "running", "done")
FORMATS = ("auto", "jsonl", "text")
_NAME = re.compile(r"[^\w.\-一-鿿]+")


@dataclass
class Job:
    """One upload being ingested; read by the job page, written by the worker thread."""

    id: str
    name: str
    owner: str
    size: int
    format: str = "auto"
    status: str = "reading"  # reading | queued | loading_model | running | done | failed
    #: calls in the file (None until counted, or when it could not be)
    calls_total: int | None = None
    #: calls done so far (ticket, contact, duplicate or error)
    calls: int = 0
    bytes_done: int = 0
    summary: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    #: when the job began waiting for the model (for "已等待 n 秒")
    model_wait_since: float | None = None
    model_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        waited = None
        if self.status == "loading_model" and self.model_wait_since is not None:
            waited = round(time.time() - self.model_wait_since)
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "status": self.status,
            "stage": STAGES.index(self.status) if self.status in STAGES else None,
            "calls": self.calls,
            "calls_total": self.calls_total,
            "model_waited_seconds": waited,
            "model_seconds": self.model_seconds,
            "bytes_done": self.bytes_done,
            "percent": round(100 * self.bytes_done / self.size, 1) if self.size else 100.0,
            "summary": self.summary,
            "error": self.error,
        }


class Jobs:
    """The console's upload jobs and the single worker lock."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.worker = threading.Lock()

    def add(self, job: Job) -> None:
        with self.lock:
            self.jobs[job.id] = job
            finished = [j for j in self.jobs.values() if j.status in ("done", "failed")]
            for old in sorted(finished, key=lambda j: j.created)[
                : max(0, len(self.jobs) - KEEP_JOBS)
            ]:
                self.jobs.pop(old.id, None)

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)


def _jobs(console: Console) -> Jobs:
    return console.extras.setdefault("jobs", Jobs())


class SharedModel:
    """The console's language model: loaded once per console process, in the background.

    :func:`connectors.hotline.load_nlu` keeps one NLU process per model for the
    life of the console; this adds the loading in the background (started when the
    upload page is opened) and its state for the pages. A failed load is retried
    on the next request (the model may have been trained meanwhile).
    """

    def __init__(self, model: Path | None) -> None:
        self.model = model
        self.nlu: Any = None
        self.error: str | None = None
        self.started: float | None = None
        self.seconds: float | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()

    @property
    def state(self) -> str:
        if self.nlu is not None:
            return "ready"
        if self.started is None:
            return "idle"
        return "failed" if self._done.is_set() else "loading"

    def warm(self) -> None:
        with self._lock:
            if self.nlu is not None or (self.started is not None and not self._done.is_set()):
                return
            self.started, self.error = time.time(), None
            self._done.clear()
        threading.Thread(target=self._load, daemon=True, name="hotline-model").start()

    def _load(self) -> None:
        from connectors.hotline import load_nlu
        from connectors.hotline.nlu import NLUFailed

        try:
            self.nlu = load_nlu(self.model)
            self.seconds = round(time.time() - (self.started or time.time()), 1)
        except (FileNotFoundError, NLUFailed) as exc:
            self.error = str(exc)
        except Exception as exc:  # the page must say what went wrong
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._done.set()

    def wait(self) -> Any:
        """The loaded NLU (waiting for it), or :class:`ModelUnavailable`."""
        from connectors.hotline import ModelUnavailable
        from connectors.hotline import messages as hotline_messages

        if self.nlu is None:
            self.warm()
            self._done.wait()
        if self.nlu is None:
            raise ModelUnavailable(hotline_messages.NO_MODEL.format(error=self.error))
        return self.nlu


def shared_model(console: Console) -> SharedModel:
    with _jobs(console).lock:
        shared = console.extras.get("shared_model")
        if shared is None:
            shared = console.extras["shared_model"] = SharedModel(console.extras.get("model"))
        return shared


class _ModelForJob:
    """The shared model as the ingester's parser: the job shows "loading the model" while
    the first parse waits for it (a re-import of known calls never needs it)."""

    def __init__(self, shared: SharedModel, job: Job) -> None:
        self.shared, self.job = shared, job

    def submit(self, texts: Any) -> Any:
        if self.shared.nlu is None:
            self.job.status, self.job.model_wait_since = "loading_model", time.time()
            try:
                self.shared.wait()
            finally:
                self.job.model_seconds = round(time.time() - self.job.model_wait_since, 1)
            self.job.status = "running"
        return self.shared.wait().submit(texts)


def _safe_name(name: str) -> str:
    """A display name for problems ("file:line"): the base name, harmless characters."""
    base = Path(name.replace("\\", "/")).name
    return (_NAME.sub("_", base)[:100] or "upload").lstrip(".") or "upload"


def _upload_dir(console: Console) -> Path:
    path = console.settings.var_dir / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(console: Console, job: Job, path: Path) -> None:
    """Worker thread: count the calls, ingest, keep progress on the job, remove the file."""
    from connectors.hotline import ModelUnavailable, count_calls, ingest_file

    def progress(calls: int, nbytes: int) -> None:
        job.calls, job.bytes_done = calls, min(nbytes, job.size)

    shared = shared_model(console)
    try:
        shared.warm()  # loads while the file is read and earlier imports finish
        job.status = "reading"
        try:
            job.calls_total = count_calls(
                path, job.name, format=job.format, timezone=console.settings.timezone
            )
        except (OSError, ValueError):
            job.calls_total = None  # the ingest reports what is wrong with the file
        job.status = "queued"
        with _jobs(console).worker:
            job.status = "running"
            summary = ingest_file(
                path,
                job.name,
                format=job.format,
                store=console.store,
                nlu=_ModelForJob(shared, job),
                progress=progress,
            )
        job.summary = summary.as_dict()
        job.calls, job.bytes_done = summary.calls_read, job.size
        job.status = "done"
    except ModelUnavailable as exc:
        job.error, job.status = str(exc), "failed"
    except Exception as exc:  # the job page must say what went wrong
        job.error, job.status = f"{type(exc).__name__}: {exc}", "failed"
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def start_job(console: Console, path: Path, name: str, owner: str, fmt: str) -> Job:
    job = Job(
        id=secrets.token_urlsafe(12),
        name=_safe_name(name),
        owner=owner,
        size=path.stat().st_size,
        format=fmt,
    )
    _jobs(console).add(job)
    threading.Thread(target=_run, args=(console, job, path), daemon=True, name="ingest").start()
    return job


async def _stream_to_file(request: Request, handle: IO[bytes], cap: int) -> int:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise Refused(413, "upload_too_large")
        await run_in_threadpool(handle.write, chunk)
    return size


async def upload_page(request: Request) -> Response:
    require_user(request, roles=HOTLINE_ROLES)
    console = console_of(request)
    shared = shared_model(console)
    shared.warm()  # someone is about to upload: have the model ready by then
    return render(
        request,
        "upload.html",
        max_mb=console.settings.console_upload_max_mb,
        formats=FORMATS,
        model={"state": shared.state, "seconds": shared.seconds, "error": shared.error,
               "waited": round(time.time() - shared.started) if shared.started else None},
    )


async def upload(request: Request) -> Response:
    user = require_user(request, roles=HOTLINE_ROLES)
    console = console_of(request)
    cap = console.settings.console_upload_max_mb * 1024 * 1024
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap + 64 * 1024:
        raise Refused(413, "upload_too_large")
    fmt = request.query_params.get("format") or "auto"
    fd, raw = tempfile.mkstemp(dir=_upload_dir(console), suffix=".upload")
    path = Path(raw)
    try:
        with os.fdopen(fd, "wb") as handle:
            if request.headers.get("content-type", "").startswith("multipart/form-data"):
                form = await request.form(max_files=1, max_fields=10)
                part = form.get("file")
                fmt = str(form.get("format") or fmt)
                if not isinstance(part, UploadFile) or not part.filename:
                    raise Refused(422, "upload_missing")
                name = part.filename
                await run_in_threadpool(shutil.copyfileobj, part.file, handle, 1024 * 1024)
                if handle.tell() > cap:
                    raise Refused(413, "upload_too_large")
            else:
                name = request.query_params.get("name") or "upload"
                await _stream_to_file(request, handle, cap)
            if handle.tell() == 0:
                raise Refused(422, "upload_empty")
        if fmt not in FORMATS:
            raise Refused(422, "bad_param", "format")
    except (Refused, BodyTooLarge, ClientDisconnect, OSError):
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    job = start_job(console, path, name, user.username, fmt)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(
            {"job": job.as_dict(), "url": f"/hotline/jobs/{job.id}"}, status_code=202
        )
    return RedirectResponse(f"/hotline/jobs/{job.id}", status_code=303)


def _job_for(request: Request) -> Job:
    require_user(request, roles=HOTLINE_ROLES)
    job = _jobs(console_of(request)).get(request.path_params["job"])
    if job is None:
        raise Refused(404, "job_not_found")
    return job


async def job_page(request: Request) -> Response:
    job = _job_for(request)
    return render(request, "upload_job.html", job=job.as_dict())


async def job_api(request: Request) -> Response:
    return JSONResponse(_job_for(request).as_dict())


def _contact_row(console: Console, call_id: str) -> dict[str, Any] | None:
    """A resolved contact of the hotline by its call id (nothing personal is stored)."""
    from bot.privacy import mask_text
    from bot.tickets.queries import resolved_contact
    from connectors.hotline.ingest import CHANNEL

    row = resolved_contact(console.store.engine, f"{CHANNEL}:{call_id}")
    if row is None:
        return None
    return {
        "call_id": mask_text(call_id),
        "kind": row.kind,
        "intent": row.intent,
        "category": row.category,
        "service": row.service,
        "summary": row.summary,
        "agent": row.agent,
        "started_at": row.started_at,
        "created_at": row.created_at,
    }


async def contact_page(request: Request) -> Response:
    """One resolved contact (当场解答) of an import: what was asked and answered."""
    require_user(request, roles=HOTLINE_ROLES)
    console = console_of(request)
    contact = await run_in_threadpool(_contact_row, console, request.path_params["call_id"])
    if contact is None:
        raise Refused(404, "page_not_found")
    return render(request, "upload_contact.html", contact=contact)


routes = [
    Route("/hotline/upload", upload_page, methods=["GET"]),
    Route("/hotline/upload", upload, methods=["POST"]),
    Route("/hotline/jobs/{job}", job_page, methods=["GET"]),
    Route("/hotline/contacts/{call_id:path}", contact_page, methods=["GET"]),
    Route("/api/hotline/jobs/{job}", job_api, methods=["GET"]),
]
