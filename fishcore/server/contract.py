"""The phone's side of the contract between the station and the field app, written by the station's own code.

    python -m fishcore.server.contract [OUT]      (default: fieldapp/contract/)

writes five files the field app's JavaScript tests read (fieldapp/tests/core.test.mjs), so that a rule changed on
the station either changes the phone's or fails a quick test:

- ``schema.json``: the JSON Schema of what crosses the wire (a sync's entries, answers and words; the model
  description; the station's corrections), from the server's own request and response models;
- ``package.json``: the model package's format and the fields of its model.json the phone reads (the phone refuses
  a package of another format: fieldapp/model.js ``checkPackage``);
- ``words.json``: the verdict headlines in English and Bahasa Indonesia, as the station says them;
- ``cases.json``: verdicts, prediction sets, several shots of one fish together and what an entry counts as, each
  computed by the function the station uses (openset.judge, SetRule.members, predict.combine_shots,
  summaries.counted_as, checks.check_species: a species name the phone lets a fisherman type must be one the
  station takes, or every later sync would be refused) on inputs chosen to sit on every edge of the rules;
- ``resize-cases.json``: the station's own resize (augment.transform_stages' first stage: torchvision's Resize,
  antialiased, on 8-bit pixels) on small random images.

tests/test_fieldapp.py writes them again into a temporary folder and fails on any difference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

CONTRACT = Path(__file__).resolve().parents[2] / "fieldapp" / "contract"
FILES = ("schema.json", "package.json", "words.json", "cases.json", "resize-cases.json")

META = {
    "classes": ["Sea Bass", "Shrimp", "Trout", "Red Mullet"],
    "threshold": 0.6,
    "distance_threshold": 0.3,
    "fish_threshold": 0.2,
    "prediction_sets": {"coverage": 0.9, "quantile": 0.75},
}


def schema() -> dict:
    """The wire models' JSON Schema, keyed by model name."""
    from fishcore.server import schemas

    models = (schemas.SyncIn, schemas.EntryIn, schemas.AnswerIn, schemas.WordIn, schemas.ModelOut, schemas.ChangesOut,
              schemas.SyncOut, schemas.PhotosIn, schemas.PhotosOut)  # fmt: skip
    return {m.__name__: m.model_json_schema() for m in models}


def package() -> dict:
    """The model package's format name and the fields the phone reads from its model.json."""
    from fishcore.inference.package import OUTPUTS, PACKAGE_FORMAT

    return {"format": PACKAGE_FORMAT, "outputs": list(OUTPUTS),
            "fields": ["format", "folder", "checksum", "classes", "species", "input", "threshold", "distance_threshold",
                       "fish_threshold", "prediction_sets", "parts"]}  # fmt: skip


def words() -> dict:
    """The verdict headlines in each language the station speaks."""
    from fishcore.inference.openset import VERDICT_WORDS

    catalogue = json.loads((Path(__file__).resolve().parents[2] / "assets" / "locales" / "id.json").read_text("utf-8"))
    return {"en": dict(VERDICT_WORDS), "id": {v: catalogue[w] for v, w in VERDICT_WORDS.items()}}


