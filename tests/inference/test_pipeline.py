"""The pipelined frame engine: `prefetch` keeps order, raises the producer's errors, and stops when closed."""

import threading
import time

import numpy as np
import pytest

from keras_speech2vid.inference.engine import prefetch


def test_prefetch_keeps_order_and_runs_ahead_in_another_thread():
    produced, threads = [], set()

    def items():
        for i in range(50):
            threads.add(threading.current_thread().name)
            produced.append(i)
            yield i

    it = prefetch(items(), depth=4)
    assert next(it) == 0
    time.sleep(0.2)
    assert 3 <= len(produced) <= 6  # ahead, but bounded by the depth
    assert [0, *it] == list(range(50))
    assert threads == {"speech2vid-frames"}


def test_prefetch_raises_the_producers_error_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise KeyError("bad window")

    got = []
    with pytest.raises(KeyError, match="bad window"):
        for x in prefetch(items(), depth=8):
            got.append(x)
    assert got == [1, 2]


def test_closing_stops_the_producer():
    produced = []

    def items():
        for i in range(10_000):
            produced.append(i)
            yield i

    it = prefetch(items(), depth=2)
    next(it)
    it.close()
    count = len(produced)
    time.sleep(0.2)
    assert len(produced) == count <= 5
    assert not any(t.name == "speech2vid-frames" for t in threading.enumerate())


def test_pipelined_and_sequential_engines_give_the_same_frames(s2v, faceimg1):
    from keras_speech2vid.io import decode_audio
    from tests.export.conftest import DATA

    wave = decode_audio(DATA / "transcript.mp3")[:16000 * 2]
    runs = {}
    for pipeline in (True, False):
        engine = s2v.engine(5, 8)
        engine.pipeline = pipeline
        runs[pipeline] = np.stack(list(s2v.generate(faceimg1, wave, aligned=True, batch_size=8)))
    assert runs[True].shape == (50, 109, 109, 3)
    np.testing.assert_array_equal(runs[True], runs[False])
