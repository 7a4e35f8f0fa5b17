"""The catch log: `log list|export|confirm`, and `teach` (its confirmed photos to a new model version)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fishcore.cli.common import progress_bar
from fishcore.config import check_int, check_number
from fishcore.errors import ConfigError


def add_commands(sub) -> None:
    p = sub.add_parser("log", help="the catch log: list, export or confirm recorded answers")
    log_sub = p.add_subparsers(dest="log_command", required=True)
    for name, words in (("list", "entries, newest first"), ("export", "entries as CSV (to --out or standard output)")):
        q = log_sub.add_parser(name, help=words)
        q.add_argument("--since", default=None, help="first day, YYYY-MM-DD (UTC)")
        q.add_argument("--until", default=None, help="last day, YYYY-MM-DD (UTC), included")
        q.add_argument("--species", default=None, help="the answer's species or the one a user said it is")
        q.add_argument("--verdict", choices=("confident", "uncertain", "not_a_fish"), default=None)
        q.add_argument("--confirmed", action=argparse.BooleanOptionalAction, default=None,
                       help="only entries with (--confirmed) or without (--no-confirmed) a user's word")  # fmt: skip
        q.add_argument("--place", default=None)
        q.add_argument("--model", default=None, help="model name")
        q.add_argument("--limit", type=int, default=None)
        if name == "list":
            q.add_argument("--json", action="store_true", help="one JSON object per entry, one per line")
        else:
            q.add_argument("--out", default=None, help="CSV file to write (default: standard output)")
        q.set_defaults(run=cmd_log)
    q = log_sub.add_parser("confirm", help="give your word on an entry: right, wrong (with --species) or not_fish")
    q.add_argument("entry", help="the entry's id (as `log list` shows it; a unique beginning is enough)")
    q.add_argument("word", choices=("right", "wrong", "not_fish"))
    q.add_argument("--species", default=None, help="with wrong: the species it is (a known one or a new name)")
    q.add_argument("--by", default="command line", help="who says so")
    q.set_defaults(run=cmd_log)

    p = sub.add_parser(
        "teach",
        help="teach the catch log's confirmed photos to a new version of a model: they go into a My photos dataset "
        "(every fifth held back as the field test set) and a training job starts (as the Catch log page's button)",
    )
    p.add_argument("--dataset", default=None,
                   help="the My photos dataset to add them to, also the new model's name (default: the active model's "
                   "name + '-field')")  # fmt: skip
    p.add_argument("--start-from", default=None,
                   help="when the dataset is new, first fill it with this folder's photos (default: the folder the active "
                   "model was trained on, when it is here; 'none' starts from the field photos alone)")  # fmt: skip
    p.add_argument("--budget", type=float, default=180.0, help="seconds auto mode may spend (default: 180)")
    p.add_argument("--wait", action="store_true", help="wait for the training job and say how it ended")
    p.add_argument("--activate", action="store_true",
                   help="when the new version is at least as good as the active one on the photos both can be judged on, "
                   "and its promise is as well backed, make it active: phones take it at their next sync")  # fmt: skip
    p.set_defaults(run=cmd_teach)


def _log_filter(args: argparse.Namespace):
    from datetime import date

    from fishcore.store.catchlog import LogFilter

    def day(flag: str, value: str | None):
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ConfigError(flag, value, "must be a date as YYYY-MM-DD") from None

    if args.limit is not None:
        check_int("limit", args.limit, 1)
    return LogFilter(day("since", args.since), day("until", args.until), args.species, args.verdict, args.confirmed,
                     args.place, args.model, args.limit)  # fmt: skip


def cmd_log(args: argparse.Namespace) -> int:
    from fishcore.store.catchlog import CatchLog, CatchLogError, to_csv

    log = CatchLog()
    log.flush_spool()
    if args.log_command == "confirm":
        matches = [e for e in log.entries() if e.id.startswith(args.entry)] if args.entry else []
        if len(matches) != 1:
            raise CatchLogError(f"{'no' if not matches else 'more than one'} catch log entry starts with {args.entry!r}")
        log.set_word(matches[0].id, args.word, args.species, who=args.by)
        print(f"{matches[0].id}: {args.word}{' (' + args.species + ')' if args.word == 'wrong' else ''}")
        return 0
    items = log.entries(_log_filter(args))
    if args.log_command == "export":
        text = to_csv(items)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
            print(f"{len(items)} entries written to {args.out}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    for e in items:
        if args.json:
            row = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in e.__dict__.items()}  # every date as text
            print(json.dumps(row, ensure_ascii=False))
            continue
        word = {None: "no word yet", "right": "right", "not_fish": "not a fish"}.get(e.word, f"wrong: {e.true_species}")
        unsure = e.verdict != "confident" and len(e.candidates) > 1 and e.set_coverage is not None
        one_of = f" (one of: {', '.join(s for s, _ in e.candidates)}, {e.set_coverage:.0%})" if unsure else ""
        print(f"{e.id[:8]}  {e.created_at:%Y-%m-%d %H:%M}  {e.label} {e.confidence:.0%} {e.verdict}{one_of}  x{e.count}  "
              f"{e.place or '-'}  {e.model_name}  [{word}]")  # fmt: skip
    if not args.json:
        print(f"{len(items)} entries ({log.describe()}{f'; {log.pending()} waiting in the spool' if log.pending() else ''})")
    return 0


def cmd_teach(args: argparse.Namespace) -> int:
    from fishcore.store.catchlog import CatchLog
    from fishcore.store.model_files import family_of, read_card
    from fishcore.store.my_photos import DatasetArea
    from fishcore.store.workspace import Workspace
    from fishcore.training.teaching import teach_and_train

    check_number("budget", args.budget, 10, 86_400)
    ws = Workspace.from_env()
    active = ws.active_model()
    dataset = args.dataset or (f"{family_of(active.name)[0]}-field" if active else "field-photos")
    area = DatasetArea(ws.datasets, cache_dir=ws.scans)
    start_from = None if args.start_from == "none" else Path(args.start_from).expanduser() if args.start_from else None
    if args.start_from is None and active is not None and dataset not in area.names():
        root = read_card(active).data_root
        start_from = root if root is not None and root.is_dir() else None
    if start_from is not None and dataset not in area.names():
        print(f"filling the new dataset {dataset} with the photos of {start_from} first", file=sys.stderr)
    lesson, job = teach_and_train(CatchLog(), area, ws.jobs, ws.models, dataset, start_from, args.budget,
                                  progress_bar("copying photos"), activate=args.activate, active=active)  # fmt: skip
    print(f"{len(lesson.plan.add)} field photos added to {lesson.dataset_dir} ({len(lesson.taught)} entries taught, "
          f"{len(lesson.held_back)} kept back as the field test set)")  # fmt: skip
    print(f"training job {job.id} started: a new version of {dataset} in {ws.models}")
    if not args.wait:
        then = "it becomes active if it is at least as good" if args.activate else "make it active with `models activate`"
        print(f"the Train page follows it ({then}); or run this again with --wait")
        return 0
    status = job.wait()
    print(f"training job {job.id}: {status.get('state')}" + (f", saved {status['model_dir']}" if status.get("model_dir") else ""))
    if status.get("decision"):
        for line in teaching_report(status["decision"]):
            print(line)
    return 0 if status.get("state") == "finished" else 1


def teaching_report(d: dict) -> list[str]:
    """What teaching learned and decided, in a few lines (the Catch log page says the same in the user's language)."""
    out = []
    if d.get("species"):
        new = d.get("new_species") or []
        out.append(f"learned from {d.get('taught', 0)} photos: {len(d['species'])} species"
                   + (f", new: {', '.join(new)}" if new else ", none new"))  # fmt: skip
    fn, fo = d.get("kept_back_new") or {}, d.get("kept_back_old") or {}
    if fn.get("total"):
        out.append(f"on your kept-back photos: {fo.get('right', 0)} of {fn['total']} right before, {fn['right']} now")
    hn, ho = d.get("heldout_new") or {}, d.get("heldout_old") or {}
    if hn.get("total"):
        out.append(f"on held-out photos both can be judged on: {ho.get('right', 0)} of {hn['total']} right before, "
                   f"{hn['right']} now")  # fmt: skip
    out.append(d.get("sentence", ""))
    if d.get("activated"):
        out.append(f"{Path(d['new']).name} is now the active model: phones take it at their next sync")
    elif d.get("activate") and not d.get("asked_to_activate"):
        out.append(f"not made active (no --activate): `fishcore models activate {Path(d['new']).name}` sends it to the phones")
    else:
        out.append("the phones keep the model they have")
    return out
