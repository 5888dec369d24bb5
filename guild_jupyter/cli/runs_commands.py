"""Subcommands that read and tidy the store: runs, compare, cat, label, tag, delete, restore, purge, check."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from guild_jupyter.cli.registry import command
from guild_jupyter.errors import GuildError


def add_parsers(sub: Any) -> None:

    p = sub.add_parser("runs", help="list runs (newest first)")
    _filters(p)
    p.add_argument(
        "-a", "--all", action="store_true", help="show all runs (default: the newest 20)"
    )
    p.add_argument("-n", "--limit", type=int, default=20, help="how many runs to show")
    p.add_argument("--json", action="store_true", help="print JSON with flags and scalars")

    p = sub.add_parser("compare", help="flags and scalars of runs as a table")
    p.add_argument(
        "runs", nargs="*", metavar="RUN", help="runs to compare (default: all matching the filters)"
    )
    _filters(p)
    p.add_argument(
        "--agg", action="append", default=[], metavar="[SCALAR=]AGG",
        help="which value of each scalar: last (default), first, min, max, mean or count; "
        "SCALAR=AGG for one scalar (repeatable, e.g. --agg loss=min --agg acc=max)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument(
        "--csv", nargs="?", const="-", metavar="PATH", help="write CSV (to PATH or stdout)"
    )
    fmt.add_argument("--json", action="store_true", help="print JSON records")

    p = sub.add_parser("cat", help="print a run's output")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--offset", type=int, default=0, help="start at this byte offset")

    p = sub.add_parser("label", help="set or clear run labels")
    p.add_argument("runs", nargs="+", metavar="RUN")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--set", metavar="LABEL", help="the new label")
    g.add_argument("--clear", action="store_true", help="remove the label")

    p = sub.add_parser("tag", help="add or remove run tags")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("-a", "--add", action="append", default=[], metavar="TAG")
    p.add_argument("-d", "--delete", action="append", default=[], metavar="TAG")
    p.add_argument("--clear", action="store_true", help="remove every tag first")

    for name, text in (
        ("delete", "move runs to the trash"),
        ("restore", "bring runs back from the trash"),
        ("purge", "remove runs from the trash for good"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("runs", nargs="+", metavar="RUN")
        if name == "purge":
            p.add_argument("-y", "--yes", action="store_true", help="do not ask")

    p = sub.add_parser("import-guild", help="import Guild AI runs (never writes to the Guild home)")
    p.add_argument(
        "guild_home", nargs="?", metavar="GUILD_HOME",
        help="a Guild AI home (default: Guild's own rule, $GUILD_HOME or ~/.guild)",
    )

    p = sub.add_parser("check", help="compare the index with the run directories")
    p.add_argument(
        "--repair", action="store_true", help="rebuild the index from the run directories"
    )


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--op", help="operation name (glob patterns allowed)")
    p.add_argument(
        "-s", "--status", action="append", help="only runs with this status (repeatable)"
    )
    p.add_argument("-l", "--label", help="only runs whose label contains this text")
    p.add_argument("-t", "--tag", action="append", help="only runs with this tag (repeatable)")
    p.add_argument("-w", "--where", help='expression, e.g. "flags.lr < 0.1 and scalars.loss < 0.5"')
    p.add_argument("--deleted", action="store_true", help="list runs in the trash")


def _filter_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "op": args.op,
        "status": args.status,
        "label": args.label,
        "tag": args.tag,
        "deleted": args.deleted,
    }


@command("runs")
def _runs(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.format import run_lines

    limit = None if args.all else args.limit
    if args.json or args.where:
        df = store.runs_frame(
            **_filter_kwargs(args), where=args.where, limit=None if args.where else limit
        )
        if limit:
            df = df.head(limit)
        if args.json:
            print(json.dumps(_records(df), indent=1, default=str))
            return 0
        rows = [
            {
                **r,
                "started": r["started"].timestamp()
                if r["started"] is not None and r["started"] == r["started"]
                else None,
            }
            for r in df[["id", "op", "status", "started", "label", "tags"]].to_dict("records")
        ]
    else:
        rows = store.list_rows(**_filter_kwargs(args), limit=limit)
    for line in run_lines(rows):
        print(line)
    return 0


def _records(df: Any) -> list[dict[str, Any]]:
    import math

    out = []
    for rec in df.to_dict("records"):
        item: dict[str, Any] = {k: None for k in rec if not k.startswith(("flags.", "scalars."))}
        item.update(flags={}, scalars={})
        for k, v in rec.items():
            if isinstance(v, float) and math.isnan(v):
                v = None
            elif hasattr(v, "isoformat"):
                v = None if v != v else v.isoformat()
            if k.startswith("flags."):
                if v is not None:
                    item["flags"][k[6:]] = v
            elif k.startswith("scalars."):
                if v is not None:
                    item["scalars"][k[8:]] = v
            else:
                item[k] = v
        out.append(item)
    return out


@command("compare")
def _compare(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.compare.aggregates import compare_table, parse_agg

    df = compare_table(store, args.runs, args.where, parse_agg(args.agg), **_filter_kwargs(args))
    if args.json:
        print(json.dumps(_records(df), indent=1, default=str))
    elif args.csv:
        text = df.to_csv(index=False)
        if args.csv == "-":
            sys.stdout.write(text)
        else:
            with open(args.csv, "w", encoding="utf-8") as f:
                f.write(text)
    else:
        import pandas as pd

        shown = df.assign(
            id=df["id"].str[:8], started=df["started"].dt.floor("s").dt.tz_localize(None)
        )
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            print(shown.to_string(index=False) if len(shown) else "no runs")
    return 0


@command("cat")
def _cat(args: argparse.Namespace, store: Any) -> int:
    run_id = store.resolve_id(args.run, deleted=None)
    sys.stdout.write(store.read_output(run_id, args.offset))
    return 0


@command("label")
def _label(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    for run_id in select_ids(store, args.runs):
        store.set_label(run_id, "" if args.clear else args.set)
        print(f"{'cleared label of' if args.clear else 'labelled'} {run_id[:8]}")
    return 0


@command("tag")
def _tag(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    if not (args.add or args.delete or args.clear):
        raise GuildError("tag: give --add TAG, --delete TAG or --clear")
    for run_id in select_ids(store, args.runs):
        remove = store.load_run(run_id).tags if args.clear else args.delete
        run = store.set_tags(run_id, add=args.add, remove=[t for t in remove if t not in args.add])
        print(f"{run_id[:8]} tags: {' '.join(run.tags) or '(none)'}")
    return 0


@command("delete")
def _delete(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    ids = select_ids(store, args.runs)
    for run_id in ids:
        store.delete(run_id)
    print(f"moved {len(ids)} run(s) to the trash (restore with 'guild-jupyter restore')")
    return 0


@command("restore")
def _restore(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    ids = select_ids(store, args.runs, deleted=True)
    for run_id in ids:
        store.restore(run_id)
    print(f"restored {len(ids)} run(s)")
    return 0


@command("purge")
def _purge(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.cli.refs import select_ids

    ids = select_ids(store, args.runs, deleted=True)
    if not args.yes:
        if not sys.stdin.isatty():
            raise GuildError("purge removes runs for good: confirm with --yes")
        answer = input(f"Permanently remove {len(ids)} run(s)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 0
    for run_id in ids:
        store.purge(run_id)
    print(f"purged {len(ids)} run(s)")
    return 0


@command("check")
def _check(args: argparse.Namespace, store: Any) -> int:
    report = store.check(repair=args.repair)
    for message in report["corrupt"]:
        print(f"corrupt: {message}")
    problems = sum(
        len(report[k]) for k in ("missing_from_index", "stale_in_index", "status_mismatch")
    )
    print(
        f"{report['runs']} run(s) on disk; {len(report['corrupt'])} corrupt; "
        f"{len(report['missing_from_index'])} missing from the index; {len(report['stale_in_index'])} stale in the index; "
        f"{len(report['status_mismatch'])} with a different status"
    )
    if report["repaired"]:
        print("index rebuilt from the run directories")
        return 0
    return 1 if problems or report["corrupt"] else 0


@command("import-guild")
def _import_guild(args: argparse.Namespace, store: Any) -> int:
    from guild_jupyter.guild_compat.importer import import_guild

    print(import_guild(store, args.guild_home).summary())
    return 0
