"""``runs()`` DataFrame over 10,000 and 100,000 runs x 10 flags x 5 scalars.

Bars (DESIGN "Bars"): 10,000 runs <= 150 ms, 100,000 runs <= 1.5 s (median of
warm reads). Baselines measured in the same run on the same data:

- floor: raw ``sqlite3`` ``SELECT * FROM runs`` + ``fetchall`` of the same index.db;
- floor + ``DataFrame.from_records`` of those rows (no post-processing);
- naive: the same data as long tables (runs / flags / scalars) in a temp SQLite
  db, read with two ``pivot``s and joined, with the same post-processing as ours.

Run directories are written directly (``run.json`` as ``Run.to_dict()`` gives
it, one ``scalars/x.csv`` per run) and cached under
/tmp/guild-jupyter-bench-cache/runs_frame/; each bench run links them into a
fresh ``GUILD_JUPYTER_HOME`` (a temp dir) with no index.db, so the store
rebuilds the index from the run directories, and that rebuild is timed (Guild's
``guild compare`` cold, 7.0 s for 2,000 runs, is printed as a reference).

Rebuilding 100,000 runs takes about a minute, so at that size the rebuilt index.db
is cached too, with the rebuild time measured when it was made (printed with its
date); ``--rebuild`` measures it again. 10,000 runs are rebuilt on every run.
First-time generation of the 100,000 run directories takes 1-2 minutes more.

``--quick`` skips the 100,000-run size.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _util  # noqa: E402
from _util import Bars, ms, table  # noqa: E402

GEN_VERSION = 1  # bump when the generated layout changes, to invalidate the cache
N_FLAGS, N_SCALARS, STEPS = 10, 5, 4
SCALAR_KEYS = ["loss", "acc", "val_loss", "val_acc", "epoch_time"]
READS = 5
BARS = {10_000: 0.150, 100_000: 1.5}
GUILD_COLD_2000 = 7.0  # guild compare --csv, 2,000 runs, cold (DESIGN "Bars")


def make_flags(rng: random.Random) -> dict:
    return {
        "lr": rng.choice([0.1, 0.03, 0.01, 0.003, 0.001]),
        "batch_size": rng.choice([16, 32, 64, 128]),
        "epochs": rng.randint(1, 50),
        "optimizer": rng.choice(["sgd", "adam", "adamw", "rmsprop"]),
        "dropout": round(rng.random() * 0.5, 3),
        "layers": rng.randint(1, 12),
        "use_bn": rng.random() < 0.5,
        "seed": rng.randint(0, 2**31),
        "weight_decay": rng.choice([0.0, 1e-5, 1e-4, 1e-3]),
        "activation": rng.choice(["relu", "gelu", "tanh"]),
    }


def generate(runs_dir: Path, n: int) -> None:
    """Write ``n`` completed run directories straight to disk (no run() calls)."""
    from guild_jupyter.model.run import Attempt, Run, new_run_id
    from guild_jupyter.model.status import RunStatus

    rng = random.Random(n)
    t_base = time.time() - n * 60.0
    runs_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        created = t_base + i * 60.0
        started, stopped = created + 0.01, created + 30.0 + rng.random() * 20
        attempt = Attempt(1, RunStatus.COMPLETED, started, stopped, 0, None, 4242, started - 100.0, "bench-host")
        run = Run(id=new_run_id(), op="train", kind="function", flags=make_flags(rng), created=created,
                  label=f"trial {i}", tags=["bench"] if i % 10 == 0 else [], attempts=[attempt],
                  source={"function": "train", "module": "bench"})
        meta = runs_dir / run.id / ".run"
        (meta / "scalars").mkdir(parents=True)
        with open(meta / "run.json", "w", encoding="utf-8") as f:
            f.write(json.dumps(run.to_dict(), indent=1, sort_keys=True, default=str))
        lines = []
        for step in range(STEPS):
            t = started + step
            for k in SCALAR_KEYS:
                lines.append(f"{k},{step},{rng.random()!r},{t!r}\n")
        with open(meta / "scalars" / "x.csv", "w", encoding="utf-8") as f:
            f.write("".join(lines))


def cached_runs(n: int) -> tuple[Path, str]:
    """The cached run directories for ``n`` runs, generated if missing."""
    base = _util.CACHE / "runs_frame" / f"n{n}-v{GEN_VERSION}"
    marker = base / "complete"
    if marker.exists():
        return base / "runs", f"cached in {base}"
    shutil.rmtree(base, ignore_errors=True)
    t0 = time.perf_counter()
    generate(base / "runs", n)
    took = time.perf_counter() - t0
    marker.write_text(json.dumps({"runs": n, "seconds": took}))
    return base / "runs", f"generated in {took:.1f} s, now cached in {base}"


def naive_db(index_db: Path, path: Path) -> None:
    """The same runs as long tables: runs (fixed columns), flags and scalars (run, name, value)."""
    src = sqlite3.connect(index_db)
    cols = [r[1] for r in src.execute("PRAGMA table_info(runs)")]
    flag_cols = [c for c in cols if c.startswith("flags.")]
    dst = sqlite3.connect(path)
    dst.executescript("""
        CREATE TABLE runs (id TEXT PRIMARY KEY, op TEXT, status TEXT, created REAL, started REAL,
                           stopped REAL, label TEXT, tags TEXT);
        CREATE TABLE flags (run TEXT, name TEXT, value, PRIMARY KEY (run, name)) WITHOUT ROWID;
        CREATE TABLE scalars (run TEXT, key TEXT, value REAL, PRIMARY KEY (run, key)) WITHOUT ROWID;
    """)
    q = ",".join('"' + c + '"' for c in ["id", "op", "status", "created", "started", "stopped", "label", "tags"] + flag_cols)
    rows = src.execute(f"SELECT {q} FROM runs").fetchall()
    dst.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?)", [r[:8] for r in rows])
    dst.executemany("INSERT INTO flags VALUES (?,?,?)",
                    [(r[0], c[len("flags."):], v) for r in rows for c, v in zip(flag_cols, r[8:])])
    dst.executemany("INSERT INTO scalars VALUES (?,?,?)", src.execute("SELECT run, key, last FROM scalar_summary"))
    dst.commit()
    dst.close()
    src.close()


def naive_read(path: Path):
    """Long tables read and pivoted to one row per run, post-processed as ``runs()`` does."""
    import pandas as pd
    from guild_jupyter.storage.frames import to_datetime

    conn = sqlite3.connect(path)
    try:
        runs = pd.DataFrame.from_records(
            conn.execute("SELECT id, op, status, started, stopped, label, tags FROM runs ORDER BY created DESC").fetchall(),
            columns=["id", "op", "status", "started", "stopped", "label", "tags"])
        flags = pd.DataFrame.from_records(conn.execute("SELECT run, name, value FROM flags").fetchall(),
                                          columns=["run", "name", "value"])
        scalars = pd.DataFrame.from_records(conn.execute("SELECT run, key, value FROM scalars").fetchall(),
                                            columns=["run", "key", "value"])
    finally:
        conn.close()
    fp = flags.pivot(index="run", columns="name", values="value").add_prefix("flags.")
    sp = scalars.pivot(index="run", columns="key", values="value").add_prefix("scalars.")
    df = runs.join(fp, on="id").join(sp, on="id")
    for col in ("started", "stopped"):
        df[col] = to_datetime(df[col])
    df["tags"] = [[] if t is None or t == "[]" else json.loads(t) for t in df["tags"]]
    return df.reset_index(drop=True)


def cached_index(n: int) -> tuple[Path, dict | None]:
    """Where the index.db rebuilt from the ``n``-run cache is kept, and how long its rebuild took."""
    base = _util.CACHE / "runs_frame" / f"n{n}-v{GEN_VERSION}"
    info = base / "index.json"
    if (base / "index.db").exists() and info.exists() and not _util.option("--rebuild"):
        return base / "index.db", json.loads(info.read_text())
    return base / "index.db", None


def save_index(home: Path, n: int, seconds: float) -> None:
    dest, _ = cached_index(n)
    tmp = dest.with_name("index.db.tmp")
    src = sqlite3.connect(home / "index.db")
    dst = sqlite3.connect(tmp)
    src.backup(dst)
    dst.close()
    src.close()
    os.replace(tmp, dest)
    dest.with_name("index.json").write_text(json.dumps({
        "runs": n, "seconds": seconds, "measured": time.strftime("%Y-%m-%d %H:%M"),
    }))


def bench_size(n: int, bars: Bars) -> None:
    import guild_jupyter as gj

    runs_src, how = cached_runs(n)
    print(f"\n{n:,} runs x {N_FLAGS} flags x {N_SCALARS} scalars ({STEPS} points each): run directories {how}")
    home = _util.temp_home(f"runs-frame-{n}")
    os.symlink(runs_src, home / "runs")  # the store's runs/ is the cache; index.db is fresh in home
    # 100,000 runs take ~1 min to rebuild: that is measured once, then the built index is
    # cached with its figure (``--rebuild`` measures it again). 10,000 runs: every time.
    reuse = n >= 100_000
    index_path, index_info = cached_index(n) if reuse else (None, None)
    if index_info is not None:
        shutil.copyfile(index_path, home / "index.db")

    t0 = time.perf_counter()
    store = gj.RunStore(home)
    first = gj.runs(store=store)
    cold = time.perf_counter() - t0
    assert len(first) == n, (len(first), n)
    assert sum(c.startswith("flags.") for c in first.columns) == N_FLAGS
    assert sum(c.startswith("scalars.") for c in first.columns) == N_SCALARS
    if reuse and index_info is None:
        save_index(home, n, cold)
    del first

    reads = READS
    few = 3 if n >= 100_000 else READS  # baselines at 100k: 3 reads each, to stay near 2 minutes
    ours = _util.timed(lambda: gj.runs(store=store), reads, warmup=0)

    index_db = home / "index.db"
    conn = sqlite3.connect(index_db)

    def floor():
        return conn.execute("SELECT * FROM runs").fetchall()

    floor_t = _util.timed(floor, few)

    import pandas as pd

    def floor_df():
        cur = conn.execute("SELECT * FROM runs")
        return pd.DataFrame.from_records(cur.fetchall(), columns=[d[0] for d in cur.description])

    floor_df_t = _util.timed(floor_df, few)
    conn.close()

    naive_path = home / "naive.db"
    naive_db(index_db, naive_path)
    ours_df = gj.runs(store=store)
    check = naive_read(naive_path)
    assert len(check) == n and check.shape[1] == ours_df.shape[1], (check.shape, ours_df.shape)
    del check, ours_df
    naive_t = _util.timed(lambda: naive_read(naive_path), few, warmup=0)

    m_ours, m_floor, m_floor_df, m_naive = (_util.median(x) for x in (ours, floor_t, floor_df_t, naive_t))
    guild_est = GUILD_COLD_2000 * n / 2000
    if index_info is None:
        rebuild_row = ("first runs(), no index.db (rebuild + read)", ms(cold), "1 call", f"{cold / m_ours:.1f}x")
        rebuild_s = cold
        rebuild_note = "measured now"
    else:
        rebuild_s = index_info["seconds"]
        rebuild_row = ("first runs(), no index.db (rebuild + read)", ms(rebuild_s),
                       f"cached {index_info['measured']}", f"{rebuild_s / m_ours:.1f}x")
        rebuild_note = (f"measured {index_info['measured']} when the index was cached; "
                        f"--rebuild measures it again")
    rows = [
        ("runs() (ours), warm", ms(m_ours), f"{ms(min(ours))} .. {ms(max(ours))}", "1.00x"),
        ("floor: sqlite3 SELECT * + fetchall", ms(m_floor), f"{ms(min(floor_t))} .. {ms(max(floor_t))}",
         f"{m_floor / m_ours:.2f}x"),
        ("floor + DataFrame.from_records", ms(m_floor_df), f"{ms(min(floor_df_t))} .. {ms(max(floor_df_t))}",
         f"{m_floor_df / m_ours:.2f}x"),
        ("naive long tables + 2 pivots", ms(m_naive), f"{ms(min(naive_t))} .. {ms(max(naive_t))}",
         f"{m_naive / m_ours:.2f}x"),
        rebuild_row,
    ]
    if index_info is not None:
        rows.append(("first runs(), cached index.db (open + read)", ms(cold), "1 call", f"{cold / m_ours:.1f}x"))
    rows.append(("  ref: guild compare cold, 2,000 runs = 7.0 s", f"~{ms(guild_est)}", f"linear to {n:,}", ""))
    print(table(rows, ("what", "median", f"range ({reads} ours, {few} baselines)", "vs ours")))
    print(f"ours = {m_ours / m_floor:.2f}x the raw sqlite floor, naive = {m_naive / m_ours:.1f}x ours; "
          f"index rebuild {n / rebuild_s:,.0f} runs/s ({rebuild_note})")
    bar = BARS[n]
    bars.check(f"runs() {n:,} runs, median of {reads}", ms(m_ours), f"<= {ms(bar)}", m_ours <= bar)


def main() -> int:
    _util.header("bench_runs_frame: runs() DataFrame vs raw sqlite floor vs naive long tables")
    import pandas  # noqa: F401  (imported once, outside every timing)

    bars = Bars()
    sizes = [10_000] if _util.quick() else [10_000, 100_000]
    for n in sizes:
        bench_size(n, bars)
    if _util.quick():
        print("\n(--quick: 100,000 runs skipped)")
    bars.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
