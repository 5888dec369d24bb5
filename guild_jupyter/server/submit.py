"""Starting runs from the server: ``POST runs`` (any operation kind) and ``POST
runs/{id}/start`` (a run a kernel prepared).

A kernel started by this server records a cell run itself (flags, snapshot and
pickled inputs need the kernel's namespace) and leaves it ``pending`` with its
launch record; ``start_prepared`` then launches it here, so the server's
orchestrator (one process, one store) starts every run of its notebooks. The
launching side writes ``source.submitted_via`` (``"server"`` here,
``"embedded"`` when a kernel or the CLI launches a run itself).

Bad input raises :class:`BadRequest` (400) before anything is recorded; a run
that is not a prepared pending run is a :class:`GuildError` (409).
"""

from __future__ import annotations

import os
from typing import Any

from guild_jupyter.errors import GuildError
from guild_jupyter.orchestration.executors.local import LocalExecutor
from guild_jupyter.server.common import BadRequest, run_json
from guild_jupyter.server.listing import _tags

SUBMIT_FIELDS = frozenset({"op", "flags", "label", "tags", "dir"})
SUBMITTED_VIA = "submitted_via"
MAX_REASON = 200


class SubmitMixin:
    """The manager's run-starting actions (needs ``self.store`` and ``self.root_dir``)."""

    store: Any
    root_dir: str

    def submit(self, body: Any) -> dict[str, Any]:
        """``POST runs``: start a run of a script (``.py``), a notebook (``.ipynb``) or an
        operation of a ``guild.yml`` in the background. Paths are relative to ``dir``
        (default: the server's root directory) and must stay inside the root."""
        from guild_jupyter.experiment.runner import start_operation

        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        unknown = set(body) - SUBMIT_FIELDS
        if unknown:
            raise BadRequest(f"unknown field(s) in the request: {', '.join(sorted(unknown))}")
        op = body.get("op")
        if not isinstance(op, str) or not op.strip() or "\0" in op:
            raise BadRequest("'op' must be a script (.py) or notebook (.ipynb) path, or a guild.yml operation")
        flags = body.get("flags") or {}
        if not isinstance(flags, dict):
            raise BadRequest("'flags' must be an object of flag names to values")
        label = body.get("label") or ""
        if not isinstance(label, str):
            raise BadRequest("'label' must be a string")
        tags = _tags(body.get("tags"), "tags")
        base = self._inside_root(body.get("dir") or ".", "'dir'")
        try:
            operation = self._load_operation(op.strip(), base)
        except BadRequest:
            raise
        except GuildError as e:  # no such file, not a notebook, a malformed guild.yml: bad input
            raise BadRequest(str(e)) from None
        return run_json(start_operation(_Submitted(operation, "server"), flags, store=self.store,
                                        label=label, tags=tags, background=True))

    def _inside_root(self, rel: Any, what: str) -> str:
        if not isinstance(rel, str) or "\0" in rel:
            raise BadRequest(f"{what} must be a path relative to the server's root directory")
        path = os.path.realpath(os.path.join(self.root_dir, rel))
        if os.path.commonpath([self.root_dir, path]) != self.root_dir:
            raise BadRequest(f"{what} {rel!r} is outside the server's root directory")
        return path

    def _load_operation(self, op: str, base: str) -> Any:
        if op.endswith((".py", ".ipynb")):
            self._inside_root(os.path.relpath(os.path.join(base, op), self.root_dir), "op")
            if op.endswith(".py"):
                from guild_jupyter.experiment.script_op import ScriptOperation

                return ScriptOperation.load(op, cwd=base)
            from guild_jupyter.notebook.notebook_op import NotebookOperation

            return NotebookOperation.load(op, cwd=base)
        from guild_jupyter.guild_compat.guildfile import find_guildfile

        guildfile = find_guildfile(base)
        if guildfile is None or os.path.commonpath([self.root_dir, os.path.realpath(guildfile)]) != self.root_dir:
            raise BadRequest(f"cannot run {op!r}: not a script (.py) or notebook (.ipynb), "
                             "and no guild.yml in its directory or above it inside the server's root")
        from guild_jupyter.guild_compat.guildfile_op import GuildfileOperation

        return GuildfileOperation.find(op, cwd=base)

    def start_prepared(self, ref: str, body: Any = None) -> dict[str, Any]:
        """``POST runs/{id}/start``: launch a ``pending`` run whose launch record a kernel
        wrote (and nobody launched yet) through this server's orchestrator.

        ``{"env": {...}}``: the environment the run inherits (the kernel's own, so a
        variable set in the notebook reaches the run as it would launched from the
        kernel); default: the server's. It is used for the launch, never written down."""
        from guild_jupyter.orchestration.controller import Controller
        from guild_jupyter.orchestration.launch import LaunchSpec

        if body is None:
            body = {}
        if not isinstance(body, dict) or set(body) - {"env"}:
            raise BadRequest('the request body must be {} or {"env": {NAME: VALUE, ...}}')
        env = body.get("env")
        if env is not None and not (isinstance(env, dict) and all(
                isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
                for k, v in env.items())):
            raise BadRequest("'env' must be an object of variable names to string values")
        run = self.store.resolve(ref)
        meta = self.store.meta_dir(run.id)
        if run.status.value != "pending" or run.attempt.pid is not None or len(run.attempts) != 1:
            raise GuildError(f"run {run.short_id} is {run.status.value}, not a prepared pending run")
        try:
            spec = LaunchSpec.load(meta)
        except FileNotFoundError:
            raise GuildError(f"run {run.short_id} has no launch record: it was not prepared to start") from None

        def mark(r: Any) -> None:
            if r.attempt.pid is not None or r.status.value != "pending":
                raise GuildError(f"run {r.short_id} was started meanwhile")
            r.source = {**r.source, SUBMITTED_VIA: "server"}

        run = self.store.update_run(run.id, mark)
        executor = None if env is None else _InheritedEnv(env)
        return run_json(Controller(self.store).submit(run, spec, background=True, executor=executor))

    def stop_run(self, ref: str, body: Any = None) -> dict[str, Any]:
        """``POST runs/{id}/stop``; ``{"reason": ...}`` is recorded (default "stopped by user")."""
        from guild_jupyter.orchestration.controller import Controller

        reason = "stopped by user"
        if body not in (None, {}):
            if not isinstance(body, dict) or set(body) - {"reason"}:
                raise BadRequest("the request body must be {} or {\"reason\": \"...\"}")
            reason = body.get("reason")
            if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
                raise BadRequest(f"'reason' must be a non-empty string of at most {MAX_REASON} characters")
        return run_json(Controller(self.store).stop(ref, wait=False, reason=reason.strip()))


class _InheritedEnv(LocalExecutor):
    """The local executor, launching with the environment a kernel sent (plus what the
    controller sets: the store's home, this package on ``PYTHONPATH``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def launch(self, store: Any, run_id: str, env: dict[str, str],
               resources: dict[str, float] | None = None) -> Any:
        from guild_jupyter.orchestration.controller import _share_package_path

        inherited = dict(self.env, GUILD_JUPYTER_HOME=env["GUILD_JUPYTER_HOME"])
        for var in ("RUN_ID", "RUN_DIR"):
            inherited.pop(var, None)
        _share_package_path(inherited)
        return super().launch(store, run_id, inherited, resources)


class _Submitted:
    """An operation whose runs record who launched them (``source.submitted_via``)."""

    def __init__(self, op: Any, via: str) -> None:
        self._op, self._via = op, via

    def __getattr__(self, name: str) -> Any:
        return getattr(self._op, name)

    def run_source(self) -> dict[str, Any]:
        return {**self._op.run_source(), SUBMITTED_VIA: self._via}