def cases() -> dict:
    """Inputs and the station's answers, for the phone's tests."""
    from fishcore.inference.calibration import SetRule
    from fishcore.inference.openset import OpenSet, judge
    from fishcore.inference.predict import combine_shots
    from fishcore.store.catchlog.checks import CatchLogError, check_species
    from fishcore.store.catchlog.records import Entry
    from fishcore.store.catchlog.summaries import NOT_SURE, counted_as

    openset = OpenSet(np.zeros((0, 1), np.float16), META["distance_threshold"], META["fish_threshold"])
    verdicts = []
    for confidence in (0.2, 0.6 - 1e-9, 0.6, 0.95):
        for distance in (None, 0.1, 0.3, 0.3 + 1e-9, 0.9):
            for fish in (None, 0.05, 0.2, 0.9):
                for profile in (openset, None):
                    verdict, reason = judge(confidence, distance, fish, META["threshold"], profile)
                    verdicts.append({"confidence": confidence, "distance": distance, "fish": fish,
                                     "profile": profile is not None, "verdict": verdict, "reason": reason})  # fmt: skip
    rule = SetRule(META["prediction_sets"]["coverage"], META["prediction_sets"]["quantile"], photos=0)
    sets = []
    for probs in ([0.3, 0.45, 0.2, 0.05], [0.1, 0.85, 0.03, 0.02], [0.25, 0.25, 0.25, 0.25], [0.26, 0.24, 0.25, 0.25],
                  [0.0, 0.0, 1.0, 0.0], [0.7, 0.1, 0.1, 0.1]):  # fmt: skip
        sets.append({"probs": probs, "set": [int(i) for i in rule.members(np.asarray(probs, dtype=np.float64))]})
    shots = []
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 5):
        rows = rng.dirichlet(np.ones(4), size=n)
        rows[0, 2] = 0.0  # a probability of 0 is clipped, not log(0)
        rows = np.round(rows / rows.sum(axis=1, keepdims=True), 9)
        # Rounded to 12 places: the last bits of log and exp differ between processors' vector units.
        shots.append({"probs": rows.tolist(), "combined": np.round(combine_shots(rows), 12).tolist()})
    counted = []
    for word, species, verdict in (
        (None, None, "confident"), (None, None, "uncertain"), (None, None, "not_a_fish"), ("right", None, "uncertain"),
        ("wrong", "Kakap merah", "confident"), ("not_fish", None, "confident"), ("right", None, "not_a_fish"),
        ("wrong", "Trout", "not_a_fish"),
    ):  # fmt: skip
        e = Entry(id="x", created_at=None, place="", session="", model_name="m", model_checksum="c", photo_sha256="p",
                  top=[("Trout", 0.9)], label="Trout", confidence=0.9, verdict=verdict, reason="", count=1,
                  weight_kg=None, word=word, true_species=species)  # fmt: skip
        got = counted_as(e)
        counted.append({"word": word, "species": species, "verdict": verdict, "label": "Trout",
                        "counted_as": None if got is None else "" if got == NOT_SURE else got})  # fmt: skip
    names = []
    for text in ("Kakap merah", "  Ikan selar  ", "", "   ", ".hidden", "a/b", "a\\b", "Tro\u202eut", "Sea\u200bBass",
                 "Line\nbreak", "Tab\there", "\u00e9t\u00e9", "Ikan \U0001f41f", "x" * 100, "x" * 101,
                 "e\u0301", "Bom\ufeff", "Muara\u2028Angke"):  # fmt: skip
        try:
            kept = check_species(text)
        except CatchLogError:
            kept = None
        names.append({"text": text, "species": kept})
    return {"meta": META, "verdicts": verdicts, "sets": sets, "shots": shots, "counted_as": counted, "names": names}


def resize_cases() -> list[dict]:
    """The station's resize (antialiased torchvision Resize on uint8) on small random images, up and down."""
    import torch
    from torchvision.transforms import v2

    rng = np.random.default_rng(1)
    out = []
    for w, h, ow, oh in ((4, 1, 2, 1), (9, 7, 4, 3), (13, 5, 20, 8), (31, 23, 7, 11), (24, 19, 56, 56)):
        src = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        resized = v2.Resize((oh, ow), antialias=True)(torch.from_numpy(src).permute(2, 0, 1).contiguous())
        out.append({"w": w, "h": h, "ow": ow, "oh": oh, "src": src.reshape(-1).tolist(),
                    "want": resized.permute(1, 2, 0).reshape(-1).tolist()})  # fmt: skip
    return out


def write(out: str | Path = CONTRACT) -> list[Path]:
    """Write the five files into ``out``; their paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    made = {"schema.json": schema(), "package.json": package(), "words.json": words(), "cases.json": cases(),
            "resize-cases.json": resize_cases()}  # fmt: skip
    paths = []
    for name in FILES:
        path = folder / name
        path.write_text(json.dumps(made[name], ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write(sys.argv[1] if len(sys.argv) > 1 else CONTRACT):
        print(f"wrote {written}")
