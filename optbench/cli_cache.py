"""`optbench cache`: the size of the featurization cache (optbench.featcache), and clearing it
(`cache_usage`, `clear_cache`).

A command module in ASE's manner (`add_arguments`, `run`), kept out of cli.py, which holds the pipeline's
commands."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from optbench.errors import InputError
from optbench.featcache import KINDS


def add_arguments(sub) -> None:
    p = sub.add_parser("cache", help="size of the featurization cache, and clearing it")
    csub = p.add_subparsers(dest="cache_command")
    i = csub.add_parser("info", help="entries and bytes per kind (what a bare `optbench cache` prints)")
    c = csub.add_parser("clear", help="remove entries (graphs, predictions, parsed frames); numbers never change")
    c.add_argument("--kind", choices=KINDS, action="append", help="only these (repeatable)")
    c.add_argument("--older-than", type=float, metavar="DAYS", help="only entries last written more than DAYS ago")
    for q in (i, c):
        q.add_argument("--dir", help="cache folder (default: $OPTBENCH_CACHE, else ~/.cache/optbench)")
    p.set_defaults(func=run, cache_command=None, dir=None, threads=None)


def run(args) -> int:
    from optbench.featcache import cache_root

    root = Path(args.dir).expanduser() if args.dir else cache_root()
    if root is None:
        raise InputError("the cache is turned off (OPTBENCH_CACHE=off); give --dir", field="dir")
    if args.cache_command == "clear":
        if args.older_than is not None and args.older_than < 0:
            raise InputError("must be >= 0", field="older_than")
        n, size = clear_cache(root, args.kind or KINDS, args.older_than)
        print(f"removed {n} entries, {size / 1e6:.1f} MB, from {root}")
        return 0
    print(f"cache: {root}")
    for kind, u in cache_usage(root).items():
        ages = "" if not u["entries"] else f", written {u['newest_days']:.1f}-{u['oldest_days']:.1f} days ago"
        print(f"  {kind:12s} {u['entries']:6d} entries {u['bytes'] / 1e6:9.1f} MB{ages}")
    return 0


def _entries(root: Path, kinds: Sequence[str]):
    for kind in kinds:
        folder = root / kind
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file():
                    yield kind, path


def cache_usage(root: Path) -> dict[str, dict]:
    """Per kind: entries, bytes and the age in days of the oldest and newest entry (None when empty)."""
    import time

    now = time.time()
    usage = {kind: {"entries": 0, "bytes": 0, "oldest_days": None, "newest_days": None} for kind in KINDS}
    for kind, path in _entries(root, KINDS):
        st, u = path.stat(), usage[kind]
        age = (now - st.st_mtime) / 86400.0
        u["entries"] += 1
        u["bytes"] += st.st_size
        u["oldest_days"] = age if u["oldest_days"] is None else max(u["oldest_days"], age)
        u["newest_days"] = age if u["newest_days"] is None else min(u["newest_days"], age)
    return usage


def clear_cache(root: Path, kinds: Sequence[str] = KINDS, older_than_days: float | None = None) -> tuple[int, int]:
    """Remove the entries of `kinds` (those last written more than `older_than_days` ago, when given);
    returns (entries, bytes) removed. A run reading an entry at the same time keeps its open file, and
    one that finds it gone featurizes again: clearing never changes a number."""
    import time

    limit = None if older_than_days is None else time.time() - older_than_days * 86400.0
    removed = freed = 0
    for _, path in list(_entries(root, kinds)):
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            if limit is None or st.st_mtime < limit:
                path.unlink()
                removed, freed = removed + 1, freed + st.st_size
    return removed, freed
