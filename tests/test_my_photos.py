"""The managed dataset area: imports from zips, folders and loose photos; hostile archives; manage and trash."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from fishcore.errors import ArchiveError, DatasetError
from fishcore.store.archive import ArchiveLimits, SafeZip
from fishcore.store.my_photos import DatasetArea, safe_name

from conftest import class_image, make_image_folder


def photo(label_index: int = 0, seed: int = 0, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    class_image(label_index, seed, size=48).save(buf, fmt)
    return buf.getvalue()


def make_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture
def area(tmp_path: Path) -> DatasetArea:
    a = DatasetArea(tmp_path / "workspace" / "datasets", cache_dir=tmp_path / "cache")
    a.create("fish")
    return a


def good_entries(n: int = 3) -> list[tuple[str, bytes]]:
    return [(f"kakap/k{i}.png", photo(0, i)) for i in range(n)] + [(f"tongkol/t{i}.png", photo(1, 100 + i)) for i in range(n)]


# --- hostile archives: each case is refused with a reason naming the entry, nothing lands outside ---


def _import_hostile(area: DatasetArea, tmp_path: Path, archive: bytes) -> tuple[list[tuple[str, str]], set[str]]:
    before = files_under(tmp_path)
    plan = area.plan_import("fish", archive)
    area.apply_import(plan)
    written = files_under(tmp_path) - before
    dataset = area.path("fish").relative_to(tmp_path).as_posix()
    outside = {w for w in written if not w.startswith(dataset + "/") and not w.startswith("cache")}
    assert outside == set(), f"written outside the dataset: {outside}"
    assert {p.label for p in plan.add} <= {"kakap", "tongkol"}
    return plan.skipped, written


@pytest.mark.parametrize(
    "name, reason",
    [
        ("../escape.png", "'..'"),
        ("kakap/../../escape.png", "'..'"),
        ("..\\..\\escape.png", "'..'"),
        ("/tmp/abs.png", "absolute path"),
        ("C:/Windows/abs.png", "absolute path"),
        ("kakap/inner.zip", "archive inside the archive"),
        ("kakap/inner.tar.gz", "archive inside the archive"),
        ("kakap/bad\x01name.png", "control characters"),
    ],
)
def test_hostile_entry_names_are_refused_by_name(area, tmp_path, name, reason):
    skipped, _ = _import_hostile(area, tmp_path, make_zip([*good_entries(), (name, photo(0, 50))]))
    assert any(reason in why and "refused" in why for _, why in skipped), skipped
    assert len(skipped) == 1
    assert not (tmp_path / "escape.png").exists() and not (tmp_path / "workspace" / "escape.png").exists()


def test_symlink_entries_are_refused(area, tmp_path):
    link = zipfile.ZipInfo("kakap/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    skipped, _ = _import_hostile(area, tmp_path, make_zip([*good_entries(), (link, b"/etc/passwd")]))
    assert skipped == [("kakap/link.png", "refused: a symbolic link (links are never followed)")]


def test_names_that_are_not_utf8_are_refused(area, tmp_path):
    data = make_zip([*good_entries(), ("kakap/XX.png", photo(0, 60))])
    data = data.replace(b"kakap/XX.png", b"kakap/\xff\xfe.png")  # both headers; the CRC covers data only
    skipped, _ = _import_hostile(area, tmp_path, data)
    assert len(skipped) == 1 and "not valid UTF-8" in skipped[0][1] and "\\xff" in skipped[0][0]


def test_names_colliding_after_normalisation_or_case_folding_are_refused(area, tmp_path):
    entries = [
        ("kakap/Fish.png", photo(0, 70)),
        ("kakap/fish.PNG", photo(0, 71)),
        ("kakap/caf\u00e9.png", photo(0, 72)),
        ("kakap/cafe\u0301.png", photo(0, 73)),
    ]
    skipped, _ = _import_hostile(area, tmp_path, make_zip(entries))
    assert sorted(n for n, _ in skipped) == ["kakap/cafe\u0301.png", "kakap/fish.PNG"]
    assert all("collides" in why for _, why in skipped)


def test_compression_ratio_beyond_any_photo_is_refused(area, tmp_path):
    skipped, _ = _import_hostile(area, tmp_path, make_zip([*good_entries(), ("kakap/bomb.png", b"\0" * (8 * 1024**2))]))
    assert len(skipped) == 1 and "zip bomb" in skipped[0][1]


def test_a_header_that_understates_the_size_is_refused(area, tmp_path):
    body = photo(0, 80)
    data = bytearray(make_zip([*good_entries(), ("kakap/liar.png", body)], compression=zipfile.ZIP_STORED))
    size = len(body).to_bytes(4, "little")
    smaller = (len(body) // 2).to_bytes(4, "little")
    count = bytes(data).count(size)
    assert count >= 2
    data = bytes(data).replace(size, smaller)  # the local and central headers both lie
    skipped, _ = _import_hostile(area, tmp_path, data)
    assert [n for n, _ in skipped] == ["kakap/liar.png"]


def test_too_many_files_or_too_many_bytes_refuse_the_whole_archive():
    many = make_zip([(f"kakap/{i}.png", b"x") for i in range(30)])
    with pytest.raises(ArchiveError, match="30 entries; the limit is 20"):
        SafeZip(many, ArchiveLimits(max_files=20))
    with pytest.raises(ArchiveError, match="unpacks to"):
        SafeZip(make_zip(good_entries()), ArchiveLimits(max_total_bytes=100))
    with pytest.raises(ArchiveError, match="not a readable zip"):
        SafeZip(b"PK\x03\x04 this is not really a zip")


def test_typed_class_names_cannot_escape_the_dataset(area, tmp_path):
    for bad in ("../evil", "a/b", "..", ".hidden", "", "x" * 200, "tab\there"):
        if bad:  # an empty class box means "no class chosen"
            with pytest.raises(DatasetError):
                area.plan_import("fish", [("a.png", photo())], class_name=bad)
        with pytest.raises(DatasetError):
            area.create(bad)
    assert safe_name("  Kakap merah ") == "Kakap merah"
    assert safe_name("cafe\u0301") == "caf\u00e9"
    assert not (tmp_path / "workspace" / "evil").exists()


# --- imports that work ---


def test_zip_of_a_dataset_folder_imports_its_classes_and_skips_what_is_not_a_photo(area):
    entries = [("mydata/" + n, d) for n, d in good_entries()] + [
        ("mydata/kakap/notes.txt", b"hello"),
        ("mydata/kakap/phone.heic", b"ftypheic"),
        ("mydata/kakap/broken.jpg", b"\xff\xd8\xff\xe0 not really"),
        ("__MACOSX/mydata/kakap/._k0.png", b"junk"),
    ]
    plan = area.plan_import("fish", make_zip(entries))
    assert plan.counts == {"kakap": 3, "tongkol": 3}
    assert plan.new_classes == ["kakap", "tongkol"]
    reasons = dict(plan.skipped)
    assert "not a photo" in reasons["mydata/kakap/notes.txt"]
    assert "HEIC" in reasons["mydata/kakap/phone.heic"] and "JPEG" in reasons["mydata/kakap/phone.heic"]
    assert "truncated" in reasons["mydata/kakap/broken.jpg"]
    assert area.classes("fish") == {}  # a plan writes nothing
    written = area.apply_import(plan)
    assert len(written) == 6 and area.classes("fish") == {"kakap": 3, "tongkol": 3}
    assert not any(p.name.endswith(".part") for p in area.path("fish").rglob("*"))


def test_a_second_import_of_the_same_photos_adds_nothing_and_names_the_duplicates(area):
    area.import_photos("fish", make_zip(good_entries()))
    again = area.plan_import("fish", make_zip(good_entries()))
    assert again.add == [] and len(again.duplicates) == 6
    assert ("kakap/k0.png", "kakap/k0.png") in again.duplicates


def test_a_flipped_copy_is_added_but_flagged_as_a_near_duplicate(area):
    from PIL import Image, ImageOps

    area.import_photos("fish", make_zip(good_entries()))
    flipped = io.BytesIO()
    ImageOps.mirror(Image.open(io.BytesIO(photo(0, 0)))).save(flipped, "PNG")
    plan = area.plan_import("fish", [("mirror.png", flipped.getvalue())], class_name="kakap")
    assert len(plan.add) == 1 and plan.near_duplicates == [("mirror.png", "kakap/k0.png")]


def test_loose_photos_need_a_class_and_same_names_get_a_suffix(area):
    plan = area.plan_import("fish", [("IMG_1.jpg", photo(0, 1, "JPEG"))])
    assert plan.add == [] and "choose a class" in plan.skipped[0][1]
    area.import_photos("fish", [("IMG_1.jpg", photo(0, 1, "JPEG"))], class_name="kembung")
    area.import_photos("fish", [("IMG_1.jpg", photo(0, 2, "JPEG"))], class_name="kembung")
    assert sorted(p.name for p in (area.path("fish") / "kembung").iterdir()) == ["IMG_1-2.jpg", "IMG_1.jpg"]


def test_a_server_folder_imports_without_following_links(area, tmp_path):
    src = make_image_folder(tmp_path / "src", ["kakap", "tongkol"], 4)
    (src / "kakap" / "link.png").symlink_to(tmp_path / "src" / "tongkol" / "img_000.png")
    plan = area.plan_import("fish", src)
    assert plan.counts == {"kakap": 4, "tongkol": 4}
    assert plan.skipped == [("kakap/link.png", "a symbolic link (links are never followed)")]


# --- manage ---


def test_rename_merge_delete_and_restore(area):
    area.import_photos("fish", make_zip(good_entries(4)))
    area.rename_class("fish", "kakap", "Kakap merah")
    with pytest.raises(DatasetError, match="merge"):
        area.rename_class("fish", "tongkol", "Kakap merah")
    assert area.merge_classes("fish", ["tongkol"], "Kakap merah") == 4
    assert area.classes("fish") == {"Kakap merah": 8}
    batch = area.delete_photos("fish", ["Kakap merah/k0.png"])
    assert area.classes("fish") == {"Kakap merah": 7}
    whole = area.delete_class("fish", "Kakap merah")
    assert area.classes("fish") == {}
    assert [b for b, _ in area.trash("fish")] == sorted([batch, whole], reverse=True)
    assert area.restore("fish", whole) == 7 and area.restore("fish", batch) == 1
    assert area.classes("fish") == {"Kakap merah": 8} and area.trash("fish") == []
    with pytest.raises(DatasetError):
        area.delete_photos("fish", ["../../outside.png"])


def test_warnings_name_small_and_imbalanced_classes_and_what_to_do(area):
    area.import_photos("fish", [(f"{i}.png", photo(0, i)) for i in range(60)], class_name="kakap")
    area.import_photos("fish", [(f"{i}.png", photo(1, 500 + i)) for i in range(4)], class_name="tongkol")
    text = " ".join(area.warnings("fish"))
    assert "Few photos in tongkol (4)" in text and "imbalanced" in text and "Add photos of tongkol" in text


def test_a_folder_upload_keeps_its_classes_and_refuses_hostile_paths(area, tmp_path):
    files = [("mine/" + n, d) for n, d in good_entries()] + [
        ("mine/../../escape.png", photo(0, 90)),
        ("/etc/abs.png", photo(0, 91)),
        ("mine/.DS_Store", b"junk"),
    ]
    plan = area.plan_import("fish", files)
    assert plan.counts == {"kakap": 3, "tongkol": 3}
    assert sorted(n for n, _ in plan.skipped) == ["/etc/abs.png", "mine/../../escape.png"]
    area.apply_import(plan)
    assert not (tmp_path / "escape.png").exists()


def test_imported_photos_are_not_decoded_again_by_the_next_scan(area, monkeypatch):
    import fishcore.data.scan as dataset

    area.import_photos("fish", make_zip(good_entries()))

    def no_decoding(*args, **kwargs):
        raise AssertionError("a photo was decoded again")

    monkeypatch.setattr(dataset, "_inspect", no_decoding)
    result = area.scan("fish")
    assert len(result.items) == 6 and not result.problems
