"""How a kernel finds the Jupyter server that started it, and a small client of its API.

A kernel started by a Jupyter server has ``JPY_PARENT_PID`` = the server's pid;
the server describes itself in ``jupyter_runtime_dir()/jpserver-<pid>.json``
(``url``, ``token``, ...). The file of *that* pid is read (stale files of dead
servers are ignored by checking the pid is alive). When there is no such file,
``GUILD_JUPYTER_SERVER_URL`` (put into the environment by the extension, so
kernels inherit it) is used with ``GUILD_JUPYTER_SERVER_PID``'s runtime file
for the token. Standard library only (urllib), so a kernel imports it cheaply.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from guild_jupyter.errors import FlagError, GuildError, RunNotFound
from guild_jupyter.orchestration.process_info import pid_exists

URL_ENV = "GUILD_JUPYTER_SERVER_URL"
PID_ENV = "GUILD_JUPYTER_SERVER_PID"
API = "guild/api/"
# The server is this machine's (or the kernel's own network's): never through an HTTP proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerUnavailable(GuildError):
    """No Jupyter server with the guild-jupyter extension answers."""


@dataclass
class ServerInfo:
    url: str  # ends with the base URL and "/"
    token: str
    pid: int | None = None


def _runtime_info(pid: int, runtime_dir: str | None = None) -> dict[str, Any] | None:
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    path = os.path.join(runtime_dir, f"jpserver-{pid}.json")
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or int(info.get("pid", -1)) != pid or not pid_exists(pid):
        return None
    return info


def find_server(env: dict[str, str] | None = None, runtime_dir: str | None = None) -> ServerInfo | None:
    """The server this process (a kernel) belongs to, or None."""
    env = dict(os.environ) if env is None else env
    for var in ("JPY_PARENT_PID", PID_ENV):
        text = env.get(var, "")
        if not text.isdigit():
            continue
        info = _runtime_info(int(text), runtime_dir)
        if info is None:
            continue
        url = info.get("url") or ""
        if info.get("sock"):
            continue  # a Unix-socket server: urllib cannot reach it
        if var == PID_ENV and env.get(URL_ENV):
            url = env[URL_ENV]
        if url:
            return ServerInfo(url if url.endswith("/") else url + "/", str(info.get("token") or ""), int(text))
    return None


class ServerClient:
    """``submit``, ``stop``, ``restart``, ``get_run`` and ``runs`` through the server's REST API."""

    def __init__(self, info: ServerInfo, timeout: float = 30.0) -> None:
        self.info, self.timeout = info, timeout

    @classmethod
    def connect(cls, timeout: float = 30.0) -> ServerClient | None:
        """A client of this kernel's server if one is found and answers, else None."""
        info = find_server()
        if info is None:
            return None
        client = cls(info, timeout)
        try:
            client.request("GET", "runs", query={"limit": "0"})
        except (ServerUnavailable, GuildError):
            return None
        return client

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        url = urllib.parse.urljoin(self.info.url, API + path)
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.info.token:
            req.add_header("Authorization", f"token {self.info.token}")
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read().decode("utf-8")).get("message") or e.reason
            except Exception:
                message = str(e.reason)
            if e.code == 404 and path.startswith("runs/"):
                raise RunNotFound(message) from None
            if e.code == 400 and "flag" in str(message).lower():
                raise FlagError(message) from None
            if e.code in (400, 404, 409):
                raise GuildError(message) from None
            raise ServerUnavailable(f"the Jupyter server answered {e.code}: {message}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ServerUnavailable(f"cannot reach the Jupyter server at {self.info.url}: {e}") from None
        return json.loads(payload.decode("utf-8")) if payload else None

    def submit(self, op: str, flags: dict[str, Any] | None = None, *, label: str = "",
               tags: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """Start a run of ``op`` (a script or notebook path relative to the server's root
        directory, or an operation of the guild.yml there)."""
        return self.request("POST", "runs", {"op": op, "flags": dict(flags or {}), "label": label, "tags": list(tags)})

    def stop(self, run_id: str, reason: str | None = None) -> dict[str, Any]:
        body = {"reason": reason} if reason else {}
        return self.request("POST", f"runs/{urllib.parse.quote(run_id, safe='')}/stop", body)

    def start_prepared(self, run_id: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Have the server launch a pending run this process recorded and prepared
        (with ``env`` as the run's environment; default: the server's)."""
        body = {} if env is None else {"env": dict(env)}
        return self.request("POST", f"runs/{urllib.parse.quote(run_id, safe='')}/start", body)

    def restart(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", f"runs/{urllib.parse.quote(run_id, safe='')}/restart", {})

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"runs/{urllib.parse.quote(run_id, safe='')}")

    def runs(self, **query: Any) -> dict[str, Any]:
        return self.request("GET", "runs", query=query)
