"""Issue 22: the browser UI (`speech2vid ui`, Gradio). `make_video` on its own, then the page end to end in
real headless Chromium (Debian's chromium + chromium-driver, driven by selenium): upload a face and speech,
wait for the video, check it has frames and audio; a bad upload shows a message, not a traceback."""

import shutil
import socket
import time
import urllib.request

import numpy as np
import pytest

from tests.conftest import DATA
from tests.inference.conftest import tiny_weights  # noqa: F401 (fixture)

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def s2v(tiny_weights):  # noqa: F811
    from keras_speech2vid import Speech2Vid

    return Speech2Vid.load(tiny_weights, batch_size=8)


def test_make_video_generates_redubs_and_refuses_bad_input_in_one_line(s2v, tmp_path):
    from keras_speech2vid import io
    from keras_speech2vid.errors import Speech2VidError
    from keras_speech2vid.ui import make_video

    out = make_video(s2v, [DATA / "obama.jpg"], DATA / "tmp.wav", tmp_path, pads="0 10 0 0", fps=25)
    info = io.probe(out)
    assert out.parent.parent == tmp_path and info.has_video and info.has_audio and info.width > 200
    dubbed = make_video(s2v, [], DATA / "tmp.wav", tmp_path, video=DATA / "vox2_00086_man_suit_red_bg.mp4",
                        static=True)
    assert io.probe(dubbed).has_audio and dubbed != out
    for kwargs, message in [({"faces": [DATA / "obama.jpg"], "speech": None}, "no speech"),
                            ({"faces": [], "speech": DATA / "tmp.wav"}, "no face"),
                            ({"faces": [DATA / "tmp.wav"], "speech": DATA / "tmp.wav"}, "not an image: tmp.wav"),
                            ({"faces": [DATA / "obama.jpg"], "speech": DATA / "tmp.wav", "pads": "1 2"}, "pads"),
                            ({"faces": [DATA / "obama.jpg"], "speech": DATA / "obama.jpg"}, "obama.jpg")]:
        with pytest.raises((ValueError, Speech2VidError), match=message) as e:
            make_video(s2v, outdir=tmp_path / "x", **kwargs)
        assert "\n" not in str(e.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page_url(tiny_weights, tmp_path_factory):  # noqa: F811
    pytest.importorskip("gradio")
    from keras_speech2vid.ui import launch

    port = _free_port()
    app = launch(tiny_weights, port=port, outdir=tmp_path_factory.mktemp("ui"), block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _upload(driver, elem_id, path):
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=file]").send_keys(str(path))


def _wait(condition, timeout=180, what="the page"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow  # a browser and a server; .ci/run runs it
def test_the_page_makes_a_video_in_chromium_and_shows_errors_as_messages(page_url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from keras_speech2vid import io

    browser.get(page_url)
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#generate"), 60, "the page to load")
    _upload(browser, "faces", DATA / "obama.jpg")
    _upload(browser, "speech", DATA / "tmp.wav")
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#speech audio, #speech .waveform-container, "
                                                         "#speech [data-testid='waveform-Speech']"),
          60, "the speech upload")
    time.sleep(1.0)
    browser.find_element(By.CSS_SELECTOR, "#generate").click()
    video = _wait(lambda: [v for v in browser.find_elements(By.CSS_SELECTOR, "#result video")
                           if (v.get_attribute("src") or "").startswith("http")], 240, "the result video")
    src = video[0].get_attribute("src")
    path = tmp_path / "result.mp4"
    path.write_bytes(urllib.request.urlopen(src, timeout=60).read())
    info = io.probe(path)
    assert info.has_video and info.has_audio
    frames = np.stack(list(io.iter_frames(path)))
    assert len(frames) >= 20 and frames.std() > 1.0
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 10_000

    browser.get(page_url)  # a bad upload: a text file as the speech
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#generate"), 60, "the page to load")
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio\n")
    _upload(browser, "faces", DATA / "obama.jpg")
    _upload(browser, "speech", bad)
    time.sleep(2.0)
    browser.find_element(By.CSS_SELECTOR, "#generate").click()
    body = lambda: browser.find_element(By.TAG_NAME, "body").text  # noqa: E731
    _wait(lambda: "cannot decode audio" in body(), 120, "the error message")  # the library's one line
    assert "notes.wav: cannot decode audio" in body() and "Traceback" not in browser.page_source
