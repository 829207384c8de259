"""Temporal coding of key-frame crops (stream.core.temporal) through the real sender and
receiver cores, the real JSCC model and the wire: a still scene costs almost nothing after
its first frame, a lost frame is repaired once the receiver reports it, the symbols sent
have unit average energy, and the cell map survives its code."""

from __future__ import annotations

import numpy as np
import pytest

from jscc.metrics import psnr
from stream.core import temporal, wire
from stream.core.config import ReceiverConfig, SenderConfig, TemporalConfig
from stream.core.frames import Frame
from stream.core.receiver import ReceiverCore
from stream.core.sender import SenderCore

SIZE = (320, 240)  # (w, h): the frames are scaled down so the JSCC work stays small


@pytest.fixture(scope="module")
def codec():
    from jscc.codec import JSCCCodec
    from jscc.export import default_weights_path

    if not default_weights_path("edge").is_file():
        pytest.skip("jscc/weights/edge.pt is not exported yet")
    return JSCCCodec.load("edge")


@pytest.fixture(scope="module")
def asl(samples) -> list[Frame]:
    import cv2

    from dynbg.video import read_frames

    return [Frame(cv2.resize(f.image, SIZE, interpolation=cv2.INTER_AREA), f.index, f.pts, 0.0)
            for f in read_frames(samples / "asl-again.mkv", max_frames=10)]


def _run(frames: list[Frame], codec, lose: int | None = None, report: bool = True,
         config: TemporalConfig = TemporalConfig(), levels: list | None = None):  # noqa: B008
    """Frames through sender -> wire -> receiver with temporal coding (``config``) at 10 dB;
    the frame message of index ``lose`` never arrives; ``levels`` collects the frame
    messages' rate levels. Returns (per-frame channel uses, PSNR by index, indices the
    receiver reported lost)."""
    cfg = SenderConfig(snr_db=10.0, temporal=config, max_pixels=None)
    sender = SenderCore(cfg, codec)
    receiver = ReceiverCore(ReceiverConfig(interp="off"), codec)
    h, w = frames[0].image.shape[:2]
    receiver.start(wire.SessionParams(w, h, 30.0))
    packer, unpacker = wire.Packer(), wire.Unpacker()
    uses, quality, reported = [], {}, []
    try:
        for frame in frames:
            out = sender.encode(sender.analyse(frame))
            uses.append(out.channel_uses)
            for msg in out.messages:
                if isinstance(msg, wire.FrameMsg) and levels is not None:
                    levels.append(msg.rate_level)
                if frame.index == lose and isinstance(msg, wire.FrameMsg):
                    continue
                for packet in packer.pack(msg):
                    done = unpacker.feed(packet)
                    if done is not None:
                        for o in receiver.compose(receiver.decode(done)):
                            quality[o.index] = psnr(frame.image, o.image)
            lost = receiver.take_lost()
            reported += lost
            if report:
                sender.report_lost(lost)
    finally:
        sender.close()
    return uses, quality, reported


def test_still_scene_costs_almost_nothing_after_the_first_frame(asl, codec):
    still = [Frame(asl[0].image, i, i / 30, 0.0) for i in range(5)]
    uses, quality, _ = _run(still, codec)
    assert uses[0] > 10_000
    # after the first look and one refinement, only side information: under 1 % of it
    assert max(uses[2:]) < 0.01 * uses[0], uses
    assert min(quality.values()) > quality[0] - 0.1


def test_a_lost_frame_is_repaired(asl, codec):
    _, clean, _ = _run(asl, codec)
    _, repaired, reported = _run(asl, codec, lose=4)
    _, unrepaired, _ = _run(asl, codec, lose=4, report=False)
    assert reported == [4] and 4 not in repaired
    # the frame after the loss decodes from stale cells; once reported, they are resent
    for i in (6, 7, 8, 9):
        assert repaired[i] > clean[i] - 0.3, (i, repaired[i], clean[i])
    assert np.mean([repaired[i] for i in (6, 7, 8, 9)]) >= \
        np.mean([unrepaired[i] for i in (6, 7, 8, 9)])


def test_sent_symbols_have_unit_average_energy(asl, codec):
    """Selecting the cells that changed picks high-energy ones: the frame gain brings the
    symbols actually sent back to unit energy per channel use."""
    # a light drift weight: few cells are sent, those that changed most
    tracker = temporal.CellTracker(codec.cfg.downsample, TemporalConfig(drift_weight=4.0), None)
    mask = np.ones(asl[0].image.shape[:2], bool)
    box = (40, 8, 280, 232)
    energies, gains = [], []
    for frame in asl[:6]:
        g = tracker.crop(frame.image, mask, box)
        tx = codec.encode(g.crop, 10.0, level=tracker.level)
        tracker.level = tx.level
        plan = tracker.plan(tx.symbols.reshape(tx.planes_sent, *tx.latent_hw), g.origin, 0.1)
        if plan.symbols.size:
            energies.append(float(np.mean(np.abs(plan.symbols) ** 2)))
            gains.append(plan.gain)
    assert len(energies) >= 4
    assert np.allclose(energies, 1.0, atol=2e-3), energies
    assert min(gains) < 0.95  # the changed cells alone are above unit energy


def test_a_roomy_budget_raises_the_level_above_the_policys(asl, codec):
    policy, raised = [], []
    _run(asl[:3], codec, config=TemporalConfig(budget=1e5), levels=policy)
    _run(asl[:3], codec, config=TemporalConfig(budget=1e5, level_room=1.7), levels=raised)
    assert policy[0] < codec.cfg.levels - 1  # edge's policy at 10 dB: a low level
    assert raised == [codec.cfg.levels - 1] * 3  # the budget affords the top one


def test_a_budget_buys_the_level_its_still_cells_afford():
    from jscc.model import get_config

    cfg = get_config("wide")  # levels 0-4 send 4-8 planes
    assert temporal.budget_level(cfg, 100, 500, 1.7) == 4   # 800 uses <= 850
    assert temporal.budget_level(cfg, 100, 300, 1.7) == 1   # 500 <= 510 < 600
    assert temporal.budget_level(cfg, 100, 100, 1.7) == 0   # nothing fits: the lowest


@pytest.mark.parametrize("density", [0.0, 0.02, 0.5, 1.0])
def test_cell_map_round_trip(density):
    rng = np.random.default_rng(1)
    sent = rng.random((23, 31)) < density
    actions = np.where(sent, np.where(rng.random(sent.shape) < 0.3, temporal.REFINE,
                                      temporal.REPLACE), temporal.KEEP).astype(np.uint8)
    data, bits = temporal.pack_payload((5, 7), 0.8, actions)
    cells = temporal.unpack_payload(data, actions.shape)
    assert np.array_equal(cells.actions, actions) and cells.origin == (5, 7)
    assert bits == temporal.side_bits(data) <= 50 + 2 * actions.size
    with pytest.raises(temporal.CellMapError):
        temporal.unpack_payload(data[:-1] if len(data) > 12 else data + b"\0", actions.shape)
