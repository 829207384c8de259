"""The viewer and the webcam source: with real headless Chromium on 127.0.0.1 only
(inside a loopback-only network namespace where one can be made; see tests/browser.py),
and with an aiortc peer standing in for the browser where Chromium is absent."""

from __future__ import annotations

import asyncio
import fractions
import json
import time

import aiohttp
import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from jscc.metrics import psnr
from stream.net import loopback
from stream.net.browser_source import BrowserSource
from stream.net.viewer import FrameInfo, SentLog, Viewer
from tests import browser

needs_chromium = pytest.mark.skipif(browser.playwright_missing() is not None,
                                    reason=str(browser.playwright_missing()))

LOOPBACK = {"local": "127.0.0.1", "remote": "127.0.0.1"}


def _server_pairs_loopback(result: dict) -> bool:
    pairs = result["server_pairs"]
    return bool(pairs) and all(local[0] == remote[0] == "127.0.0.1" for local, remote in pairs)


@pytest.mark.browser
@needs_chromium
def test_viewer_plays_video_and_switches_interpolation() -> None:
    result = browser.run_scenario("viewer")
    assert result["presented_in_1s"] >= 10, result      # frames advance (30 fps pushed)
    assert result["mean_level"] > 40, result             # not black
    assert result["frame_change"] > 0.5, result          # the picture moves (signing clip)
    assert result["switch_after_click"] is True          # the click reached the receiver
    assert result["page_follows_receiver"] is True       # the page shows the receiver's state
    assert result["page_pair"] == LOOPBACK, result
    assert _server_pairs_loopback(result), result
    viewer = result["viewer"]
    assert viewer["frames_displayed_timed"] > 10, viewer
    assert 0 < viewer["glass_to_glass_ms_median"] < 1000, viewer


@pytest.mark.browser
@needs_chromium
def test_browser_webcam_streams_into_the_sender() -> None:
    result = browser.run_scenario("camera")
    assert result["page_error"] is None
    assert result["frames"] == 45 and result["shapes"] == [[480, 640, 3]]
    assert result["indices_in_order"] and result["pts_increasing"]
    assert result["fps"] > 15, result
    assert result["best_psnr_median"] > 25, result       # the frames are the sample clip's
    assert result["page_pair"] == LOOPBACK, result
    assert _server_pairs_loopback(result), result


# -- without a browser ------------------------------------------------------------------

def test_sent_log_finds_capture_times_from_rtp() -> None:
    log = SentLog()
    pts = np.cumsum(np.random.default_rng(1).integers(2900, 3100, 50))
    for i, p in enumerate(pts):
        log.sent(int(p), 1000.0 + i)
    origin = 4_294_000_000  # wraps around 2^32
    rtp = [(int(p) + origin + jitter) % 2**32 for p, jitter in zip(pts[10:20], [0, 1, -1] * 4,
                                                                    strict=False)]
    assert log.captured(rtp) == [1000.0 + i for i in range(10, 20)]
    assert log.origin == origin % 2**32
    assert log.captured([(origin + 5) % 2**32]) == [None]  # no frame with pts 5


async def _post(url: str, **kwargs: object) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, **kwargs) as reply:
        return reply.status, await reply.text()


def test_viewer_http_interface() -> None:
    async def scenario() -> None:
        state = {"on": False}
        viewer = Viewer("127.0.0.1", 0, stats=lambda: {"interp": state["on"], "mode": "key"},
                        set_interp=lambda on: state.update(on=on) or on)
        await viewer.start()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(viewer.url) as page:
                    assert "semstream" in await page.text()
                async with session.get(viewer.url + "stats") as reply:
                    stats = await reply.json()
                assert stats["interp"] is False and stats["interp_switch"] is True
            assert await _post(viewer.url + "interp", json={"on": True}) == (200, '{"on": true}')
            assert state["on"] is True
            assert (await _post(viewer.url + "interp", json={"on": "yes"}))[0] == 400
            assert (await _post(viewer.url + "offer", data=b"not json"))[0] == 400
            bad_sdp = {"sdp": "v=0 nope", "type": "offer"}
            assert (await _post(viewer.url + "offer", json=bad_sdp))[0] == 400
            assert (await _post(viewer.url + "displayed", json={"page": "nope"}))[0] == 400
            with pytest.raises(ValueError, match="H x W x 3 uint8"):
                viewer.push_frame(np.zeros((48, 64), np.uint8), FrameInfo(0))
        finally:
            await viewer.stop()

    asyncio.run(scenario())


