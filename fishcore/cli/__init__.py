"""`python -m fishcore`: the command line, one module per command group, each adding its own sub-parsers.

data.py (scan, health, import, datasets, augment), train.py (train, verdicts, compare), predict.py (predict,
evaluate, explain), models.py (export, import-model), catch.py (log, teach), serve.py (the field server);
flags.py makes the flags that come from the configs, common.py what they share. Every command is a thin call
into the library.
"""

from __future__ import annotations

import argparse
import sys

from fishcore.cli import catch, data, models, predict, serve, train
from fishcore.cli.common import Parser
from fishcore.cli.flags import flag_of
from fishcore.errors import ConfigError, FishcoreError

GROUPS = (data, train, predict, models, catch, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m fishcore", description="Marine fish species classification by transfer learning.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"error: {flag_of(exc.field)} {exc.value!r}: {exc.reason}", file=sys.stderr)
        return 2
    except FishcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permission denied, ...: the user can act on these
        print(f"error: {exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}", file=sys.stderr)
        return 2
