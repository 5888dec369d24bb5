"""REST and WebSocket handlers under ``{base_url}guild/api/``.

Handlers are thin: they parse the request, await the manager (its blocking
work runs in a worker thread) and write JSON. Every verb is decorated with
``@tornado.web.authenticated`` (``@ws_authenticated`` for the WebSocket) and
``@authorized`` (resource ``guild``), and there is no catch-all route.
Errors are JSON ``{"message": ...}`` with a 4xx status; a bug is still a 500.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
from typing import Any, Callable

import tornado.iostream
import tornado.web
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import websocket

from guild_jupyter.errors import FlagError, GuildError, QueryError, RunNotFound
from guild_jupyter.server.manager import BadRequest, Manager, RunFileNotFound, parse_keys

AUTH_RESOURCE = "guild"
LISTING_PIECE = 2000  # rows per write of a listing
SETTINGS_KEY = "guild_jupyter"
# Served with their own type; anything else that is text is sent as text/plain (never rendered).
SAFE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/json", "text/csv",
              "text/plain", "application/pdf"}


class GuildHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> Manager:
        return self.settings[SETTINGS_KEY]

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking manager method in a worker thread; user errors become 4xx."""
        await self.manager.ensure_started()
        try:
            return await asyncio.to_thread(fn, *args)
        except RunNotFound as e:
            raise ApiError(404, _one_line(e)) from None
        except RunFileNotFound as e:
            raise ApiError(404, _one_line(e)) from None
        except (BadRequest, FlagError, QueryError) as e:
            raise ApiError(400, _one_line(e)) from None
        except GuildError as e:  # a conflict with the run's state: stop a finished run, delete a running one
            raise ApiError(409, _one_line(e)) from None

    def body(self) -> Any:
        if not self.request.body:
            raise tornado.web.HTTPError(400, "the request needs a JSON body")
        try:
            return json.loads(self.request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"invalid JSON in the request body: {e}") from None

    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, allow_nan=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": exc.message, "reason": exc.reason}))
            return
        super().write_error(status_code, **kwargs)