def test_viewer_track_reaches_an_aiortc_peer_on_loopback() -> None:
    async def scenario() -> None:
        clip = browser.sample_frames(20)
        viewer = Viewer("127.0.0.1", 0)
        await viewer.start()
        pc = RTCPeerConnection(loopback.rtc_configuration())
        pc.addTransceiver("video", direction="recvonly")
        track_ready: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        pc.on("track", track_ready.set_result)
        loopback.restrict(pc)
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as session:
            async with session.post(viewer.url + "offer", json={
                    "sdp": pc.localDescription.sdp, "type": "offer"}) as reply:
                answer = await reply.json()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        track = await asyncio.wait_for(track_ready, 10)

        async def feed() -> None:
            for i in range(300):
                viewer.push_frame(clip[i % len(clip)], FrameInfo(i, "key", time.time()))
                await asyncio.sleep(1 / 30)

        feeder = asyncio.ensure_future(feed())
        try:
            received = [await asyncio.wait_for(track.recv(), 10) for _ in range(30)]
        finally:
            feeder.cancel()
        pairs = viewer.selected_pairs()
        await pc.close()
        await viewer.stop()
        last = received[-1].to_ndarray(format="rgb24")
        assert last.shape == (480, 640, 3)
        assert max(psnr(ref, last) for ref in clip) > 25
        assert viewer.frames_out >= 30 and loopback.all_loopback(pairs), pairs

    asyncio.run(scenario())


class _ClipTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, frames: list[np.ndarray]) -> None:
        super().__init__()
        self.frames, self.count = frames, 0

    async def recv(self) -> av.VideoFrame:
        await asyncio.sleep(1 / 30)
        frame = av.VideoFrame.from_ndarray(self.frames[self.count % len(self.frames)],
                                           format="rgb24")
        frame.pts, frame.time_base = self.count * 3000, fractions.Fraction(1, 90_000)
        self.count += 1
        return frame


def test_browser_source_takes_a_track_from_an_aiortc_peer() -> None:
    async def scenario() -> None:
        clip = browser.sample_frames(20)
        source = BrowserSource("127.0.0.1", 0)
        await source.start()
        async with aiohttp.ClientSession() as session, session.get(source.url + "config") as r:
            assert await r.json() == {"width": 640, "height": 480, "fps": 30.0}
        pc = RTCPeerConnection(loopback.rtc_configuration())
        pc.addTrack(_ClipTrack(clip))
        loopback.restrict(pc)
        await pc.setLocalDescription(await pc.createOffer())
        status, text = await _post(source.url + "offer", json={"sdp": pc.localDescription.sdp,
                                                               "type": "offer"})
        assert status == 200
        answer = json.loads(text)
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        frames = []
        async for frame in source.frames(connect_timeout_s=10):
            frames.append(frame)
            if len(frames) == 20:
                break
        pairs = source.selected_pairs()
        await pc.close()
        await source.stop()
        assert [f.index for f in frames] == list(range(20))
        assert all(f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8 for f in frames)
        assert frames[-1].pts > frames[0].pts and frames[-1].captured > frames[0].captured
        assert max(psnr(ref, frames[-1].image) for ref in clip) > 25
        assert loopback.all_loopback(pairs), pairs

    asyncio.run(scenario())



@pytest.mark.browser
@needs_chromium
def test_live_demo_plays_and_obeys_its_page() -> None:
    result = browser.run_scenario("live", timeout_s=150)
    assert min(result["presented_in_1s"]) >= 1, result       # both panes advance
    assert min(result["pane_change"].values()) > 0.3, result  # and the pictures move
    assert result["sender_snr_before"] == 20
    assert result["snr_reported_after_s"] is not None and result["snr_reported_after_s"] < 2
    assert result["psnr_lower_after_s"] is not None and result["psnr_lower_after_s"] < 2, result
    assert result["mode_reported_after_s"] is not None, result
    assert result["uses_fg_latent"] < result["uses_proposed"], result
    assert result["refused"]["status"] == 400 and "SNR" in result["refused"]["shown"]
    assert result["wrong_token_status"] == 403
    assert result["page_pair"] == LOOPBACK, result
    assert result["exit_code"] == 0, result                  # Ctrl-C ends it cleanly
    for end in ("sender", "receiver"):
        assert result[end]["end_reason"] == "bye", result
        assert all(local[0] == remote[0] == "127.0.0.1"
                   for local, remote in result[end]["selected_pairs"])
    assert result["sender"]["controls"] == {"applied": 2, "refused": 0}
