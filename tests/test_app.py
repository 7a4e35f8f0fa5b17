from streamlit.testing.v1 import AppTest

from conftest import REPO


def test_home_page_renders_the_bundled_model_card():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("Marine fish" in t.value for t in at.title)
    assert any(m.label == "Species" and m.value == "9" for m in at.metric)
