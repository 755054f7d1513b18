"""User administration pages (admin only); the CLI (``citizenbot users``) does the same.

A new or reset password is a one-time password shown once on the page that
created it; the user must change it at first login.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console.accounts import ADMIN_ROLES, ROLES, AccountError
from bot.console.core import Refused, call, console_of, flash, render, require_user


async def _page(request: Request, status: int = 200, **extra: object) -> Response:
    console = console_of(request)
    return render(
        request,
        "users.html",
        status=status,
        users=await call(console.accounts.list),
        roles=ROLES,
        departments=console.departments,
        **extra,
    )


async def users_page(request: Request) -> Response:
    require_user(request, roles=ADMIN_ROLES)
    return await _page(request)


async def add_user(request: Request) -> Response:
    require_user(request, roles=ADMIN_ROLES)
    console = console_of(request)
    form = await request.form()
    try:
        user, password = await call(
            console.accounts.add,
            str(form.get("username") or "")[:200],
            str(form.get("role") or ""),
            str(form.get("department") or "")[:200] or None,
        )
    except AccountError as exc:
        flash(request, exc.code, "error", str(exc))
        return await _page(request, status=422)
    return await _page(request, one_time={"username": user.username, "password": password})


async def change_user(request: Request) -> Response:
    admin = require_user(request, roles=ADMIN_ROLES)
    console = console_of(request)
    username = request.path_params["username"]
    operation = request.path_params["operation"]
    if username == admin.username and operation == "disable":
        raise Refused(422, "cannot_disable_self")
    try:
        if operation == "disable":
            await call(console.accounts.set_disabled, username, True)
        elif operation == "enable":
            await call(console.accounts.set_disabled, username, False)
        elif operation == "reset":
            password = await call(console.accounts.reset_password, username)
            return await _page(request, one_time={"username": username, "password": password})
        else:
            raise Refused(404, "not_found")
    except AccountError as exc:
        raise Refused(404 if exc.code == "no_such_user" else 422, exc.code) from exc
    flash(request, f"done_user_{operation}")
    return RedirectResponse("/users", status_code=303)


routes = [
    Route("/users", users_page, methods=["GET"]),
    Route("/users", add_user, methods=["POST"]),
    Route("/users/{username}/{operation}", change_user, methods=["POST"]),
]
