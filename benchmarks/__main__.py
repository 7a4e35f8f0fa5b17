"""`python -m benchmarks`: the speed table of benchmarks/bench.py (DATA), or one of the tables named by the flags below."""

import argparse
import sys

from benchmarks.accuracy import SETS, run_accuracy, run_heads
from benchmarks.bench import run_benchmark
from benchmarks.field import run_field
from benchmarks.fieldapp import run_fieldapp
from benchmarks.frozen import run_frozen
from benchmarks.health import run_health
from benchmarks.loop import run_loop
from benchmarks.promise import run_promise
from benchmarks.recipes import run_recipes
from benchmarks.retrain import run_add_species
from benchmarks.serve import run_serve
from benchmarks.sessions import run_sessions
from benchmarks.verdicts import run_verdicts
from fishcore.data.scan import scan
from fishcore.errors import FishcoreError

parser = argparse.ArgumentParser(
    prog="./run.sh bench",
    description="training and prediction speed against the usual baselines (DATA), or accuracy on the shared sets (--accuracy)",
)
parser.add_argument("data", nargs="?", help="dataset folder (e.g. ../shared/data/lsfd); with --accuracy, the folder of sets")
parser.add_argument(
    "--accuracy", action="store_true", help="the accuracy table over lsfd/, f4k/ and egu/ (default ../shared/data)"
)
parser.add_argument(
    "--recipes",
    action="store_true",
    help="training-recipe settings (class weights, label smoothing, ...) on F4K and EGU splits (DATA: ../shared/data)",
)
parser.add_argument(
    "--frozen",
    action="store_true",
    help="frozen features for instant mode: MobileNetV2, EfficientNet-Lite0, both, letterboxed (DATA: ../shared/data)",
)
parser.add_argument(
    "--add-species",
    action="store_true",
    help="time adding the F4K species to the LSFD photos and retraining (DATA: ../shared/data)",
)
parser.add_argument(
    "--verdicts",
    action="store_true",
    help="how often verdicts are honest: known species, everyday photos, unknown species (DATA: ../shared/data)",
)
parser.add_argument(
    "--sessions",
    action="store_true",
    help="prediction latency of 8 sessions at once, alone and while a job trains (DATA: ../shared/data)",
)
parser.add_argument(
    "--field",
    action="store_true",
    help="the field loop's learning curve: review queue against random order against all labels (DATA: ../shared/data)",
)
parser.add_argument(
    "--heads",
    action="store_true",
    help="the instant head before and after, beside scikit-learn's probe, on MobileNetV2 and EfficientNet-Lite2 "
    "features (also the last table of --accuracy; DATA: ../shared/data)",
)
parser.add_argument(
    "--health",
    action="store_true",
    help="dataset health on copies of F4K and EGU with 5% of labels swapped: how many swaps it finds (DATA: ../shared/data)",
)
parser.add_argument(
    "--promise",
    action="store_true",
    help="ways of choosing the confidence threshold and prediction sets, on seeded F4K and EGU splits (DATA: ../shared/data)",
)
parser.add_argument(
    "--serve",
    action="store_true",
    help="the field server under load: 16 devices syncing while 8 clients predict, over HTTP (DATA: ../shared/data)",
)
parser.add_argument(
    "--field-app",
    action="store_true",
    help="the field app's model in Chromium beside the station's: size, load time, per photo, int8 (DATA: ../shared/data)",
)
parser.add_argument(
    "--loop",
    action="store_true",
    help="the whole field loop over HTTP: a phone corrects species the model does not know, the station teaches with "
    "activation, the phone takes the new model; per round (DATA: ../shared/data)",
)
parser.add_argument("--budget", type=float, default=60.0, help="with --loop: seconds each teaching may train")
parser.add_argument("--loop-sets", default="f4k,egu", help="with --loop: the sets (default: f4k,egu)")
parser.add_argument("--bundled", action="store_true", help="with --verdicts: the bundled model instead of trained ones")
parser.add_argument("--work", default=None, help="with --promise: keep the trained models here and reuse them")
parser.add_argument("--variants", default=None, help="with --recipes: comma-separated variant names (default: all)")
parser.add_argument("--sets", default=None, help="with --recipes or --frozen: comma-separated sets (default: f4k,egu)")
parser.add_argument("--mode", default="auto", help="with --verdicts: the training mode of the models (default auto)")
parser.add_argument("--naive-cap", type=float, default=600, help="time cap in seconds for the naive baseline")
parser.add_argument("--photos", type=int, default=120, help="photos timed one by one for the latency rows")
args = parser.parse_args()
log = lambda m: print(m, file=sys.stderr)  # noqa: E731
try:
    if args.accuracy:
        print(run_accuracy(args.data or "../shared/data", log=log))
        sys.exit(0)
    if args.heads:
        print(run_heads(args.data or "../shared/data", log=log))
        sys.exit(0)
    if args.recipes:
        only = args.variants.split(",") if args.variants else None
        sets = args.sets.split(",") if args.sets else None
        print(run_recipes(args.data or "../shared/data", only=only, set_names=sets, log=log))
        sys.exit(0)
    if args.frozen:
        sets = tuple(x for x in SETS if x.name in args.sets.split(",")) if args.sets else None
        print(run_frozen(args.data or "../shared/data", sets=sets, log=log))
        sys.exit(0)
    if args.health:
        print(run_health(args.data or "../shared/data", log=log))
        sys.exit(0)
    if args.promise:
        sets = tuple(x for x in SETS if x.name in args.sets.split(",")) if args.sets else None
        print(run_promise(args.data or "../shared/data", sets=sets, work=args.work, log=log))
        sys.exit(0)
    if args.field:
        sets = tuple(x for x in SETS if x.name in args.sets.split(",")) if args.sets else None
        print(run_field(args.data or "../shared/data", sets=sets, log=log))
        sys.exit(0)
    if args.field_app:
        print(run_fieldapp(args.data or "../shared/data", log=log))
        sys.exit(0)
    if args.loop:
        print(run_loop(args.data or "../shared/data", budget=args.budget, sets=args.loop_sets.split(","), log=log))
        sys.exit(0)
    if args.serve:
        print(run_serve(args.data or "../shared/data", log=log))
        sys.exit(0)
    if args.sessions:
        print(run_sessions(args.data or "../shared/data", log=log))
        sys.exit(0)
    if args.verdicts:
        print(run_verdicts(args.data or "../shared/data", mode=args.mode, log=log, bundled=args.bundled))
        sys.exit(0)
    if args.add_species:
        print(run_add_species(args.data or "../shared/data", log=log))
        sys.exit(0)
    if not args.data:
        parser.error("DATA is needed (or --accuracy)")
    scan(args.data)  # a missing folder fails here, in one line
except (FishcoreError, FileNotFoundError) as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
print(run_benchmark(args.data, args.naive_cap, args.photos, log=log))
