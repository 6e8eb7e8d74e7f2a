"""The operator console: server-rendered pages in the API process, for people who settle jobs
that need a person (see :mod:`order_dispatch_api.console.pages`)."""

from order_dispatch_api.console.pages import ConsoleConfig, console_router
from order_dispatch_api.console.sessions import Principal

__all__ = ["ConsoleConfig", "Principal", "console_router"]
