import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fishcore.config import DataConfig
from fishcore.data.images import load_image
from fishcore.data.phash import perceptual_hash
from fishcore.data.scan import require_classes, scan
from fishcore.data.split import split_dataset
from fishcore.errors import DatasetError, ImageError

from conftest import class_image, make_image_folder, png_with_size


def test_scan_reports_every_unusable_file_without_failing(tmp_path):
    root = make_image_folder(tmp_path / "d", ["Sea Bass", "Kakap merah 🐟"], per_class=3)
    bad = root / "Sea Bass"
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "notes.jpg").write_text("this is not a picture")
    (bad / "readme.txt").write_text("hello")
    good = io.BytesIO()
    class_image(0, 1, 64).save(good, "JPEG")
    (bad / "cut.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    class_image(0, 2, 8).save(bad / "tiny.png")
    (bad / "bomb.png").write_bytes(png_with_size(20000, 20000))
    (root / "loose.jpg").write_bytes(good.getvalue())

    result = scan(root)
    reasons = {p.path.rsplit("/", 1)[-1]: p.reason for p in result.problems}
    assert "0 bytes" in reasons["empty.jpg"]
    assert reasons["notes.jpg"] == "a text file, not an image"
    assert "unsupported file type" in reasons["readme.txt"]
    assert "truncated" in reasons["cut.jpg"]
    assert reasons["tiny.png"].startswith("too small")
    assert "decompression bomb" in reasons["bomb.png"]
    assert "class folder" in reasons["loose.jpg"]
    assert result.counts == {"Kakap merah 🐟": 3, "Sea Bass": 3}
    assert len(result.fingerprint) == 64


def test_scan_accepts_all_extensions_in_any_case(tmp_path):
    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    for i, ext in enumerate([".JPG", ".jpeg", ".Png", ".webp", ".BMP"]):
        img = class_image(0, i, 40)
        img.save(root / "a" / f"x{i}{ext}", {".JPG": "JPEG", ".jpeg": "JPEG", ".Png": "PNG", ".webp": "WEBP", ".BMP": "BMP"}[ext])
    assert len(scan(root).items) == 5 and not scan(root).problems


def test_scan_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        scan(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no usable images"):
        require_classes(scan(tmp_path / "empty"))


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "1"])
def test_load_image_converts_any_mode_to_rgb(tmp_path, mode):
    base = class_image(1, 3, 32)
    img = base.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG")
    buf = io.BytesIO()
    img.save(buf, fmt)
    out = load_image(buf.getvalue())
    assert out.mode == "RGB" and out.size == (32, 32)
    if mode == "I;16":  # 16-bit grey is rescaled, not clipped to white
        assert abs(np.asarray(out)[..., 0].astype(int) - np.asarray(base.convert("L")).astype(int)).max() <= 1


def test_load_image_applies_exif_orientation():
    img = Image.new("RGB", (40, 20), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert load_image(buf.getvalue()).size == (20, 40)


def test_load_image_errors_are_user_errors(tmp_path):
    with pytest.raises(ImageError, match="not an image"):
        load_image(b"plain text")
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.jpg")


def test_perceptual_hash_ignores_flips_and_rotations():
    img = class_image(2, 5, 64)
    h = perceptual_hash(img)

    def distance(a: int, b: int) -> int:
        return bin(a ^ b).count("1")

    for t in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_90):
        # Resampling is not exactly equivariant, so allow a bit or two, far below DataConfig's threshold.
        assert distance(perceptual_hash(img.transpose(t)), h) <= 2
    assert distance(perceptual_hash(class_image(2, 6, 64)), h) > DataConfig().duplicate_distance


def _dataset_with_flipped_copies(root: Path) -> Path:
    for ci, label in enumerate(["a", "b"]):
        (root / label).mkdir(parents=True)
        for i in range(20):
            img = class_image(ci, 100 * ci + i, 64)
            img.save(root / label / f"{i}_orig.png")
            img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / label / f"{i}_flip.png")
    return root


def test_split_is_stratified_seeded_and_keeps_duplicates_together(tmp_path):
    result = scan(_dataset_with_flipped_copies(tmp_path / "d"))
    split = split_dataset(result, DataConfig(val_fraction=0.2, test_fraction=0.2, seed=3))
    assert 30 <= split.groups <= 40  # each photo and its flip form one group; rare look-alikes may merge
    assert split == split_dataset(result, DataConfig(val_fraction=0.2, test_fraction=0.2, seed=3))
    assert split != split_dataset(result, DataConfig(val_fraction=0.2, test_fraction=0.2, seed=4))
    sides = {}
    for name, files in (("train", split.train), ("val", split.val), ("test", split.test)):
        for f in files:
            sides[f] = name
    assert len(sides) == 80
    for f, side in sides.items():
        assert sides[f.replace("_orig", "_flip")] == side
    for label in ("a", "b"):
        assert abs(sum(f.startswith(label) for f in split.test) - 8) <= 2
        assert abs(sum(f.startswith(label) for f in split.val) - 8) <= 2
    plain = split_dataset(result, DataConfig(val_fraction=0.2, test_fraction=0.2, group_near_duplicates=False))
    assert plain.groups == 80


def test_group_pattern_keeps_video_tracks_together(tmp_path):
    root = tmp_path / "d"
    for ci, label in enumerate(["x", "y"]):
        (root / label).mkdir(parents=True)
        for track in range(6):
            for frame in range(4):
                class_image(ci, 1000 * ci + 10 * track + frame, 32).save(root / label / f"fish_{track:04d}_{frame:05d}.png")
    cfg = DataConfig(group_pattern=r"fish_(\d+)_", val_fraction=0.2, test_fraction=0.2, group_near_duplicates=False)
    split = split_dataset(scan(root), cfg)
    assert split.groups == 12
    for files in (split.train, split.val, split.test):
        tracks = {f.rsplit("_", 1)[0] for f in files}
        others = set().union(*({f.rsplit("_", 1)[0] for f in s} for s in (split.train, split.val, split.test) if s is not files))
        assert not tracks & others


def test_separate_test_folder(tmp_path):
    train = make_image_folder(tmp_path / "train", ["a", "b"], 10)
    test = make_image_folder(tmp_path / "test", ["a", "b"], 3)
    split = split_dataset(scan(train), DataConfig(), scan(test))
    assert len(split.test) == 6 and split.test_root == str(test)
    assert len(split.train) + len(split.val) == 20
