"""Which files the app may read: typed paths on a shared app, and scans that cannot walk a whole disk."""

import os

import pytest
from streamlit.testing.v1 import AppTest

from fishcore.data.scan import scan
from fishcore.errors import DatasetError, PathNotAllowed
from fishcore.settings import Paths, paths_restricted
from pages._shared import OTHER_FOLDER

from conftest import REPO, make_image_folder


@pytest.mark.parametrize(
    ("env", "address", "restricted"),
    [
        ("", "localhost", False),
        ("", "127.0.0.1", False),
        ("", "0.0.0.0", True),
        ("", None, True),  # Streamlit's default without this project's config: every interface
        ("", "192.168.1.20", True),
        ("1", "localhost", True),
        ("0", "0.0.0.0", False),
    ],
)
def test_paths_are_restricted_when_the_app_listens_beyond_localhost(monkeypatch, env, address, restricted):
    monkeypatch.setenv("FISHCORE_RESTRICT_PATHS", env)
    assert paths_restricted(address) is restricted


def test_the_project_config_listens_on_localhost_only():
    text = (REPO / ".streamlit" / "config.toml").read_text()
    assert 'address = "localhost"' in text


def test_restricted_paths_allow_the_dataset_area_data_and_listed_folders_only(tmp_path, monkeypatch):
    area, data, extra, secret = (tmp_path / n for n in ("datasets", "data", "extra", "secret"))
    for d in (area / "reef", data, extra / "fish", secret):
        d.mkdir(parents=True)
    (area / "reef" / "escape").symlink_to(secret)  # a link out of the area does not widen it
    monkeypatch.setenv("FISHCORE_DATASETS_DIR", str(area))
    monkeypatch.setenv("FISHCORE_DATA", str(data))
    monkeypatch.setenv("FISHCORE_ALLOWED_DIRS", os.pathsep.join([str(extra), ""]))
    paths = Paths.from_env()
    for ok in (area / "reef", data, extra / "fish", extra / "fish" / ".." / "fish"):
        assert paths.check_readable(ok, restricted=True)
    for refused in ("/", "/etc", secret, area / "reef" / "escape", tmp_path, area / ".." / "secret"):
        with pytest.raises(PathNotAllowed, match="only reads folders under"):
            paths.check_readable(refused, restricted=True)
    assert paths.check_readable("/", restricted=False)  # one's own laptop: anywhere, as before


def _data_page(tmp_path) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.switch_page("pages/data_page.py")
    return at.run()


def test_a_shared_app_refuses_a_typed_system_folder_and_shows_nothing_of_it(tmp_path, monkeypatch):
    area = tmp_path / "datasets"
    make_image_folder(area / "mine", ["kakap", "tongkol"], per_class=3)
    monkeypatch.setenv("FISHCORE_DATASETS_DIR", str(area))
    monkeypatch.setenv("FISHCORE_DATA", str(area / "mine"))
    monkeypatch.setenv("FISHCORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FISHCORE_RESTRICT_PATHS", "1")
    at = _data_page(tmp_path)
    assert not at.exception and not at.error  # the dataset area is fine
    at.selectbox(key="data_dataset_choice").set_value(OTHER_FOLDER).run()
    at.text_input(key="data_path_box").set_value("/etc").run()
    assert not at.exception
    assert any("only reads folders under" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.get("image") and "passwd" not in str([m.value for m in at.markdown])

    monkeypatch.setenv("FISHCORE_RESTRICT_PATHS", "0")  # the owner's own laptop
    at = _data_page(tmp_path)
    at.selectbox(key="data_dataset_choice").set_value(OTHER_FOLDER).run()
    at.text_input(key="data_path_box").set_value(str(area / "mine")).run()
    assert not at.exception and not any("only reads" in e.value for e in at.error)


def test_a_scan_refuses_too_many_files_and_does_not_descend_forever(tmp_path):
    root = make_image_folder(tmp_path / "data", ["kakap", "tongkol"], per_class=4)
    with pytest.raises(DatasetError, match="more than 5 files"):
        scan(root, max_files=5)
    deep = root / "kakap" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (root / "kakap" / "img_000.png").rename(deep / "img_000.png")
    result = scan(root, max_depth=2)
    assert result.counts["kakap"] == 3
    assert any("more than 2 levels deep" in p.reason for p in result.problems)
    assert scan(root).counts["kakap"] == 4
