#!/usr/bin/env bash
# Re-creates the bundled default model from ../shared/data/lsfd (run from the repository root).
set -euo pipefail
cd "$(dirname "$0")/.."
# Training never replaces a model (a taken name gets a new version), so train into a fresh folder and
# swap it in here, on purpose.
fresh="$(mktemp -d models/.default-XXXX)/lsfd_mobilenet_v2"
./run.sh fishcore train ../shared/data/lsfd --out "$fresh" --seed 0 --mode full --freeze-until 14 \
  --citation "O. Ulucan, D. Karakaya, M. Turkan, 'A Large-Scale Dataset for Fish Segmentation and Classification', ASYU 2020 (subset: 9 classes x 200 images, resized to 256x256)" \
  --note "Split: stratified 70/15/15, seed 0, near-duplicate photos grouped by a flip/rotation-invariant perceptual hash and kept on one side." \
  --note "The LSFD was enlarged by flipping and rotating its photos; the hash catches many but not all such copies (arbitrary-angle rotations), so test accuracy on it is likely optimistic." \
  --note "Photos are supermarket fish on a blue background; expect lower accuracy on other settings and species."
rm -rf models/lsfd_mobilenet_v2
mv "$fresh" models/lsfd_mobilenet_v2
rmdir "$(dirname "$fresh")"
