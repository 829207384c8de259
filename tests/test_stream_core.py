"""SenderCore -> wire -> ReceiverCore on real clips with the shipped JSCC model: quality,
channel-use accounting, skip/interpolation bookkeeping, fg-latent, library, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from jscc.metrics import psnr
from stream.core import wire
from stream.core.accounting import AccountingError, FrameLedger, frame_side_bits
from stream.core.config import ReceiverConfig, SenderConfig
from stream.core.frames import Frame
from stream.core.receiver import ReceiverCore
from stream.core.sender import LIBRARY_FLAG, SenderCore
from tests.conftest import require_model

SIZE = (192, 144)  # frames are scaled down to this (w, h): JSCC work stays small on 2 cores
SMALL = None  # no resolution check (it would cap crops and whole frames alike)


@pytest.fixture(scope="module")
def codec():
    from jscc.codec import JSCCCodec
    from jscc.export import default_weights_path

    if not default_weights_path("edge").is_file():
        pytest.skip("jscc/weights/edge.pt is not exported yet")
    return JSCCCodec.load("edge")


def _frames(path, n: int, size: tuple[int, int] | None = SIZE) -> list[Frame]:
    import cv2

    from dynbg.video import read_frames

    return [Frame(f.image if size is None else cv2.resize(f.image, size,
                                                          interpolation=cv2.INTER_AREA),
                  f.index, f.pts, 0.0) for f in read_frames(path, max_frames=n)]


@pytest.fixture(scope="module")
def asl(samples) -> list[Frame]:
    return _frames(samples / "asl-again.mkv", 12)


def _chain(frames: list[Frame], sender_cfg: SenderConfig, codec, interp: str = "off",
           library=None, fps: float = 30.0, late_fallback: str | None = None):
    """Run frames through both cores and the wire; (sender, receiver, outputs by index)."""
    sender = SenderCore(sender_cfg, codec, keep_mask=True)
    receiver = ReceiverCore(ReceiverConfig(interp=interp, library=library,
                                           late_fallback=late_fallback), codec)
    h, w = frames[0].image.shape[:2]
    receiver.start(wire.SessionParams(w, h, fps, sender_cfg.skip))
    packer, unpacker = wire.Packer(), wire.Unpacker()
    outputs, masks = {}, {}
    try:
        for frame in frames:
            out = sender.encode(sender.analyse(frame))
            masks[frame.index] = out.analysis.mask
            for msg in out.messages:
                for packet in packer.pack(msg):
                    got = unpacker.feed(packet)
                    if got is not None:
                        for o in receiver.compose(receiver.decode(got)):
                            outputs[o.index] = o
    finally:
        sender.close()
    receiver.finish(len(frames))
    return sender, receiver, outputs, masks


def test_key_mode_round_trip_beats_direct_on_channel_uses(asl, codec):
    cfg = SenderConfig(snr_db=10, max_pixels=SMALL)
    sender, receiver, out, masks = _chain(asl, cfg, codec)
    assert receiver.ledger.unaccounted(len(asl)) == 0
    assert receiver.ledger.delivered == len(asl) and not receiver.ledger.dropped
    scores = [psnr(f.image, out[f.index].image) for f in asl]
    fg = [psnr(f.image, out[f.index].image, masks[f.index]) for f in asl[1:]]
    assert np.mean(scores) > 20 and np.mean(fg) > 18
    assert sender.ledger.background_updates == 1 and sender.ledger.modes["key"] == len(asl)
    assert {o.mode for o in out.values()} == {"key"}

    d_sender, d_receiver, d_out, _ = _chain(asl, SenderConfig(snr_db=10, mode="direct",
                                                              max_pixels=SMALL), codec)
    assert d_receiver.ledger.delivered == len(asl)
    assert d_sender.ledger.modes["direct"] == len(asl)
    assert d_sender.ledger.background_uses == 0
    # the crops carry less than the whole frames, and all costs together stay below direct
    assert sender.ledger.frame_uses < 0.8 * d_sender.ledger.frame_uses
    assert sender.ledger.total < d_sender.ledger.total
    assert np.mean([psnr(f.image, d_out[f.index].image) for f in asl]) > 20


def test_channel_uses_count_symbols_and_side_information(asl, codec):
    sender = SenderCore(SenderConfig(max_pixels=SMALL), codec)
    try:
        outs = [sender.encode(sender.analyse(f)) for f in asl[:3]]
    finally:
        sender.close()
    first, second = outs[0], outs[1]
    bg = first.messages[0]
    assert isinstance(bg, wire.Background) and bg.kind == wire.BackgroundKind.CODED
    assert 0 < first.channel_uses - first.frame_message.symbols.size <= asl[0].image.size / 12 + 64
    msg = second.frame_message
    assert msg.mode == wire.Mode.KEY and msg.symbols.size > 0
    assert second.channel_uses == msg.symbols.size + frame_side_bits(msg)
    assert sender.ledger.total == sum(o.channel_uses for o in outs)
    assert sender.ledger.source_values == 3 * asl[0].image.size


def test_frames_without_foreground_send_side_information_only(samples, codec):
    frames = _frames(samples / "one-by-one-person.mp4", 5)  # the scene is empty at first
    sender, receiver, out, _ = _chain(frames, SenderConfig(max_pixels=SMALL), codec)
    assert receiver.ledger.delivered == 5
    assert sender.ledger.frame_uses == 0 and sender.ledger.background_updates == 1
    bg = out[0].image
    assert all(np.array_equal(out[i].image, bg) for i in range(1, 5))
    assert psnr(frames[4].image, out[4].image) > 20


@pytest.mark.parametrize("interp", ["blend", "off", "rife-fg"])
def test_skipped_frames_are_interpolated_or_counted(asl, codec, interp):
    if interp.startswith("rife"):
        require_model("rife-hdv3")
    frames = asl[:9]
    sender, receiver, out, _ = _chain(frames, SenderConfig(max_pixels=SMALL, skip=2), codec,
                                      interp=interp)
    assert sender.ledger.modes["skip"] == 4 and sender.ledger.modes["key"] == 5
    assert receiver.ledger.unaccounted(len(frames)) == 0
    if interp == "off":
        assert sorted(out) == [0, 2, 4, 6, 8]
        assert receiver.ledger.dropped == {"skipped-interp-off": 4}
    else:
        assert sorted(out) == list(range(9))
        assert [out[i].mode for i in (1, 3)] == ["interpolated"] * 2
        assert psnr(frames[3].image, out[3].image) > 20


def test_interpolation_switch_takes_effect_on_the_next_gap(asl, codec):
    frames = asl[:7]
    sender = SenderCore(SenderConfig(max_pixels=SMALL, skip=2), codec)
    receiver = ReceiverCore(ReceiverConfig(interp="blend"), codec)
    receiver.start(wire.SessionParams(*SIZE, 30.0, 2))
    modes = {}
    try:
        for f in frames:
            if f.index == 3:
                assert receiver.set_interp(False) is False
            for msg in sender.encode(sender.analyse(f)).messages:
                for o in receiver.compose(receiver.decode(msg)):
                    modes[o.index] = o.mode
    finally:
        sender.close()
    assert modes[1] == "interpolated" and 3 not in modes and 5 not in modes
    assert receiver.ledger.dropped == {"skipped-interp-off": 2}


def test_fg_latent_sends_fewer_symbols_and_mask_bits(asl, codec):
    frames = asl[:4]
    plain, _, out_plain, masks = _chain(frames, SenderConfig(max_pixels=SMALL), codec)
    fgl, receiver, out, _ = _chain(frames, SenderConfig(max_pixels=SMALL, fg_latent=True), codec)
    assert receiver.ledger.delivered == 4
    assert fgl.ledger.frame_uses < 0.9 * plain.ledger.frame_uses
    assert fgl.ledger.side_uses > plain.ledger.side_uses  # the mask bits
    for i in range(1, 4):
        inside = psnr(frames[i].image, out[i].image, masks[i])
        assert inside > psnr(frames[i].image, out_plain[i].image, masks[i]) - 1.5


def test_library_match_costs_side_information_only(samples, codec, tmp_path):
    from dynbg.background import build_background
    from dynbg.library import BackgroundLibrary, write_image
    from dynbg.segmenters import make_segmenter

    full = _frames(samples / "asl-again.mkv", 12, size=None)  # ORB needs the full size
    with make_segmenter("selfie") as seg:
        masks = [seg.mask(f.image) for f in full[::4]]
    bg = build_background([f.image for f in full[::4]], masks)
    write_image(tmp_path / "office.png", bg.image)
    write_image(tmp_path / "other.png", np.full_like(bg.image, 30))
    BackgroundLibrary.build(tmp_path).save()
    frames = full[:3]
    cfg = SenderConfig(max_pixels=160 * 120, library=tmp_path)
    sender, receiver, out, _ = _chain(frames, cfg, codec, library=tmp_path)
    assert sender.ledger.background_updates == 0 and sender.ledger.background_uses == 0
    assert receiver.ledger.delivered == 3
    assert {o.mode for o in out.values()} == {"key"}
    assert np.mean([psnr(f.image, out[f.index].image) for f in frames]) > 20
    # without the library at the receiver the frames cannot be rebuilt, and say so
    _, blind, _, _ = _chain(frames, cfg, codec)
    assert blind.ledger.dropped == {"no-background": 3}


def test_library_flag_names_an_image_index():
    assert LIBRARY_FLAG | 3 != 3 and (LIBRARY_FLAG | 3) & ~LIBRARY_FLAG == 3


def test_corrupt_messages_are_counted_not_fatal(asl, codec):
    receiver = ReceiverCore(ReceiverConfig(interp="off"), codec)
    receiver.start(wire.SessionParams(*SIZE, 30.0))
    bad_bg = wire.Background(0, 1, wire.BackgroundKind.JSCC, SIZE[1], SIZE[0], b"\x00" * 7)
    assert receiver.compose(receiver.decode(bad_bg)) == []
    frame = wire.FrameMsg(0, 0.0, 0.0, wire.Mode.KEY, background_id=1)
    assert receiver.compose(receiver.decode(frame)) == []
    wrong = wire.FrameMsg(1, 0.0, 0.0, wire.Mode.DIRECT, box=(0, 0, *SIZE),
                          crop_shape=SIZE[::-1], latent_shape=(4, 36, 48),
                          symbols=np.zeros(10, np.complex64))
    assert receiver.compose(receiver.decode(wrong)) == []
    receiver.finish(3, wire.Bye(3, 0, {"backpressure": 1}))
    assert receiver.ledger.dropped == {"no-background": 1, "bad-symbol-count": 1,
                                       "sender:backpressure": 1}
    assert receiver.rejected == {"bad-background": 1, "no-background": 1,
                                 "bad-symbol-count": 1}
    assert receiver.ledger.unaccounted(3) == 0


def test_ledger_refuses_two_outcomes_for_one_frame():
    ledger = FrameLedger()
    ledger.deliver(0)
    with pytest.raises(AccountingError):
        ledger.drop(0, "late")


def test_bad_configs_and_frames_are_refused(codec):
    with pytest.raises(ValueError, match="channel"):
        SenderConfig(channel="fiber")
    with pytest.raises(ValueError, match="interpolation"):
        ReceiverConfig(interp="magic")
    for bad, match in ((dict(background="carrier pigeon"), "background link"),
                       (dict(background_codecs=("gif",)), "background codec"),
                       (dict(background_rate=0.0), "background_rate"),
                       (dict(symbols="int4"), "symbol format")):
        with pytest.raises(ValueError, match=match):
            SenderConfig(**bad)
    with pytest.raises(ValueError, match="fallback"):
        ReceiverConfig(late_fallback="magic")
    sender = SenderCore(SenderConfig(), codec)
    try:
        with pytest.raises(ValueError):
            sender.analyse(Frame(np.zeros((480, 640), np.float32), 0, 0.0, 0.0))
    finally:
        sender.close()


def test_int8_symbols_halve_the_bytes_at_no_visible_cost(asl, codec):
    frames = asl[:4]
    runs = {}
    for fmt in ("float16", "int8"):
        _, receiver, out, _ = _chain(frames, SenderConfig(snr_db=10, max_pixels=SMALL,
                                                          symbols=fmt), codec)
        assert receiver.ledger.delivered == len(frames)
        runs[fmt] = np.mean([psnr(f.image, out[f.index].image) for f in frames])
    assert abs(runs["int8"] - runs["float16"]) < 0.2
    sender = SenderCore(SenderConfig(snr_db=10, max_pixels=SMALL, symbols="int8"), codec)
    try:
        sender.encode(sender.analyse(frames[0]))
        msg = sender.encode(sender.analyse(frames[1])).frame_message
    finally:
        sender.close()
    assert msg.symbol_format == wire.SymbolFormat.INT8
    as_float16 = wire.FrameMsg(**{**msg.__dict__, "symbol_format": wire.SymbolFormat.FLOAT16})
    sizes = [sum(map(len, wire.Packer().pack(m))) for m in (msg, as_float16)]
    assert sizes[0] < 0.55 * sizes[1]


@pytest.mark.parametrize("fallback", ["dis", None])
def test_a_late_interpolator_hands_over_to_its_fallback(asl, codec, fallback):
    require_model("rife-hdv3")
    frames = asl[:11]  # skip 2: 5 gaps; at 10,000 fps every RIFE gap is late
    _, receiver, out, _ = _chain(frames, SenderConfig(max_pixels=SMALL, skip=2), codec,
                                 interp="rife-fg", fps=10_000.0, late_fallback=fallback)
    assert sorted(out) == list(range(11)) and receiver.ledger.unaccounted(11) == 0
    if fallback is None:
        assert receiver.interp_method == "rife-fg" and receiver.interp_note is None
    else:
        assert receiver.interp_method == "dis"
        assert "switched to dis" in receiver.interp_note
    assert psnr(frames[9].image, out[9].image) > 20  # filled by DIS after the switch


def test_below_the_mcs_cliff_the_background_goes_through_jscc(asl, codec):
    sender, receiver, out, _ = _chain(asl[:3], SenderConfig(snr_db=-8, max_pixels=SMALL), codec)
    assert receiver.ledger.delivered == 3
    sender2 = SenderCore(SenderConfig(snr_db=-8, max_pixels=SMALL), codec)
    try:
        first = sender2.encode(sender2.analyse(asl[0]))
    finally:
        sender2.close()
    assert first.messages[0].kind == wire.BackgroundKind.JSCC
    assert np.mean([psnr(f.image, out[f.index].image) for f in asl[:3]]) > 15


def test_a_crop_that_is_the_whole_frame_is_sent_direct(samples, codec):
    """carphone: the head fills the 176x144 frame, so key mode would pay for the crop and
    a background too; the sender sends those frames whole and no background at all."""
    frames = _frames(samples / "carphone.mp4", 6, size=None)
    sender, receiver, out, _ = _chain(frames, SenderConfig(snr_db=5, max_pixels=SMALL), codec)
    assert sender.ledger.modes["direct"] == 6 and sender.ledger.background_updates == 0
    d_sender, *_ = _chain(frames, SenderConfig(snr_db=5, mode="direct", max_pixels=SMALL),
                          codec)
    assert sender.ledger.total == d_sender.ledger.total
    assert receiver.ledger.delivered == 6 and {o.mode for o in out.values()} == {"direct"}
    with pytest.raises(ValueError, match="direct_above"):
        SenderConfig(direct_above=0.0)


def test_a_held_background_goes_with_the_next_key_frame(asl, codec):
    """Frames sent whole owe the receiver the segment's background; the first key frame
    after them carries it, so no key frame is dropped for want of a background."""
    from dataclasses import replace

    cfg = SenderConfig(snr_db=10, max_pixels=SMALL, direct_above=0.01)  # every crop: direct
    sender = SenderCore(cfg, codec)
    receiver = ReceiverCore(ReceiverConfig(interp="off"), codec)
    h, w = asl[0].image.shape[:2]
    receiver.start(wire.SessionParams(w, h, 30.0, 0))
    outs = []
    try:
        for i, frame in enumerate(asl[:6]):
            if i == 3:
                sender.reconfigure(replace(cfg, direct_above=None))
            out = sender.encode(sender.analyse(frame))
            outs.append(out)
            for msg in out.messages:
                receiver.compose(receiver.decode(msg))
    finally:
        sender.close()
    assert [o.analysis.mode for o in outs] == [wire.Mode.DIRECT] * 3 + [wire.Mode.KEY] * 3
    assert not any(isinstance(m, wire.Background) for o in outs[:3] for m in o.messages)
    assert isinstance(outs[3].messages[0], wire.Background)
    assert sender.ledger.background_updates == 1
    receiver.finish(6)
    assert receiver.ledger.delivered == 6 and not receiver.ledger.dropped


def test_hello_with_another_model_is_refused(codec):
    """A sender coding with other JSCC weights than the receiver's ends the session with one
    clear line (its latents would decode to noise); the receiver counts it."""
    from stream.core.validate import Invalid

    receiver = ReceiverCore(ReceiverConfig(interp="off"), codec)
    with pytest.raises(Invalid, match="model-mismatch.*'paper'.*same --model"):
        receiver.start(wire.SessionParams(64, 48, 30.0, model="paper"))
    assert receiver.rejected["model-mismatch"] == 1
    assert receiver.start(wire.SessionParams(64, 48, 30.0, model=codec.cfg.name))
