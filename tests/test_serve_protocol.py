"""WhisperLive's protocol as ``gpuboot serve`` reads and writes it (``gpuboot/serve/protocol.py``) and a live
stream's events as WhisperLive segments (``segments.py``): the options message WhisperLive 0.10.0's client sends,
every way it can be wrong (one line each), audio frames in the three formats and frames that are not audio, the
messages' shapes as its client reads them, and -- for any events and any updates a slow client misses -- a client
that keeps segments by WhisperLive's own rule ends with exactly the final words."""

from __future__ import annotations

import json
import wave
from typing import Any, Dict, List

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from speech import SAMPLE

from gpuboot.serve import protocol
from gpuboot.serve.protocol import ProtocolError, decode_frame, parse_options
from gpuboot.serve.segments import MAX_SEGMENT_S, PAUSE_S, Transcript
from gpuboot.streaming.records import LiveEvent, LiveWord

#: The options message of WhisperLive 0.10.0's client with its defaults (``Client.on_open``), field by field.
CLIENT_OPTIONS = {"uid": "0b5e4f3c-8f7e-4a39-a1f6-5d1c9d8b2e10", "language": "en", "task": "transcribe",
                  "model": "small", "use_vad": True, "send_last_n_segments": 10, "no_speech_thresh": 0.45,
                  "clip_audio": False, "same_output_threshold": 10, "enable_translation": False,
                  "target_language": "fr", "hotwords": None, "enable_diarization": False, "max_speakers": 10,
                  "known_speakers": [], "word_timestamps": False, "initial_prompt": None, "vad_parameters": None}


def test_the_clients_own_options_are_read_with_its_defaults() -> None:
    options = parse_options(json.dumps(CLIENT_OPTIONS))
    assert options.uid == CLIENT_OPTIONS["uid"] and options.language == "en"
    assert options.send_last_n_segments == 10 and options.audio_format == "float32"
    assert not options.word_timestamps and options.warnings == ()
    detect = parse_options(json.dumps({**CLIENT_OPTIONS, "language": None, "unknown_field": 1}))
    assert detect.language is None  # null: detect; fields WhisperLive does not know are ignored, as it does


def test_options_not_served_are_warned_about_not_refused() -> None:
    options = parse_options(json.dumps({**CLIENT_OPTIONS, "task": "translate", "enable_translation": True,
                                        "enable_diarization": True}))
    assert options.task == "transcribe" and len(options.warnings) == 3
    assert all("not served" in w for w in options.warnings)


@pytest.mark.parametrize(("message", "says", "uid_known"), [
    (b"\x00\x01", "not audio", False),
    ("hello", "not JSON", False),
    ("[1, 2]", "JSON object, not list", False),
    (json.dumps({"language": "en"}), "needs \"uid\"", False),
    (json.dumps({"uid": 7}), "needs \"uid\"", False),
    (json.dumps({"uid": "x" * 300}), "needs \"uid\"", False),
    (json.dumps({**CLIENT_OPTIONS, "language": "english"}), "language code", True),
    (json.dumps({**CLIENT_OPTIONS, "send_last_n_segments": True}), "whole number from 1 to 1000", True),
    (json.dumps({**CLIENT_OPTIONS, "send_last_n_segments": 0}), "whole number from 1 to 1000", True),
    (json.dumps({**CLIENT_OPTIONS, "use_vad": "yes"}), "true or false", True),
    (json.dumps({**CLIENT_OPTIONS, "no_speech_thresh": 2}), "from 0 to 1", True),
    (json.dumps({**CLIENT_OPTIONS, "audio_format": "mp3"}), "\"float32\", \"int16\", \"uint8\"", True),
    (json.dumps({**CLIENT_OPTIONS, "initial_prompt": ["a"]}), "string", True),
])
def test_a_bad_options_message_is_one_line_naming_the_fault(message: Any, says: str, uid_known: bool) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_options(message)
    text = str(caught.value)
    assert says in text and "\n" not in text
    assert (caught.value.uid == CLIENT_OPTIONS["uid"]) is uid_known


