"""End to end on 127.0.0.1: a sample clip sent to a receiver over WebRTC, in-process and
as two ``semstream`` processes (Ctrl-C on the sender, a sender that vanishes).

Every frame must be delivered or counted with a reason on both sides, the rebuilt video
must resemble the source, and the selected ICE pair must be loopback on both ends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jscc.metrics import psnr
from stream.core.config import PipelineConfig, ReceiverConfig, SenderConfig
from stream.core.sources import VideoFileSource
from stream.net import live, loopback
from stream.net.peer import PeerOptions

TOKEN = "e2e-token"
FAST = PeerOptions(heartbeat_s=0.2, timeout_s=2.0, linger_s=5.0)
SMALL = 160 * 120  # resolution check: keeps the JSCC work small on a 2-core machine
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _weights():
    from jscc import DEFAULT_MODEL
    from jscc.export import default_weights_path

    if not default_weights_path(DEFAULT_MODEL).is_file():
        pytest.skip(f"jscc/weights/{DEFAULT_MODEL}.pt is not exported yet")


def _source_frames(path: Path, n: int) -> dict:
    from dynbg.video import read_frames

    return {f.index: f.image for f in read_frames(path, max_frames=n)}


def _rebuilt(path: Path, fps: float) -> dict:
    from dynbg.video import read_frames

    return {round(f.pts * fps): f.image for f in read_frames(path)}


def test_send_receive_in_process(samples, tmp_path):
    """Every frame processed (no real-time drops), so every frame must arrive: the sent
    ones rebuilt, the skipped ones interpolated, except the last (no frame after it)."""
    clip, n = samples / "asl-again.mkv", 24
    out = tmp_path / "rebuilt.mp4"
    every = PipelineConfig(realtime=False)

    async def session():
        ready = asyncio.get_running_loop().create_future()
        receiving = asyncio.ensure_future(live.receive(
            live.Address("127.0.0.1", 0), TOKEN, ReceiverConfig(interp="blend"), out,
            pipeline=every, options=FAST, ready=lambda port, viewer: ready.set_result(port),
            log=sys.stdout))
        port = await asyncio.wait_for(ready, 120)
        source = VideoFileSource(clip, realtime=True, max_frames=n)
        sent = await live.send(source, live.Address("127.0.0.1", port), TOKEN,
                               SenderConfig(snr_db=10, max_pixels=SMALL, skip=2),
                               pipeline=every, options=FAST, log=sys.stdout)
        return sent, await asyncio.wait_for(receiving, 60)

    sent, got = asyncio.run(session())
    assert sent["end_reason"] == "bye" and got["end_reason"] == "bye"
    assert sent["frames_read"] == n and sent["frames_unaccounted"] == 0
    assert sent["frames_skipped"] == n // 2 and sent["frames_sent"] == n // 2
    assert got["frames_read_by_sender"] == n and got["frames_unaccounted"] == 0
    assert got["frames_delivered"] == n - 1 and got["frames_dropped"] == {"skipped-tail": 1}
    assert got["channel_uses_per_frame"] > 0 and got["latency_ms_median"] > 0
    for report in (sent, got):
        pairs = [(tuple(a), tuple(b)) for a, b in report["selected_pairs"]]
        assert loopback.all_loopback(pairs), pairs
    original = _source_frames(clip, n)
    rebuilt = _rebuilt(out, 30.0)
    assert len(rebuilt) == got["frames_delivered"]
    scores = [psnr(original[i], image) for i, image in rebuilt.items()]
    assert min(scores) > 18 and sum(scores) / len(scores) > 21


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "stream.cli", *args], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in log.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {timeout} s: {log.read_text()[-2000:]}")


@pytest.mark.parametrize("how", ["ctrl-c", "vanish"])
def test_sender_interrupted_or_vanished_ends_both_cleanly(samples, tmp_path, how):
    port = _free_port()
    rlog, slog = tmp_path / "receive.log", tmp_path / "send.log"
    rjson, sjson = tmp_path / "receive.json", tmp_path / "send.json"
    receiver = _cli("receive", "--listen", f"127.0.0.1:{port}", "--token", TOKEN, "--interp",
                    "off", "--out", str(tmp_path / "out.mp4"), "--json", str(rjson), log=rlog)
    sender = None
    try:
        _wait_for(rlog, "listening on", receiver)
        sender = _cli("send", str(samples / "asl-again.mkv"), "--to", f"127.0.0.1:{port}",
                      "--token", TOKEN, "--max-pixels", str(SMALL), "--json", str(sjson),
                      log=slog)
        _wait_for(slog, "connected to", sender)
        _wait_for(rlog, "first frame in", receiver)  # mid-stream, however loaded the machine
        if how == "ctrl-c":
            sender.send_signal(signal.SIGINT)
            assert sender.wait(60) == 0, slog.read_text()[-2000:]
            assert receiver.wait(60) == 0, rlog.read_text()[-2000:]
            s = json.loads(sjson.read_text())
            assert s["end_reason"] == "bye" and s["frames_unaccounted"] == 0
            assert 0 < s["frames_read"] < 90  # the clip has 90 frames: it stopped early
            r = json.loads(rjson.read_text())
            assert r["frames_read_by_sender"] == s["frames_read"]
            assert r["frames_unaccounted"] == 0
        else:
            sender.kill()
            sender.wait(10)
            assert receiver.wait(60) == 1  # ended by itself: the peer went silent
            r = json.loads(rjson.read_text())
            assert r["end_reason"] in ("timeout", "peer_closed")
            assert r["frames_sent"] is None and r["frames_received"] > 0
        summary = rlog.read_text().strip().splitlines()[-1]
        assert summary.startswith("semstream receive: ") and "frames_delivered=" in summary
        assert (tmp_path / "out.mp4").stat().st_size > 0
    finally:
        for p in (sender, receiver):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--allow-loopback-in-peer-connection",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def _y4m(clip: Path, path: Path, n: int) -> Path:
    """A .y4m of the first n frames of clip (Chromium's fake camera plays it in a loop)."""
    import fractions

    import av

    from dynbg.video import read_frames

    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for f in read_frames(clip, max_frames=n):
            frame = av.VideoFrame.from_ndarray(f.image, format="rgb24")
            frame.pts, frame.time_base = f.index, fractions.Fraction(1, 30)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.browser
def test_browser_camera_streams_into_the_sender(samples, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian chromium (.ci/run installs it with apt-get)")
    playwright = pytest.importorskip("playwright.async_api")
    from stream.net.browser_source import BrowserCameraSource

    camera = _y4m(samples / "asl-again.mkv", tmp_path / "camera.y4m", 30)
    n = 20

    async def session():
        ready = asyncio.get_running_loop().create_future()
        receiving = asyncio.ensure_future(live.receive(
            live.Address("127.0.0.1", 0), TOKEN, ReceiverConfig(interp="off"), None,
            options=FAST, ready=lambda port, viewer: ready.set_result(port), log=sys.stdout))
        port = await asyncio.wait_for(ready, 120)
        source = BrowserCameraSource(port=0, max_frames=n, connect_timeout_s=60)
        sending = asyncio.ensure_future(live.send(
            source, live.Address("127.0.0.1", port), TOKEN,
            SenderConfig(max_pixels=SMALL), options=FAST, log=sys.stdout))
        while source.browser.port == 0:
            await asyncio.sleep(0.1)
        async with playwright.async_playwright() as pw:
            # the last --disable-features switch wins: this one comes after playwright's
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM),
                args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={camera}",
                                      "--disable-features=WebRtcHideLocalIpsWithMdns"])
            page = await browser.new_page()
            await page.goto(source.browser.url)
            await page.wait_for_function("window.semstream.state === 'connected'",
                                         timeout=60_000)
            pair = await page.evaluate("window.semstream.selectedPair()")
            camera_pairs = source.browser.selected_pairs()
            sent = await asyncio.wait_for(sending, 120)
            await browser.close()
        return sent, await asyncio.wait_for(receiving, 60), camera_pairs, pair

    sent, got, camera_pairs, page_pair = asyncio.run(session())
    assert sent["frames_read"] == n and sent["frames_unaccounted"] == 0
    assert got["frames_unaccounted"] == 0 and got["frames_delivered"] > 0
    assert loopback.all_loopback(camera_pairs), camera_pairs
    assert page_pair == {"local": "127.0.0.1", "remote": "127.0.0.1"}, page_pair


