"""`python -m benchmarks DATA`: the speed and accuracy table of benchmarks/bench.py."""

import argparse
import sys

from benchmarks.bench import run_benchmark
from fishcore.data.dataset import scan
from fishcore.errors import FishcoreError

parser = argparse.ArgumentParser(prog="./run.sh bench", description="training and prediction speed against the usual baselines")
parser.add_argument("data", help="dataset folder (e.g. ../shared/data/lsfd)")
parser.add_argument("--naive-cap", type=float, default=600, help="time cap in seconds for the naive baseline")
parser.add_argument("--photos", type=int, default=120, help="photos timed one by one for the latency rows")
args = parser.parse_args()
try:
    scan(args.data)  # a missing folder fails here, in one line
except FishcoreError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
print(run_benchmark(args.data, args.naive_cap, args.photos, log=lambda m: print(m, file=sys.stderr)))
