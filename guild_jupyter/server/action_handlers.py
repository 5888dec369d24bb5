"""Routes the JupyterLab sidebar needs beyond the core API: restore a run from the
trash, rerun a run with edited flags, and read a run's provenance.

The work is done by :class:`RunActions` (plain functions of the store, run in a
worker thread by :meth:`GuildHandler.call`); the handlers only parse and answer.
Every verb is ``@tornado.web.authenticated`` and ``@authorized`` as in
:mod:`~guild_jupyter.server.handlers`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from guild_jupyter.errors import GuildError, RunNotFound
from guild_jupyter.server.common import BadRequest, _clean, run_json
from guild_jupyter.server.handlers import ROUTES, GuildHandler
from guild_jupyter.storage import layout
from guild_jupyter.storage.store import RunStore

RERUN_FIELDS = frozenset({"flags", "label"})


class RunActions:
    """The sidebar's extra actions, over one store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def _id(self, ref: str) -> str:
        # str.isdigit() is true for '²' and other non-ASCII digits, which int() refuses:
        # such a reference is simply not a run (the store's resolve_id would raise ValueError)
        if not ref.isascii():
            raise RunNotFound(f"invalid run reference {ref!r}: use an id, an id prefix or an index")
        return self.store.resolve_id(ref, deleted=None)

    def restore(self, ref: str) -> dict[str, Any]:
        """Bring a trashed run back (409 if it is not in the trash)."""
        run_id = self._id(ref)
        if not self.store.load_run(run_id).deleted:
            raise GuildError(f"run {run_id[:8]} is not in the trash")
        self.store.restore(run_id)
        return run_json(self.store.load_run(run_id))

    def rerun(self, ref: str, body: Any) -> dict[str, Any]:
        """A new run from the old run's record (snapshot, inputs, flags) with the given
        flag overrides, started in the background; its record says ``rerun_of``."""
        from guild_jupyter.notebook.rerun import rerun

        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        unknown = set(body) - RERUN_FIELDS
        if unknown:
            raise BadRequest(f"unknown field(s) in the request: {', '.join(sorted(unknown))}")
        flags = body.get("flags") or {}
        if not isinstance(flags, dict):
            raise BadRequest("'flags' must be an object of flag names to values")
        label = body.get("label")
        if label is not None and not isinstance(label, str):
            raise BadRequest("'label' must be a string")
        old = self.store.load_run(self._id(ref))
        if old.kind == "inline":
            raise GuildError(f"run {old.short_id} ran inline in a kernel: rerun it in its notebook")
        new = rerun(old.id, flags, store=self.store, background=True, label=label)
        return run_json(self.store.load_run(new.id))

    def provenance(self, ref: str) -> dict[str, Any]:
        """What the supervisor recorded about where the run ran (git, packages, host);
        empty until the run's first attempt has collected it."""
        run_id = self._id(ref)
        path = os.path.join(self.store.meta_dir(run_id), layout.PROVENANCE)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as e:
            raise GuildError(f"run {run_id[:8]} has an unreadable provenance record: {e}") from None
        return {"run": run_id, "provenance": _clean(data if isinstance(data, dict) else {})}


class _ActionHandler(GuildHandler):
    @property
    def actions(self) -> RunActions:
        return RunActions(self.manager.store)


class RestoreHandler(_ActionHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        self.send(await self.call(self.actions.restore, run_id))


class RerunHandler(_ActionHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        body = self.body() if self.request.body else {}
        self.send(await self.call(self.actions.rerun, run_id, body), 201)


class ProvenanceHandler(_ActionHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.send(await self.call(self.actions.provenance, run_id))


RUN = r"(?P<run_id>[^/]+)"
ACTION_ROUTES: list[tuple[str, type]] = [
    (f"runs/{RUN}/restore", RestoreHandler),
    (f"runs/{RUN}/rerun", RerunHandler),
    (f"runs/{RUN}/provenance", ProvenanceHandler),
]
ROUTES.extend(ACTION_ROUTES)  # handlers.ROUTES is the one route table (tests check every entry)
