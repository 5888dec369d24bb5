"""The server extension's REST listing and its memory, against a real ``jupyter server``.

Bars (DESIGN "Bars"): ``GET {base_url}guild/api/runs`` of 10,000 runs (every flag and
scalar column, one JSON document) <= 100 ms median; server resident memory with
100,000 runs in the store <= 200 MB.

The server renders each row's JSON once (in SQLite) and keeps it with the row's
``updated`` version, so repeated listings only render the rows that changed. Both
figures are printed: repeated listings of an unchanged store (the bar's median), and
listings right after every row changed (everything rendered again).

The runs are bench_runs_frame's cached run directories (10 flags x 5 scalars,
generated on first use); the index is rebuilt (10k) or copied from that cache
(100k). The server runs as a subprocess with only this extension enabled and is
asked over HTTP with urllib, as a kernel would. Baselines in the same run:

- ``GET /api/status`` of the same server: the HTTP + auth round trip floor;
- in-process ``gj.runs()`` (the DataFrame) + ``to_json``: the same data through the
  public Python API, serialised.

Memory: RSS of the server process (psutil) after startup and a paged listing
(``limit=50``), then after a full listing of all 100,000 runs (its transient peak
is the size of the response). ``--quick`` skips 100,000 runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import _util  # noqa: E402
from _util import Bars, ms, table  # noqa: E402

READS = 15
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home: Path) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="gj-bench-server-"))
        (self.tmp / "root").mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        config = self.tmp / "config.json"
        config.write_text(json.dumps({
            "ServerApp": {"jpserver_extensions": {"guild_jupyter": True, "jupyterlab": False, "jupyter_lsp": False,
                                                  "notebook_shim": False, "jupyter_server_terminals": False},
                          "allow_unauthenticated_access": False, "allow_root": True, "open_browser": False,
                          "port": self.port, "port_retries": 0, "ip": "127.0.0.1", "root_dir": str(self.tmp / "root"),
                          "log_level": "WARN"},
            "IdentityProvider": {"token": TOKEN}}))
        env = dict(os.environ, GUILD_JUPYTER_HOME=str(home), JUPYTER_RUNTIME_DIR=str(self.tmp / "runtime"),
                   JUPYTER_CONFIG_DIR=str(self.tmp / "config"), JUPYTER_DATA_DIR=str(self.tmp / "data"),
                   PYTHONPATH=os.pathsep.join([str(_util.ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
        self.log = open(self.tmp / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyter_server", f"--config={config}"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def get(self, path: str) -> bytes:
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.read()

    def wait_up(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit((self.tmp / "server.log").read_text()[-3000:])
            try:
                self.get("guild/api/runs?limit=1")
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("the server did not come up")

    def rss(self) -> int:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def store_with(n: int) -> Path:
    import bench_runs_frame as brf

    runs_src, how = brf.cached_runs(n)
    print(f"\n{n:,} runs x {brf.N_FLAGS} flags x {brf.N_SCALARS} scalars: run directories {how}")
    home = _util.temp_home(f"server-{n}")
    os.symlink(runs_src, home / "runs")
    index_path, info = brf.cached_index(n)
    if info is not None:
        shutil.copyfile(index_path, home / "index.db")
    from guild_jupyter.storage.store import RunStore

    t0 = time.perf_counter()
    rows = RunStore(home, progress=lambda *_: None).list_rows()
    assert len(rows) == n, len(rows)
    print(f"index ready in {time.perf_counter() - t0:.1f} s")
    return home


def bench_listing(bars: Bars) -> None:
    n = 10_000
    home = store_with(n)
    server = Server(home)
    try:
        server.wait_up()
        body = json.loads(server.get("guild/api/runs"))
        assert body["total"] == n and len(body["runs"]) == n
        assert len(body["runs"][0]["flags"]) == 10 and len(body["runs"][0]["scalars"]) == 5
        size = len(server.get("guild/api/runs"))
        ours = _util.timed(lambda: server.get("guild/api/runs"), READS)
        # cold: every row changed since the last listing (as after an index rebuild), so every
        # row is rendered again; the touch itself is outside the timing
        import sqlite3

        conn = sqlite3.connect(home / "index.db", timeout=30)

        def touch_all() -> None:
            conn.execute("UPDATE runs SET updated = updated + 0.000001")
            conn.commit()

        cold = []
        for _ in range(5):
            touch_all()
            time.sleep(2.5)  # the server's watcher re-reads changed rows for 2 s; let it settle
            cold += _util.timed(lambda: server.get("guild/api/runs"), 1, warmup=0)
        conn.close()
        paged = _util.timed(lambda: server.get("guild/api/runs?limit=100&sort=-scalars.loss"), READS)
        status = _util.timed(lambda: server.get("api/status"), READS)
        import guild_jupyter as gj
        from guild_jupyter.storage.store import RunStore

        store = RunStore(home, progress=lambda *_: None)
        frame = _util.timed(lambda: gj.runs(store=store).to_json(orient="records", date_format="iso"), 5)
    finally:
        server.stop()
    m = _util.median
    rows = [
        (f"GET guild/api/runs, all {n:,} runs ({size / 1e6:.1f} MB JSON)", ms(m(ours)), ms(_util.quantile(ours, 0.9))),
        ("  same, every row changed since the last listing (all re-rendered)", ms(m(cold)),
         ms(_util.quantile(cold, 0.9))),
        ("GET guild/api/runs?limit=100&sort=-scalars.loss", ms(m(paged)), ms(_util.quantile(paged, 0.9))),
        ("baseline: GET api/status (HTTP + auth floor)", ms(m(status)), ms(_util.quantile(status, 0.9))),
        ("baseline: in-process gj.runs().to_json()", ms(m(frame)), ms(_util.quantile(frame, 0.9))),
    ]
    print(table(rows, ("what", "median", "p90")))
    bars.check(f"GET runs, {n:,} runs, median of {READS}", ms(m(ours)), "<= 100.0 ms", m(ours) <= 0.100)
    bars.check(f"GET runs, {n:,} runs, all rows changed (not a bar, shown)", ms(m(cold)), "<= 100.0 ms",
               m(cold) <= 0.100)


def bench_memory(bars: Bars) -> None:
    n = 100_000
    home = store_with(n)
    server = Server(home)
    try:
        server.wait_up()
        time.sleep(1.0)  # the watcher primed, a few ticks done
        server.get("guild/api/runs?limit=50")
        idle = server.rss()
        t0 = time.perf_counter()
        body = server.get("guild/api/runs")
        full_s = time.perf_counter() - t0
        after_full = server.rss()
        assert json.loads(body)["total"] == n
        del body
    finally:
        server.stop()
    rows = [
        (f"server RSS, {n:,} runs, after start + paged listing", f"{idle / 2**20:.0f} MB"),
        (f"server RSS after a full listing of {n:,} runs (took {full_s:.2f} s)", f"{after_full / 2**20:.0f} MB"),
    ]
    print(table(rows, ("what", "RSS")))
    bars.check(f"server RSS with {n:,} runs (idle, paged listing)", f"{idle / 2**20:.0f} MB", "<= 200 MB",
               idle <= 200 * 2**20)
    bars.check(f"server RSS after a full {n:,}-run listing", f"{after_full / 2**20:.0f} MB", "<= 200 MB",
               after_full <= 200 * 2**20)


def main() -> int:
    _util.header("bench_server: REST listing and server memory (real jupyter server)")
    bars = Bars()
    bench_listing(bars)
    if _util.quick():
        print("\n(--quick: 100,000 runs skipped)")
    else:
        bench_memory(bars)
    bars.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
