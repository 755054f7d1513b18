"""``python -m bot.console [--model PATH]``: serve the console with uvicorn on settings.host.

On the very first start (no users yet) an ``admin`` account is created and its
one-time password printed once, on stderr; it must be changed at first login.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from bot.console.app import create_app
from bot.logging import install as install_logging
from bot.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.console")
    parser.add_argument("--model", type=Path, default=None, help="model for hotline uploads")
    args = parser.parse_args(argv)
    settings = get_settings()
    # masked log lines (phone, 身份证) like every other process we start
    install_logging(service="console", level=settings.log_level)
    app = create_app(settings)
    console = app.state.console
    console.extras["model"] = args.model
    password = console.accounts.ensure_first_admin()
    if password:
        print(
            "\n"
            "  控制台首个管理员账号 / first console account:  admin\n"
            f"  一次性密码 / one-time password:              {password}\n"
            "  首次登录须修改密码 / change it at first login:  "
            f"http://{settings.host}:{settings.console_port}/login\n",
            file=sys.stderr,
            flush=True,
        )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.console_port,
        log_level="warning",
        proxy_headers=False,
        ws="none",  # no websockets here; Rasa pins an old websockets uvicorn cannot use
    )


if __name__ == "__main__":
    main()