class ApiError(tornado.web.HTTPError):
    """An HTTP error whose message is sent as is (and logged safely, '%' and all)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message.replace("%", "%%"))
        self.message = message


class RunsHandler(GuildHandler):
    def compute_etag(self) -> None:  # hashing a 10,000-run listing costs more than it saves
        return None

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        params = {k: [v.decode("utf-8", "replace") for v in vs] for k, vs in self.request.query_arguments.items()}
        head, rows = await self.call(self.manager.list_runs, params)
        self.set_header("Content-Type", "application/json")  # before the first piece goes out
        self.write(head)
        try:
            for start in range(0, len(rows), LISTING_PIECE):  # big listings go out in pieces
                self.write(("," if start else "") + ",".join(rows[start:start + LISTING_PIECE]))
                if len(rows) > LISTING_PIECE:
                    await self.flush()
        except tornado.iostream.StreamClosedError:
            return
        self.finish("]}")

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body()
        self.send(await self.call(self.manager.submit, body), 201)


class RunHandler(GuildHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.send(await self.call(self.manager.get_run, run_id))

    @tornado.web.authenticated
    @authorized
    async def patch(self, run_id: str) -> None:
        body = self.body()
        self.send(await self.call(self.manager.patch, run_id, body))

    @tornado.web.authenticated
    @authorized
    async def delete(self, run_id: str) -> None:
        self.send(await self.call(self.manager.delete_run, run_id))


class StopHandler(GuildHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        body = self.body() if self.request.body else None
        self.send(await self.call(self.manager.stop_run, run_id, body))


class StartHandler(GuildHandler):
    """Launch a pending run a kernel prepared (its record and launch file are written)."""

    @tornado.web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        body = self.body() if self.request.body else None
        self.send(await self.call(self.manager.start_prepared, run_id, body))


class RestartHandler(GuildHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        self.send(await self.call(self.manager.restart_run, run_id))


class OutputHandler(GuildHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        text = self.get_query_argument("offset", "0")
        try:
            offset = int(text)
        except ValueError:
            raise ApiError(400, f"offset must be a byte offset (an integer), not {text!r}") from None
        if offset < 0:
            raise tornado.web.HTTPError(400, "offset must be 0 or more")
        self.send(await self.call(self.manager.output, run_id, offset))


class ScalarsHandler(GuildHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        keys = parse_keys(self.get_query_arguments("keys"))
        self.send(await self.call(self.manager.scalars, run_id, keys))


class FilesHandler(GuildHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.send(await self.call(self.manager.files, run_id))


class FileHandler(GuildHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str, path: str) -> None:
        real = await self.call(self.manager.file_path, run_id, path)
        kind = mimetypes.guess_type(real)[0] or "application/octet-stream"
        if kind not in SAFE_TYPES:
            kind = "text/plain" if kind.startswith("text/") or kind in (
                "application/javascript", "application/xml", "image/svg+xml") else "application/octet-stream"
        if kind.startswith("text/"):
            kind += "; charset=utf-8"
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Disposition", f"inline; filename*=UTF-8''{tornado.escape.url_escape(os.path.basename(real), plus=False)}")
        data = await asyncio.to_thread(_read_bytes, real)
        self.finish(data, set_content_type=kind)


class CompareHandler(GuildHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        refs = parse_keys(self.get_query_arguments("runs"))
        if not refs:
            raise tornado.web.HTTPError(400, "compare needs runs=<id>,<id>,...")
        self.send(await self.call(self.manager.compare, refs))


class EventsHandler(JupyterHandler, websocket.WebSocketHandler):
    """``events``: JSON messages, each with ``seq``; ``?since=<seq>`` resumes after it."""

    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> Manager:
        return self.settings[SETTINGS_KEY]

    async def prepare(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # a socket cannot follow a login redirect: no token is a plain 403
        await super().prepare(_redirect_to_login=False)

    async def pre_get(self) -> None:
        authorized_ = await _maybe_await(self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE))
        if not authorized_:
            raise tornado.web.HTTPError(403)
        since = self.get_query_argument("since", None)
        try:
            self._since = None if since in (None, "") else int(since)
        except ValueError:
            raise ApiError(400, f"since must be an event sequence number, not {since!r}") from None
        await self.manager.ensure_started()

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.pre_get()
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._closed = False
        backlog = self.manager.subscribe(self.send_event, self._since, close=self.close)
        self.write_message(json.dumps({"type": "hello", "seq": self.manager.seq}))
        for event in backlog:
            self.send_event(event)

    def send_event(self, event: dict[str, Any]) -> None:
        if self._closed:
            raise websocket.WebSocketClosedError()
        self.write_message(json.dumps(event, allow_nan=False))

    def on_message(self, message: Any) -> None:  # the stream is one way; ignore pings from clients
        pass

    def on_close(self) -> None:
        self._closed = True
        self.manager.unsubscribe(self.send_event)


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


RUN = r"(?P<run_id>[^/]+)"
ROUTES: list[tuple[str, type]] = [
    ("runs", RunsHandler),
    (f"runs/{RUN}", RunHandler),
    (f"runs/{RUN}/stop", StopHandler),
    (f"runs/{RUN}/start", StartHandler),
    (f"runs/{RUN}/restart", RestartHandler),
    (f"runs/{RUN}/output", OutputHandler),
    (f"runs/{RUN}/scalars", ScalarsHandler),
    (f"runs/{RUN}/files", FilesHandler),
    (f"runs/{RUN}/files/(?P<path>.+)", FileHandler),
    ("compare", CompareHandler),
    ("events", EventsHandler),
]
# The sidebar's extra routes (restore, rerun, provenance) add themselves to ROUTES.
import guild_jupyter.server.action_handlers  # noqa: E402,F401


def handlers(base_url: str) -> list[tuple[str, type]]:
    return [(url_path_join(base_url, "guild", "api", pattern) + "$", handler) for pattern, handler in ROUTES]
