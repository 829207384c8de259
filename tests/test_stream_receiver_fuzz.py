"""ReceiverCore against well-formed but hostile messages (issue 16): each refused with
its own counted reason, never an exception, never a frame of the wrong size, every index
delivered or counted. The property test's budget is SEMSTREAM_FUZZ_EXAMPLES examples
(default 120, under a minute here, the same draw every run; bench/fuzz_receiver.py runs a
longer, random one)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core import validate, wire
from stream.core.accounting import FrameLedger
from stream.core.config import ReceiverConfig
from stream.core.receiver import ReceiverCore
from stream.core.sender import LIBRARY_FLAG
from tests.hostile import background_mutations, frame_mutations, genuine_messages, mutate
from tests.test_stream_core import _frames, codec  # noqa: F401 (fixture)

W, H = 96, 72
EXAMPLES = int(os.environ.get("SEMSTREAM_FUZZ_EXAMPLES", "120"))
# CI draws the same examples every run (a red CI names a change, not a lucky draw);
# bench/fuzz_receiver.py sets SEMSTREAM_FUZZ_RANDOM=1 to explore new ones.
RANDOM = os.environ.get("SEMSTREAM_FUZZ_RANDOM") == "1"


@pytest.fixture(scope="module")
def pool(samples, codec):  # noqa: F811
    """Genuine messages of a 96x72 session: backgrounds (JSCC, coded), key frames with and
    without fg-latent masks, direct frames."""
    return genuine_messages(_frames(samples / "asl-again.mkv", 3, (W, H)), codec)


def _receiver(codec, skip: int = 2) -> ReceiverCore:  # noqa: F811
    core = ReceiverCore(ReceiverConfig(interp="blend"), codec)
    core.start(wire.SessionParams(W, H, 30.0, skip))
    return core


def _feed(core: ReceiverCore, messages: list) -> list:
    out = []
    for msg in messages:
        out += core.compose(core.decode(msg))
    return out


def _one(core: ReceiverCore, msg) -> str | None:
    """The reason ``msg`` (a frame) was refused with, None when it was delivered."""
    before = dict(core.ledger.dropped)
    out = _feed(core, [msg])
    if any(o.index == msg.index for o in out):
        return None
    (reason,) = [r for r, n in core.ledger.dropped.items() if n > before.get(r, 0)]
    return reason


def _first(pool, cls, **where):
    return next(m for m in pool if isinstance(m, cls)
                and all(getattr(m, k) == v for k, v in where.items()))


def test_the_issues_messages_are_refused_with_their_reason(pool, codec):  # noqa: F811
    """The three messages of issue 16 and one per check: a counted reason, no crash."""
    background = _first(pool, wire.Background, kind=wire.BackgroundKind.CODED)
    key = next(m for m in pool if isinstance(m, wire.FrameMsg) and m.mask is not None
               and m.symbols.size)
    direct = _first(pool, wire.FrameMsg, mode=wire.Mode.DIRECT)
    core = _receiver(codec, skip=0)
    _feed(core, [background])
    key = dataclasses.replace(key, index=0, background_id=background.background_id)
    cases = {  # (field: value) -> reason
        "bad-crop-shape": dict(crop_shape=(0, 0)),   # was cv2.error in the fg-latent fill
        "bad-box": dict(box=(W, H, W + 16, H + 16)),  # was counted no-background
        "no-background": dict(background_id=77),
        "bad-latent-shape": dict(latent_shape=(key.latent_shape[0], 1, 1)),
        "bad-rate-level": dict(rate_level=9),
        "bad-snr": dict(snr_db=float("nan")),
        "bad-mask": dict(mask=np.ones((1, 1), bool)),
        "bad-symbol-count": dict(symbols=key.symbols[:-1]),
        "bad-symbols": dict(symbols=np.full(key.symbols.size, np.inf, np.complex64)),
        "bad-mode": dict(mode=wire.Mode.SKIP),
        "bad-time": dict(pts=float("inf")),
        "bad-scale": dict(scale=0.0),
    }
    for i, (reason, fields) in enumerate(cases.items()):
        assert _one(core, dataclasses.replace(key, index=i, **fields)) == reason, fields
    n = len(cases)
    small = dataclasses.replace(direct, index=n, box=(0, 0, 16, 16))  # was a 16x16 frame
    assert _one(core, small) == "bad-box"
    assert _one(core, dataclasses.replace(key, index=n + 1 + (1 << 14))) == "bad-index"
    assert _one(core, dataclasses.replace(key, index=n + 1)) is None  # the session goes on
    _feed(core, [dataclasses.replace(background, height=H + 1),
                 dataclasses.replace(background, background_id=LIBRARY_FLAG | 1),
                 dataclasses.replace(background, payload=background.payload[:9])])
    assert not core.start(wire.SessionParams(2 * W, H, 30.0))
    assert core.state.width == W
    assert core.rejected == {**{r: 1 for r in cases}, "bad-index": 1,
                             "bad-box": 2, "bad-background-size": 1,
                             "bad-background-id": 1, "bad-background": 1,
                             "repeated-hello": 1}
    assert set(core.rejected) <= set(validate.REASONS)


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_message_sequences_never_break_the_receiver(pool, codec, data):  # noqa: F811
    frame_edits = st.lists(st.sampled_from(frame_mutations(W, H)), max_size=3)
    bg_edits = st.lists(st.sampled_from(background_mutations(W, H)), max_size=2)
    steps = data.draw(st.lists(st.tuples(st.integers(0, len(pool) - 1), st.data()),
                               min_size=1, max_size=8))
    core = _receiver(codec)
    highest = -1
    for i, sub in steps:
        msg = pool[i]
        if isinstance(msg, wire.FrameMsg):
            msg = mutate(dataclasses.replace(msg, index=highest + 1 + sub.draw(
                st.integers(-3, 4))), sub.draw(frame_edits))
            if msg.index <= highest + validate.MAX_INDEX_JUMP:
                highest = max(highest, msg.index)
        else:
            msg = mutate(msg, sub.draw(bg_edits))
        for out in _feed(core, [msg]):
            assert out.image.shape == (H, W, 3) and out.image.dtype == np.uint8
    sender_drops = data.draw(st.integers(0, 3))
    bye = wire.Bye(highest + 1 + sender_drops, 0, {"late:encode": sender_drops},
                   {"late:encode": ((highest + 1, sender_drops),)} if sender_drops else {})
    frames = core.finish(bye=bye)
    assert frames == highest + 1 + sender_drops
    assert core.ledger.unaccounted(frames) == 0
    assert set(core.rejected) <= set(validate.REASONS)


def test_finish_gives_each_missing_index_the_senders_reason_for_it(codec):  # noqa: F811
    sender = FrameLedger()
    for i, reason in {1: "backpressure", 2: "backpressure", 4: "late:encode",
                      5: "peer-gone", 6: "peer-gone"}.items():
        sender.drop(i, reason)
    assert sender.dropped_runs() == {"backpressure": ((1, 2),), "late:encode": ((4, 1),),
                                     "peer-gone": ((5, 2),)}
    assert sender.dropped_runs(limit=2) == {"backpressure": ((1, 2),),
                                            "late:encode": ((4, 1),)}
    # reasons listed in reverse index order: the runs, not the order, decide
    dropped = dict(reversed(list(sender.dropped.items())))
    bye = wire.Bye(8, 3, dropped, sender.dropped_runs())
    (got,) = [m for p in wire.Packer().pack(bye) for m in [wire.Unpacker().feed(p)] if m]
    assert got == bye
    core = _receiver(codec, skip=0)
    core.finish(bye=got)
    assert core.ledger.dropped_runs() == {
        "sender:backpressure": ((1, 2),), "sender:late:encode": ((4, 1),),
        "sender:peer-gone": ((5, 2),), "lost": ((0, 1), (3, 1), (7, 1))}
    # without runs (an older or truncated Bye) the counts go to the indices in order
    core = _receiver(codec, skip=0)
    core.finish(bye=wire.Bye(3, 0, {"a": 1, "b": 1}))
    assert core.ledger.dropped_runs() == {"sender:a": ((0, 1),), "sender:b": ((1, 1),),
                                          "lost": ((2, 1),)}


def test_a_bye_far_beyond_the_last_frame_is_refused(codec):  # noqa: F811
    core = _receiver(codec, skip=0)
    assert core.finish(bye=wire.Bye(2**32 - 1, 0, {"x": 5})) == 0
    assert core.rejected == {"bad-bye": 1} and core.ledger.accounted == 0


def test_a_png_background_with_an_empty_payload_is_refused(codec):  # noqa: F811
    core = _receiver(codec, skip=0)
    bg = wire.Background(0, 1, wire.BackgroundKind.PNG, H, W, b"")
    decoded = core.decode(bg)
    assert decoded.reason == "bad-background" and "PNG" in decoded.error
    assert core.rejected == {"bad-background": 1}
