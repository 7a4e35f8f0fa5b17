"""Which version the phones get: the models commands on a real workspace, the rule that lets a version taught from
the field replace the active one (and refuses a worse one), and the Phones page that connects a phone."""

from __future__ import annotations

import json
import shutil
import uuid

import cv2
import numpy as np
import pytest
import torch

from fishcore.store.catchlog import Answer, CatchLog, dispose_engines
from fishcore.store.model_files import (
    HELDOUT_FILE,
    REFERENCE_FILE,
    bundled_model_dir,
    load_model,
    read_card,
    save_model,
)

from conftest import LSFD, REPO, require_shared


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    for sub in ("models", "runs", "datasets", "catchlog"):
        monkeypatch.setenv(f"FISHCORE_{sub.upper()}_DIR", str(tmp_path / sub))
    monkeypatch.delenv("FISHCORE_PUBLIC_URL", raising=False)
    (tmp_path / "models").mkdir()
    yield tmp_path
    dispose_engines()


def _fewer_test_photos(card) -> None:
    """A card whose test split is 12 photos of each of the first three species (the comparison predicts them with
    both versions; all 269 would take a minute on this machine)."""
    keep = [r for c in card.classes[:3] for r in [x for x in card.split["test"] if x.split("/")[0] == c][:12]]
    card.split = {**card.split, "test": keep}


def _same_copy(folder):
    """The bundled model as a new version: the same weights, a smaller test split."""
    shutil.copytree(bundled_model_dir(), folder)
    card = read_card(folder)
    _fewer_test_photos(card)
    (folder / "card.json").write_text(json.dumps(card.to_dict(), indent=1), encoding="utf-8")
    return folder


def _worse_copy(folder):
    """The bundled model with two species' classifier rows swapped: it names those two the wrong way round."""
    model, card = load_model(bundled_model_dir())
    _fewer_test_photos(card)
    with torch.no_grad():
        model.head.fc.weight[[0, 1]] = model.head.fc.weight[[1, 0]].clone()
        model.head.fc.bias[[0, 1]] = model.head.fc.bias[[1, 0]].clone()
    extra = {name: bundled_model_dir() / name for name in (REFERENCE_FILE, HELDOUT_FILE)}
    return save_model(model, card, folder, extra)