@pytest.mark.browser
def test_viewer_plays_and_switches_the_receivers_interpolation(samples):
    """Chromium opens the receiver's viewer: the rebuilt video plays (frames advance, not
    black); clicking the switch turns the receiver's interpolation off, as its report
    (skipped frames counted "skipped-interp-off" after interpolated ones) confirms."""
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian chromium (.ci/run installs it with apt-get)")
    playwright = pytest.importorskip("playwright.async_api")
    n = 300  # the clip looped: 10 s at 30 fps, still streaming when the switch is clicked

    async def session():
        ready = asyncio.get_running_loop().create_future()
        receiving = asyncio.ensure_future(live.receive(
            live.Address("127.0.0.1", 0), TOKEN, ReceiverConfig(interp="blend"), None,
            view=live.Address("127.0.0.1", 0), options=FAST,
            ready=lambda port, viewer: ready.set_result((port, viewer)), log=sys.stdout))
        port, viewer = await asyncio.wait_for(ready, 120)
        source = VideoFileSource(samples / "asl-again.mkv", realtime=True, max_frames=n,
                                 loop=True)
        sending = asyncio.ensure_future(live.send(
            source, live.Address("127.0.0.1", port), TOKEN,
            SenderConfig(max_pixels=SMALL, skip=2), options=FAST, log=sys.stdout))
        async with playwright.async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM),
                args=CHROMIUM_ARGS + ["--disable-features=WebRtcHideLocalIpsWithMdns"])
            page = await browser.new_page()
            await page.goto(viewer.url)
            await page.wait_for_function("window.semstream.presented > 5", timeout=60_000)
            first = await page.evaluate("window.semstream.presented")
            brightness = await page.evaluate("""() => {
                const v = document.getElementById('video');
                const c = document.createElement('canvas');
                c.width = v.videoWidth; c.height = v.videoHeight;
                const g = c.getContext('2d'); g.drawImage(v, 0, 0);
                const d = g.getImageData(0, 0, c.width, c.height).data;
                let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2];
                return s / (d.length / 4) / 3;
            }""")
            await page.wait_for_function("window.semstream.interp === true", timeout=10_000)
            await page.click("#interp")
            await page.wait_for_function("window.semstream.interp === false", timeout=10_000)
            # frames keep coming after the switch (waited for: one evaluate right after
            # the click can land before the next frame is presented)
            await page.wait_for_function(f"window.semstream.presented > {first}",
                                         timeout=30_000)
            later = await page.evaluate("window.semstream.presented")
            viewer_pairs = viewer.selected_pairs()
            sent = await asyncio.wait_for(sending, 120)
            await browser.close()
        return sent, await asyncio.wait_for(receiving, 60), first, later, brightness, \
            viewer_pairs

    sent, got, first, later, brightness, viewer_pairs = asyncio.run(session())
    assert later > first and brightness > 30  # the video plays and is not black
    assert got["interp"] is False  # the receiver really is off now
    assert got["frames_dropped"].get("skipped-interp-off", 0) > 0
    assert got["frames_delivered_by_mode"].get("interpolated", 0) > 0  # before the switch
    assert got["frames_unaccounted"] == 0 and sent["frames_unaccounted"] == 0
    assert loopback.all_loopback(viewer_pairs), viewer_pairs
