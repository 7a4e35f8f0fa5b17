"""Bad input, everywhere: every kind of file a user may hand over gets a specific one-line answer, never a
traceback, and the other files of a batch or a scan are still processed. The files are made here."""

import gc
import io
import random

import numpy as np
import psutil
import pytest
from PIL import Image

from fishcore.data.scan import scan
from fishcore.errors import ImageError
from fishcore.inference.predict import Predictor
from fishcore.store.model_files import bundled_model_dir

from conftest import class_image, png_with_size


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _photo(seed: int = 0, size: int = 96) -> Image.Image:
    return class_image(seed % 4, seed, size)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return _encode(Image.new("RGB", (120, 60), (200, 30, 30)), "JPEG", exif=exif)


def _animated_gif() -> bytes:
    frames = [_photo(i).convert("P") for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _palette_with_transparency() -> bytes:
    img = _photo(1).convert("P")
    return _encode(img, "PNG", transparency=0)


def _png16() -> bytes:
    arr = (np.random.default_rng(0).random((64, 64)) * 65535).astype(np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    return _encode(img, "PNG")


GOOD = {
    "16-bit.png": _png16,
    "cmyk.jpg": lambda: _encode(_photo(2).convert("CMYK"), "JPEG"),
    "palette-transparent.png": _palette_with_transparency,
    "animated.gif": _animated_gif,
    "exif-rotated.jpg": _exif_rotated,
    "grayscale.jpg": lambda: _encode(_photo(3).convert("L"), "JPEG"),
    "photo.webp": lambda: _encode(_photo(4), "WEBP"),
    "png-named.jpg": lambda: _encode(_photo(5), "PNG"),  # a wrong extension over valid content
}
BAD = {
    "truncated.jpg": (lambda: _encode(_photo(6, 256), "JPEG", quality=95)[:1500], "truncated"),
    "empty.jpg": (lambda: b"", "empty file (0 bytes)"),
    "page.jpg": (lambda: b"<!DOCTYPE html><html><head><title>fish</title></head><body></body></html>", "web page (HTML)"),
    "notes.jpg": (lambda: b"kakap merah 3 kg, tongkol 2 kg\n", "a text file, not an image"),
    "drawing.svg": (lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG drawing"),
    "scan.pdf": (lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "PDF document"),
    "bomb.png": (lambda: png_with_size(60000, 60000), "decompression bomb"),
    "dot.png": (lambda: _encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), "too small to judge (1x1 pixels"),
    "phone.heic": (lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "export them as JPEG"),
}


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load(bundled_model_dir(), engine="auto")


@pytest.mark.parametrize("name", sorted(GOOD))
def test_every_readable_kind_is_predicted(predictor, name):
    [p] = predictor.predict([GOOD[name]()], names=[name])
    assert p.file == name and 0.0 <= p.confidence <= 1.0 and p.verdict and p.reason


def test_exif_orientation_is_applied_before_the_model_sees_the_photo(predictor):
    assert predictor.read(_exif_rotated()).size == (60, 120)


@pytest.mark.parametrize("name", sorted(BAD))
def test_every_bad_kind_gets_its_own_one_line_message(predictor, name):
    make, message = BAD[name]
    with pytest.raises(ImageError) as info:
        predictor.predict([make()])
    text = str(info.value)
    assert message in text and "\n" not in text and "Traceback" not in text


def test_a_batch_with_bad_files_still_predicts_the_good_ones(predictor):
    sources = [make() for make, _ in BAD.values()] + [make() for make in GOOD.values()]
    errors = {}
    results = predictor.predict(sources, batch_size=4, on_error=lambda n, exc: errors.setdefault(n, str(exc)))
    assert sorted(errors) == list(range(len(BAD)))
    assert len(results) == len(GOOD)


def test_a_scan_lists_each_bad_file_with_its_reason_and_keeps_the_rest(tmp_path):
    root = tmp_path / "data"
    for label in ("kakap", "tongkol"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            _photo(i).save(root / label / f"good_{i}.jpg")
    for name, (make, _) in BAD.items():
        (root / "kakap" / (name.rsplit(".", 1)[0] + ".jpg")).write_bytes(make())  # all renamed .jpg: a scan reads content
    result = scan(root)
    assert result.counts == {"kakap": 3, "tongkol": 3}
    reasons = {p.path.rsplit("/", 1)[-1]: p.reason for p in result.problems}
    assert "empty file" in reasons["empty.jpg"] and "web page" in reasons["page.jpg"]
    assert "PDF" in reasons["scan.pdf".replace(".pdf", ".jpg")] and "JPEG" in reasons["phone.jpg"]
    assert "too small" in reasons["dot.jpg"] and "truncated" in reasons["truncated.jpg"]


@pytest.mark.slow
def test_soak_500_mixed_files_no_unhandled_exception_and_bounded_memory(predictor):
    """500 files, about half of them bad, through the predictor in batches; resident memory is sampled after a warm-up."""
    rng = random.Random(0)
    makers = [(m, True) for m in GOOD.values()] + [(m, False) for m, _ in BAD.values()]
    plan = [rng.choice(makers) for _ in range(500)]
    process = psutil.Process()
    errors = 0
    rss = []
    for start in range(0, len(plan), 50):
        chunk = [(make(), good) for make, good in plan[start : start + 50]]
        bad_here: list[int] = []
        results = predictor.predict([b for b, _ in chunk], batch_size=16, on_error=lambda n, _e, seen=bad_here: seen.append(n))
        assert sorted(bad_here) == [i for i, (_, good) in enumerate(chunk) if not good]
        assert len(results) == sum(good for _, good in chunk)
        errors += len(bad_here)
        gc.collect()
        rss.append(process.memory_info().rss)
    # The first half warms up (onnxruntime grows its arena for each new batch shape, then reuses it); a
    # per-file leak would keep growing through the second half.
    warm_up_mb = (rss[4] - rss[0]) / 2**20
    growth_mb = (max(rss[5:]) - rss[4]) / 2**20
    print(
        f"soak: 500 files, {errors} refused with a message; resident memory +{warm_up_mb:.0f} MB over the first 250, "
        f"+{growth_mb:.1f} MB over the last 250 ({[round(r / 2**20) for r in rss]} MB after each 50)"
    )
    assert errors > 100
    assert growth_mb < 30  # the stated bound (README, Limits and safety)
