"""Staff console (工作人员控制台): work tickets in a browser, answer citizens, follow up.

``python -m bot.console`` (started by ``citizenbot run``) serves the pages and
the JSON API on ``CONSOLE_PORT``; ``bot.console.app.create_app`` builds the
application. See ``docs/console.md``.
"""