def _sample_int16() -> np.ndarray:
    with wave.open(str(SAMPLE), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_frames_in_each_format_become_the_same_samples() -> None:
    pcm = _sample_int16()
    floats = pcm.astype(np.float32) / 32768.0
    assert np.array_equal(decode_frame(floats.astype("<f4").tobytes(), "float32"), floats)
    assert np.array_equal(decode_frame(pcm.tobytes(), "int16"), floats)
    as_uint8 = (pcm >> 8).astype(np.int16) + 128
    assert np.allclose(decode_frame(as_uint8.astype(np.uint8).tobytes(), "uint8"), floats, atol=1 / 128)
    assert decode_frame(b"", "float32").size == 0
    assert protocol.is_end_of_audio(b"END_OF_AUDIO") and protocol.is_end_of_audio("END_OF_AUDIO")
    assert not protocol.is_end_of_audio(b"END_OF_AUDIO\x00")


@pytest.mark.parametrize(("frame", "fmt", "says"), [
    (_sample_int16()[:-1].tobytes(), "float32", "not float32 PCM"),  # int16 speech sent as float32: the usual mistake
    (np.array([0.1, np.nan], dtype="<f4").tobytes(), "float32", "not float32 PCM"),
    (np.array([0.1, np.inf], dtype="<f4").tobytes(), "float32", "not float32 PCM"),
    (b"\x00" * 4097, "float32", "not a whole number of float32 samples"),
    (b"\x00" * 3, "int16", "not a whole number of int16 samples"),
    ("some text", "float32", "unexpected text message"),
])
def test_a_frame_that_is_not_audio_is_one_line(frame: Any, fmt: str, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        decode_frame(frame, fmt)


def test_messages_have_the_shapes_the_client_reads() -> None:
    uid = "u1"
    assert json.loads(protocol.ready(uid)) == {"uid": uid, "message": "SERVER_READY", "backend": "faster_whisper"}
    waited = json.loads(protocol.wait(uid, 3.25))
    assert waited == {"uid": uid, "status": "WAIT", "message": 3.25} and round(waited["message"]) == 3
    assert json.loads(protocol.error(None, "bad")) == {"uid": None, "status": "ERROR", "message": "bad"}
    assert json.loads(protocol.disconnect(uid)) == {"uid": uid, "message": "DISCONNECT"}
    assert json.loads(protocol.language(uid, "de", 0.98765)) == {"uid": uid, "language": "de",
                                                                 "language_prob": 0.9877}
    seg = {"start": "0.000", "end": "1.200", "text": "Hi.", "completed": True}
    assert json.loads(protocol.segments(uid, [seg])) == {"uid": uid, "segments": [seg]}


def _word(start: float, end: float, text: str, p: float = 0.9) -> LiveWord:
    return LiveWord(start=start, end=end, word=text, probability=p)


def _event(final: bool, words: List[LiveWord]) -> LiveEvent:
    return LiveEvent(final=final, words=tuple(words), text="".join(w.word for w in words).strip(), emitted=0.0)


def test_final_words_become_completed_segments_at_sentence_ends_and_pauses() -> None:
    t = Transcript(words=True)
    assert t.apply([_event(False, [_word(0.0, 0.3, " The"), _word(0.3, 0.6, " quick")])])
    [open_seg] = t.update(10)
    assert open_seg["completed"] is False and open_seg["text"] == "The quick"
    assert t.apply([_event(True, [_word(0.0, 0.3, " The"), _word(0.3, 0.6, " quick"), _word(0.6, 0.9, " fox.")]),
                    _event(False, [_word(1.2, 1.5, " Please")])])
    done, tail = t.update(10)
    assert done == {"start": "0.000", "end": "0.900", "text": "The quick fox.", "completed": True,
                    "words": [{"word": " The", "start": "0.000", "end": "0.300", "probability": 0.9},
                              {"word": " quick", "start": "0.300", "end": "0.600", "probability": 0.9},
                              {"word": " fox.", "start": "0.600", "end": "0.900", "probability": 0.9}]}
    assert tail["text"] == "Please" and not tail["completed"]
    # a pause of PAUSE_S closes a segment without punctuation; an overlapping start is moved to the last end
    t.apply([_event(True, [_word(0.85, 1.5, " Please"), _word(1.5 + PAUSE_S, 2.0 + PAUSE_S, " send")])])
    segs = t.update(10)
    assert [s["text"] for s in segs] == ["The quick fox.", "Please", "send"]
    assert segs[1]["start"] == "0.900" and [s["completed"] for s in segs] == [True, True, False]
    assert not t.apply([_event(False, [])])  # no tail before, none now: nothing changed
    assert t.close() and [s["completed"] for s in t.update(10)] == [True, True, True]
    assert t.update(1, t.completed) == t.update(10)[-1:]  # all delivered: the last one repeated


def test_a_long_segment_is_cut() -> None:
    t = Transcript()
    t.apply([_event(True, [_word(i * 0.5, i * 0.5 + 0.4, f" w{i}") for i in range(60)])])
    t.close()
    segs = t.update(1000)
    assert len(segs) >= 60 * 0.5 / MAX_SEGMENT_S
    assert all(float(s["end"]) - float(s["start"]) <= MAX_SEGMENT_S + 0.5 for s in segs)


def _keep_like_whisperlive(kept: List[Dict[str, Any]], segments: List[Dict[str, Any]]) -> None:
    """WhisperLive 0.10.0's ``Client.process_segments`` for a faster_whisper backend: a completed segment is kept
    when it starts at or after the end of the last one kept (segments with the text of the one before skipped)."""
    text: List[str] = []
    for seg in segments:
        if not text or text[-1] != seg["text"]:
            text.append(seg["text"].strip())
            if seg["completed"] and (not kept or float(seg["start"]) >= float(kept[-1]["end"])):
                kept.append(seg)


@st.composite
def _streams(draw: Any) -> List[List[LiveEvent]]:
    """Calls of a stream: each gives final words (times only grow, overlaps of up to 50 ms as the stream's
    timeline allows) and a tentative tail."""
    t, calls, n = 0.0, [], 0
    for _ in range(draw(st.integers(1, 25))):
        events = []
        finals = []
        for _ in range(draw(st.integers(0, 4))):
            start = max(0.0, t + draw(st.floats(-0.05, 1.6)))
            end = start + draw(st.floats(0.0, 0.8))
            n += 1
            finals.append(_word(start, end, f" w{n}" + draw(st.sampled_from(["", "", ",", ".", "?"]))))
            t = max(t, end)
        if finals:
            events.append(_event(True, finals))
        tail = [_word(t + 0.1 * i, t + 0.1 * i + 0.1, f" t{i}") for i in range(draw(st.integers(0, 3)))]
        events.append(_event(False, tail))
        calls.append(events)
    return calls


@settings(max_examples=200, deadline=None)
@given(calls=_streams(), delivered=st.lists(st.booleans(), min_size=30, max_size=30),
       last_n=st.integers(1, 4))
def test_a_whisperlive_client_keeps_exactly_the_final_words(calls: List[List[LiveEvent]], delivered: List[bool],
                                                           last_n: int) -> None:
    t = Transcript()
    kept: List[Dict[str, Any]] = []
    sent = 0  # completed segments in messages the client received
    seen: Dict[str, Dict[str, Any]] = {}
    for call, gets_it in zip(calls, delivered):
        t.apply(call)
        if gets_it:  # a slow client misses updates: the next one it gets still carries what it missed
            segs = t.update(last_n, sent)
            sent = t.completed
            _keep_like_whisperlive(kept, segs)
            for s in segs:
                if s["completed"]:
                    assert seen.setdefault(s["start"], s) == s  # a completed segment never changes
    t.close()
    _keep_like_whisperlive(kept, t.update(last_n, sent))
    finals = [w.word.strip() for call in calls for e in call if e.final for w in e.words]
    assert " ".join(s["text"] for s in kept).split() == finals
    assert all(float(a["end"]) <= float(b["start"]) for a, b in zip(kept, kept[1:]))
    assert all(float(s["start"]) < float(s["end"]) for s in kept)
