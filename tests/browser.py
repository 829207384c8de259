"""Real headless Debian Chromium for the browser tests, kept on 127.0.0.1.

Each scenario (``viewer``, ``camera``, ``live``) runs as ``python tests/browser.py NAME`` and
prints one JSON line with what it saw; ``run_scenario`` starts that process inside a
loopback-only network namespace (``unshare -n``, lo brought up) when the machine
allows it (root or user namespaces, and ``ip``), so the server and the browser share
a namespace whose only interface is lo; elsewhere it runs directly, where the
loopback ICE restrictions and Chromium's flags still keep traffic on 127.0.0.1.

Chromium is started by hand (not by playwright's launch) with one merged
--disable-features switch, then driven through playwright's connect_over_cdp.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--no-default-browser-check",
    "--disable-dev-shm-usage", "--allow-loopback-in-peer-connection",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--disable-features=WebRtcHideLocalIpsWithMdns,OptimizationHints,MediaRouter,"
    "NetworkTimeServiceQuerying,Translate",
    "--autoplay-policy=no-user-gesture-required",
)
NETNS = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']


def chromium_path() -> str | None:
    """The Debian chromium binary, or None where it is not installed."""
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


def playwright_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if chromium_path() is None:
        return "Debian chromium not installed (apt-get install -y chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "python playwright not installed (pip install -e '.[dev]')"
    return None


@functools.cache
def netns_available() -> bool:
    """Whether a loopback-only network namespace can be made here."""
    try:
        probe = subprocess.run(NETNS + ["true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def run_scenario(name: str, timeout_s: float = 90.0) -> dict:
    """Run a scenario in its own process (in a loopback-only netns where possible)."""
    command = [sys.executable, str(Path(__file__).resolve()), name]
    isolated = netns_available()
    if isolated:
        command = NETNS + command
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT,
                          env=env)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise AssertionError(f"browser scenario {name} failed ({done.returncode}):\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return {**json.loads(lines[-1]), "netns": isolated}


@contextlib.asynccontextmanager
async def browser_page(*extra_flags: str):
    """A playwright page in a fresh headless Chromium started with CHROMIUM_FLAGS."""
    from playwright.async_api import async_playwright

    profile = tempfile.mkdtemp(prefix="semstream-chromium-")
    process = await asyncio.create_subprocess_exec(
        chromium_path(), *CHROMIUM_FLAGS, *extra_flags, f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        endpoint = await asyncio.wait_for(_devtools_endpoint(process), 30)
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(endpoint)
            page = await browser.contexts[0].new_page()
            yield page
            await browser.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_endpoint(process: asyncio.subprocess.Process) -> str:
    while line := await process.stderr.readline():
        found = re.search(rb"DevTools listening on (ws://\S+)", line)
        if found:
            asyncio.ensure_future(_drain(process.stderr))
            return found.group(1).decode()
    raise RuntimeError("chromium exited before opening its DevTools endpoint")


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


def sample_frames(count: int) -> list:
    """The first `count` frames of samples/asl-again.mkv, RGB uint8 640 x 480 x 3."""
    import av

    frames = []
    with av.open(str(ROOT / "samples" / "asl-again.mkv")) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return frames


def write_y4m(frames: list, path: Path, fps: int = 30) -> None:
    """Write RGB frames as a .y4m clip (Chromium's fake webcam input)."""
    import fractions

    import av

    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


async def _wait_for(page, expression: str, timeout_s: float = 20.0) -> None:
    await page.wait_for_function(expression, timeout=timeout_s * 1000)


# -- scenarios ------------------------------------------------------------------------

class _Switch:
    """Stands in for the receiver's interpolation switch."""

    def __init__(self) -> None:
        self.on = False

    def set(self, on: bool) -> bool:
        self.on = on
        return on


async def scenario_viewer() -> dict:
    """The viewer plays a sample clip; the switch flips the receiver's state."""
    import numpy as np

    from stream.net.viewer import FrameInfo, Viewer

    clip = sample_frames(45)
    switch = _Switch()
    viewer = Viewer("127.0.0.1", 0,
                    stats=lambda: {"fps_in": 30.0, "fps_out": 30.0, "snr_db": 10.0,
                                   "channel_uses_per_frame": 5000, "mode": "key",
                                   "dropped": {"late": 0}, "interp": switch.on},
                    set_interp=switch.set)
    await viewer.start()

    async def feed() -> None:
        index = 0
        while True:
            viewer.push_frame(clip[index % len(clip)],
                              FrameInfo(index, "key", time.time()))
            index += 1
            await asyncio.sleep(1 / 30)

    feeder = asyncio.ensure_future(feed())
    result: dict = {}
    try:
        async with browser_page() as page:
            await page.goto(viewer.url)
            await _wait_for(page, "window.semstream.presented >= 10", 30)
            first = np.array(await page.evaluate("window.semstream.thumbnail()"))
            presented = await page.evaluate("window.semstream.presented")
            await asyncio.sleep(1.0)
            second = np.array(await page.evaluate("window.semstream.thumbnail()"))
            result["presented_in_1s"] = await page.evaluate("window.semstream.presented") \
                - presented
            result["mean_level"] = float(second.mean())
            result["frame_change"] = float(np.abs(second - first).mean())
            await _wait_for(page, "window.semstream.interp === false")
            await page.click("#interp")
            await _wait_for(page, "window.semstream.interp === true")
            result["switch_after_click"] = switch.on
            switch.set(False)  # the receiver changes state by itself: the page must follow
            await _wait_for(page, "window.semstream.interp === false", 5)
            result["page_follows_receiver"] = True
            result["page_pair"] = await page.evaluate("window.semstream.selectedPair()")
            result["server_pairs"] = viewer.selected_pairs()
            await asyncio.sleep(0.6)  # one more report of displayed frames
            result["viewer"] = viewer.stats()
    finally:
        feeder.cancel()
        await viewer.stop()
    return result


async def scenario_camera() -> dict:
    """Chromium's fake webcam plays a sample clip into BrowserSource."""
    import numpy as np

    from jscc.metrics import psnr
    from stream.net.browser_source import BrowserSource

    clip = sample_frames(60)
    folder = Path(tempfile.mkdtemp(prefix="semstream-y4m-"))
    y4m = folder / "asl-again.y4m"
    write_y4m(clip, y4m)
    source = BrowserSource("127.0.0.1", 0)
    await source.start()
    result: dict = {}
    try:
        async with browser_page("--use-fake-device-for-media-stream",
                                "--use-fake-ui-for-media-stream",
                                f"--use-file-for-fake-video-capture={y4m}") as page:
            await page.goto(source.url)
            frames = []
            start = time.monotonic()
            async for frame in source.frames(connect_timeout_s=30):
                frames.append(frame)
                if len(frames) == 45:
                    break
            took = time.monotonic() - start
            result["page_pair"] = await page.evaluate("window.semstream.selectedPair()")
            result["page_error"] = await page.evaluate("window.semstream.error")
        later = frames[15:]  # past the first key frames at low bitrate
        result["frames"] = len(frames)
        result["fps"] = (len(later) - 1) / (later[-1].captured - later[0].captured)
        result["seconds_to_45_frames"] = took
        result["shapes"] = sorted({f.image.shape for f in frames})
        result["indices_in_order"] = [f.index for f in frames] == list(range(len(frames)))
        pts = [f.pts for f in frames]
        result["pts_increasing"] = pts == sorted(set(pts))
        result["best_psnr_median"] = float(np.median(
            [max(psnr(ref, f.image) for ref in clip) for f in later[::5]]))
        result["server_pairs"] = source.selected_pairs()
    finally:
        await source.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return result


async def _start_live(folder: Path, *options: str) -> tuple[asyncio.subprocess.Process, str]:
    """``semstream live`` on the sample clip in a loop, and the page address it prints."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stream.cli", "live", str(ROOT / "samples" / "asl-again.mkv"),
        "--loop", "--view", "0", "--reports", str(folder), *options,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=ROOT)
    log = []
    while line := await asyncio.wait_for(process.stderr.readline(), 60):
        log.append(line.decode(errors="replace"))
        found = re.search(r"semstream live: open (http://\S+)", log[-1])
        if found:
            asyncio.ensure_future(_drain(process.stderr))
            return process, found.group(1)
    raise RuntimeError("semstream live ended before printing its address:\n" + "".join(log))


async def _live_window(page, key: str, seconds: float) -> float | None:
    """Mean of the page's live figure ``window[key]`` sampled over ``seconds``."""
    values = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = await page.evaluate(f"(window.semstream.live || {{}}).window?.{key}")
        if isinstance(value, int | float):
            values.append(float(value))
        await asyncio.sleep(0.25)
    return sum(values) / len(values) if values else None


async def _until(page, expression: str, timeout_s: float) -> float | None:
    """Seconds until ``expression`` holds on the page (polled), or None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if await page.evaluate(expression):
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    return None


async def scenario_live() -> dict:
    """``semstream live --original`` driven from its page: both panes play; the SNR
    slider and the mode reach the sender; a bad request is refused; Ctrl-C writes both
    reports."""
    import numpy as np

    folder = Path(tempfile.mkdtemp(prefix="semstream-live-"))
    process, url = await _start_live(folder, "--original", "--snr", "20")
    result: dict = {}
    try:
        async with browser_page() as page:
            await page.set_viewport_size({"width": 1500, "height": 1250})
            await page.goto(url)
            await _wait_for(page, "window.semstream.presented >= 10 && "
                                  "window.semstream.presentedOriginal >= 10", 45)
            first = {k: np.array(await page.evaluate(f"window.semstream.thumbnail('{k}')"))
                     for k in ("original", "rebuilt")}
            counts = await page.evaluate("[window.semstream.presented, "
                                         "window.semstream.presentedOriginal]")
            await asyncio.sleep(1.0)
            later = await page.evaluate("[window.semstream.presented, "
                                        "window.semstream.presentedOriginal]")
            result["presented_in_1s"] = [b - a for a, b in zip(counts, later, strict=True)]
            result["pane_change"] = {
                k: float(np.abs(np.array(await page.evaluate(
                    f"window.semstream.thumbnail('{k}')")) - first[k]).mean())
                for k in first}
            await _wait_for(page, "window.semstream.controlsReady && "
                                  "window.semstream.live.window.psnr != null", 20)
            result["sender_snr_before"] = await page.evaluate(
                "window.semstream.live.sender.snr_db")
            result["psnr_before"] = await _live_window(page, "psnr", 1.5)
            frames = "window.semstream.live.window.channel_uses_per_frame?.frames"
            # the SNR slider to 0 dB, as a user drags it
            await page.evaluate("""() => { const s = document.getElementById('snr');
                s.value = '0'; s.dispatchEvent(new Event('input'));
                s.dispatchEvent(new Event('change')); }""")
            result["snr_reported_after_s"] = await _until(
                page, "window.semstream.live.sender.snr_db === 0", 5)
            result["psnr_lower_after_s"] = await _until(
                page, f"window.semstream.live.window.psnr < {result['psnr_before']} - 1.0", 5)
            result["psnr_after"] = await _live_window(page, "psnr", 1.0)
            # the modes compared at the same SNR: the JSCC policy sends more at 0 dB than
            # at 20 dB, which alone can outweigh what fg-latent saves
            result["uses_proposed"] = await _live_window(page, "channel_uses_per_frame?.frames",
                                                         1.0)
            await page.select_option("#mode", "fg-latent")
            result["mode_reported_after_s"] = await _until(
                page, "window.semstream.live.sender.mode === 'fg-latent'", 5)
            await asyncio.sleep(1.5)  # a window of frames in the new mode
            result["uses_fg_latent"] = await _live_window(page, "channel_uses_per_frame?.frames",
                                                          1.0)
            result["frames_uses_now"] = await page.evaluate(frames)
            refused = await page.evaluate("window.semstream.setControl({snr_db: 99})")
            result["refused"] = {"status": refused["status"],
                                 "shown": await page.evaluate("window.semstream.controlStatus")}
            result["wrong_token_status"] = await page.evaluate("""async () => (await fetch(
                '/control', {method: 'POST', headers: {'X-Semstream-Token': 'nope'},
                body: JSON.stringify({snr_db: 5})})).status""")
            await page.check("#overlay-box")
            await asyncio.sleep(1.0)
            result["page_pair"] = await page.evaluate("window.semstream.selectedPair()")
            shot = os.environ.get("SEMSTREAM_SCREENSHOT")
            if shot:
                await page.screenshot(path=shot, full_page=True)
        process.send_signal(2)  # Ctrl-C
        result["exit_code"] = await asyncio.wait_for(process.wait(), 30)
        for end in ("sender", "receiver"):
            report = json.loads((folder / f"{end}.json").read_text())
            result[end] = {k: report.get(k) for k in ("end_reason", "frames_read",
                                                      "frames_delivered", "frames_dropped",
                                                      "controls", "selected_pairs")}
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        shutil.rmtree(folder, ignore_errors=True)
    return result


SCENARIOS = {"viewer": scenario_viewer, "camera": scenario_camera, "live": scenario_live}

if __name__ == "__main__":
    outcome = asyncio.run(SCENARIOS[sys.argv[1]]())
    print(json.dumps(outcome, default=list))