def _cli(capsys, *args) -> tuple[int, str, str]:
    from fishcore.cli import main

    code = main([*args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_models_commands_list_activate_roll_back_and_delete(workspace, capsys):
    from fishcore.store.workspace import Workspace

    shutil.copytree(bundled_model_dir(), workspace / "models" / "fish")
    shutil.copytree(bundled_model_dir(), workspace / "models" / "fish-v2")
    ws = Workspace.from_env()
    code, out, _ = _cli(capsys, "models", "list", "--json", "--no-field")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {r["name"] for r in rows} == {"lsfd_mobilenet_v2", "fish", "fish-v2"}
    assert [r["name"] for r in rows if r["active"]] == ["lsfd_mobilenet_v2"]  # the bundled one, by default
    assert [r["version"] for r in rows if r["family"] == "fish"] == [2, 1]  # newest first
    assert all(r["test_accuracy"] == 1.0 and len(r["species"]) == 9 for r in rows)

    assert _cli(capsys, "models", "activate", "fish@2")[0] == 0 and ws.active_model().name == "fish-v2"
    assert _cli(capsys, "models", "activate", "fish@1")[0] == 0 and ws.active_model().name == "fish"
    code, out, _ = _cli(capsys, "models", "rollback")
    assert code == 0 and ws.active_model().name == "fish-v2" and "was fish" in out
    assert _cli(capsys, "models", "rollback")[0] == 0 and ws.active_model().name == "lsfd_mobilenet_v2"  # twice: twice back
    code, _, err = _cli(capsys, "models", "rollback")
    assert code == 2 and "no earlier active model" in err

    code, _, err = _cli(capsys, "models", "activate", "fish@7")
    assert code == 2 and "has no version 7" in err and ws.active_model().name == "lsfd_mobilenet_v2"
    assert _cli(capsys, "models", "activate", "nothing")[0] == 2
    # The page's safeguards: nothing without --yes, never the bundled model; other versions stay.
    assert _cli(capsys, "models", "activate", "fish")[0] == 0 and ws.active_model().name == "fish-v2"  # its newest
    code, _, err = _cli(capsys, "models", "delete", "fish-v2")
    assert code == 2 and "--yes" in err and "active model" in err and (workspace / "models" / "fish-v2").is_dir()
    code, _, err = _cli(capsys, "models", "delete", "default", "--yes")
    assert code == 2 and "bundled" in err
    code, out, _ = _cli(capsys, "models", "delete", "fish@2", "--yes")
    assert code == 0 and not (workspace / "models" / "fish-v2").exists() and (workspace / "models" / "fish").is_dir()
    assert ws.active_model().name == "lsfd_mobilenet_v2" and "the active model is now lsfd_mobilenet_v2" in out


@pytest.mark.slow
def test_a_worse_version_is_refused_and_a_version_as_good_goes_to_the_phones(workspace):
    from fishcore.store.workspace import Workspace
    from fishcore.training.versions import compare_versions, conclude_teaching

    root = require_shared(LSFD)
    bundled = bundled_model_dir()
    worse = _worse_copy(workspace / "models" / "lsfd-field")
    same = _same_copy(workspace / "models" / "lsfd-field-v2")
    ws = Workspace.from_env()
    card = read_card(bundled)
    swapped = card.classes[:2]

    # Held-out photos only (an empty catch log): the bundled model's test photos, which it never trained on.
    d = compare_versions(worse, bundled, CatchLog())
    assert (d.activate, d.code) == (False, "worse_heldout")
    assert d.heldout_new.total == d.heldout_old.total == 36 and d.old_seen_checked
    assert d.heldout_old.right == d.heldout_old.total and d.heldout_new.right <= d.heldout_old.right - 20
    assert "right on fewer" in d.sentence()
    ok = compare_versions(same, bundled, CatchLog())
    assert (ok.activate, ok.code) == (True, "better") and ok.heldout_new.right == ok.heldout_old.right

    # The user's kept-back photos come first: confirmed photos of the two swapped species.
    log = CatchLog()
    for rel in [r for r in card.split["test"] if r.split("/")[0] in swapped][12:32]:  # not in the copies' test split
        label = rel.split("/")[0]
        log.set_word(log.record((root / rel).read_bytes(), Answer(label, 0.9, "confident", "known", [(label, 0.9)]),
                                "lsfd_mobilenet_v2", "c").entry_id, "right")  # fmt: skip
    d = compare_versions(worse, bundled, log)
    assert d.code == "worse_kept_back" and d.kept_back_new.total > 0 and d.kept_back_new.right == 0
    assert d.kept_back_old.right == d.kept_back_old.total

    # Teaching with activation: the worse version is saved but the phones keep the bundled model; the good one goes.
    teach = {"activate": True, "compare_with": str(bundled), "photos": 24, "held_back": 6}
    out = conclude_teaching(teach, worse)
    assert not out["activated"] and out["code"] == "worse_kept_back" and ws.active_model() == bundled
    out = conclude_teaching({**teach, "typed": {"Kerapu": "Kerapu"}}, same)
    assert out["activated"] and out["code"] == "better" and ws.active_model().name == "lsfd-field-v2"
    assert ws.previous_model() == bundled  # and a rollback would go back
    assert read_card(same).species == card.species  # the active version's cards carried over


def _qr_text(png: bytes) -> str:
    """The QR code's text, as a phone's camera would read it. OpenCV's classic detector misses about 1 code in 40 of
    these (5 of 200 random links; the ArUco-based one, 0 of 200): the ArUco one first, the classic one after."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    for detector in (cv2.QRCodeDetectorAruco(), cv2.QRCodeDetector()):
        text, _, _ = detector.detectAndDecode(image)
        if text:
            return text
    return ""


@pytest.mark.parametrize("lang", ["en", "id"])
def test_the_phones_page_connects_a_phone_with_a_qr_code_and_revokes_it(workspace, lang):
    from streamlit.testing.v1 import AppTest

    from fishcore.store.catchlog.devices import Devices
    from fishcore.store.station import public_address, qr_png

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.query_params["lang"] = lang
    at.switch_page("pages/phones_page.py").run()
    assert not at.exception and at.title[0].value == ("Phones" if lang == "en" else "Ponsel")
    address = at.text_input(key="phones_address")
    address.input("http://localhost:8502").run()  # the truth in this test: phone and station on one machine
    at.button(key="phones_address_save").click().run()
    assert not at.exception and public_address() == "http://localhost:8502"
    at.text_input[1].input("Budi's phone")  # inside a form: sent with its submit button
    next(b for b in at.button if b.label in ("Add", "Tambah")).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = at.session_state["phones_new"]
    link = _qr_text(shown["png"])
    for _ in range(50):  # and every other link the page could show decodes too
        other = f"http://localhost:8502/#token={uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"
        assert _qr_text(qr_png(other)) == other
    assert link == shown["link"] and link.startswith("http://localhost:8502/#token=")
    token = link.split("#token=")[1]
    devices = Devices(CatchLog())
    assert devices.verify(token).name == "Budi's phone"
    assert any(token in c.value for c in at.code)  # and as text
    # Shown once: after "Done" the page has no copy of it, and the station keeps only the hash.
    at.button(key="phones_done").click().run()
    assert "phones_new" not in at.session_state and not any(token in c.value for c in at.code)
    assert any("Budi's phone" in m.value for m in at.markdown)
    assert not [m for m in at.caption if "Token" in m.value or token in m.value]
    device = devices.list()[0]
    at.button(key=f"revoke_{device.id}").click().run()
    assert not at.exception and devices.verify(token) is None  # the server asks exactly this: the phone is out
