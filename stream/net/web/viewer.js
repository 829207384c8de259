// The viewer page: plays the receiver's video track, shows its stats, and switches
// interpolation through POST /interp. The state shown is the receiver's, from /stats.
// With `semstream live` it also plays the original (local) track beside it, draws live
// charts, and sends the controls to POST /control with the session token from the
// address (#token=...); the state it shows is what each end reports, never the controls'.
"use strict";

const video = document.getElementById("video");
const button = document.getElementById("interp");
const stateLabel = document.getElementById("interp-state");
const statusLine = document.getElementById("status");
const table = document.querySelector("#stats tbody");

// Read by the browser tests.
const semstream = window.semstream = {
  presented: 0, presentedOriginal: 0, interp: null, pc: null, error: null,
  live: null, controlStatus: "", controlsReady: false,
};
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const originalVideo = document.getElementById("original");
const form = document.getElementById("controls");
const chartsBox = document.getElementById("charts");
let charts = null;
let touched = false;  // the controls show the sender's state until the user changes one
let pageId = null;
let displayed = [];  // [rtpTimestamp, display time (ms since the epoch)] not yet reported

const LABELS = [
  ["fps_in", "frames/s in"], ["fps_out", "frames/s out"],
  ["channel_uses_per_frame", "channel uses / frame"], ["channel_uses_per_s", "channel uses / s"],
  ["snr_db", "SNR (dB)"], ["mode", "mode of current frame"],
  ["interp_method", "interpolation method (DIS takes over when RIFE falls behind)"],
];

function showInterp(state) {
  semstream.interp = state;
  stateLabel.textContent = state === null ? "unknown" : (state ? "on" : "off");
  stateLabel.className = state === null ? "" : (state ? "on" : "off");
  button.textContent = state ? "Turn interpolation off" : "Turn interpolation on";
}

function format(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(2);
  if (value && typeof value === "object") {
    const parts = Object.entries(value).map(([k, v]) => `${k}: ${format(v)}`);
    return parts.length ? parts.join(", ") : "none";
  }
  return value === null || value === undefined ? "–" : String(value);
}

function render(stats) {
  const receiver = stats.receiver || {};
  const rows = LABELS.filter(([key]) => key in receiver).map(([key, label]) => [label, receiver[key]]);
  if (!("mode" in receiver) && stats.frame) rows.push(["mode of current frame", stats.frame.mode]);
  rows.push(["frames dropped (why)", receiver.dropped || {}]);
  const known = new Set(LABELS.map(([key]) => key).concat(["dropped", "interp"]));
  for (const [key, value] of Object.entries(receiver)) if (!known.has(key)) rows.push([key, value]);
  rows.push(["viewer frames out / dropped", `${stats.viewer.frames_out} / ${stats.viewer.dropped}`]);
  rows.push(["frames shown here", semstream.presented]);
  table.replaceChildren(...rows.map(([label, value]) => {
    const tr = document.createElement("tr");
    for (const text of [label, format(value)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    return tr;
  }));
  button.disabled = !stats.interp_switch;
  showInterp(stats.interp);
  if (stats.live) renderLive(stats.live);
}

// -- semstream live: both ends' state, charts, controls ---------------------------------

function makeCharts() {
  chartsBox.hidden = false;
  const chart = (title, series, unit) => new LineChart(chartsBox, title, series, unit);
  return {
    psnr: chart("PSNR against the original (measured locally, whole frame and foreground)", [
      {key: "psnr", label: "whole", color: "#1f5fbf"},
      {key: "psnr_fg", label: "foreground", color: "#c2410c"}], "dB"),
    perFrame: chart("channel uses per frame received, by kind", [
      {key: "frames", label: "frames", color: "#1f5fbf"},
      {key: "backgrounds", label: "backgrounds", color: "#15803d"},
      {key: "side_info", label: "side info", color: "#9333ea"}], "uses"),
    perSecond: chart("channel uses per second", [
      {key: "total", label: "all", color: "#111"},
      {key: "frames", label: "frames", color: "#1f5fbf"},
      {key: "backgrounds", label: "backgrounds", color: "#15803d"}], "uses/s"),
    fps: chart("frames per second", [
      {key: "sender_in", label: "read by sender", color: "#111"},
      {key: "fps_in", label: "received", color: "#1f5fbf"},
      {key: "fps_out", label: "rebuilt", color: "#15803d"},
      {key: "fps_shown", label: "sent to page", color: "#c2410c"}], "fps"),
    latency: chart("latency from capture", [
      {key: "latency_ms", label: "to rebuilt", color: "#1f5fbf"},
      {key: "glass_to_glass_ms", label: "to shown (glass to glass)", color: "#c2410c"}], "ms"),
    rate: chart("JSCC rate level chosen by the policy (0-4) and SNR", [
      {key: "rate_level", label: "rate level", color: "#1f5fbf"},
      {key: "snr_db", label: "sender SNR dB", color: "#9333ea"}], ""),
  };
}

function describeSender(s) {
  if (!s || s.snr_db === undefined) return "not heard from yet";
  return `SNR ${s.snr_db} dB, ${s.channel}, ${s.mode}, skip ${s.skip || "off"} ` +
    `(read ${s.frames_read} frames, reported ${s.age_s} s ago)`;
}

function renderLive(live) {
  semstream.live = live;
  form.hidden = false;
  document.querySelector("h1").textContent = "semstream live: sender -> simulated channel -> receiver";
  if (!charts) charts = makeCharts();
  const w = live.window || {};
  const s = live.sender || {};
  const t = performance.now() / 1000;
  charts.psnr.add(t, w);
  charts.perFrame.add(t, w.channel_uses_per_frame || {});
  const perS = w.channel_uses_per_s || {};
  const total = perS.frames === undefined ? null : perS.frames + perS.backgrounds + perS.side_info;
  charts.perSecond.add(t, {...perS, total});
  charts.fps.add(t, {...w, sender_in: s.fps_in});
  charts.latency.add(t, w);
  charts.rate.add(t, {rate_level: w.rate_level, snr_db: s.snr_db});
  document.getElementById("sender-state").textContent = describeSender(s);
  const r = live.receiver || {};
  document.getElementById("receiver-state").textContent =
    `interpolation ${r.interp}, skip ${r.skip || "off"}, last frame ${r.mode || "–"}`;
  if (!touched && s.snr_db !== undefined) {
    setSnr(s.snr_db);
    document.getElementById("channel").value = s.channel;
    document.getElementById("mode").value = s.mode;
    document.getElementById("skip").value = String(s.skip);
    if (r.interp) document.getElementById("interp-method").value = r.interp;
    semstream.controlsReady = true;
  }
}

function setSnr(value) {
  document.getElementById("snr").value = value;
  document.getElementById("snr-value").textContent = `${value} dB`;
}

function showControlStatus(text, refused) {
  const line = document.getElementById("control-status");
  line.textContent = text;
  line.className = refused ? "off" : "on";
  semstream.controlStatus = text;
}

// Send one change; the page then shows what the ends report (poll), not the control.
semstream.setControl = async (body) => {
  touched = true;
  const reply = await fetch("/control", {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Semstream-Token": token},
    body: JSON.stringify(body),
  });
  const text = await reply.text();
  let answer = {};
  try { answer = JSON.parse(text); } catch (err) { answer = {error: text}; }
  if (reply.ok) {
    showControlStatus(`applied: ${JSON.stringify(body)}`, false);
    renderLive(answer);
  } else {
    showControlStatus(`refused: ${answer.error || text}`, true);
  }
  touched = false;
  return {ok: reply.ok, status: reply.status, answer};
};

async function setOverlay(name, on) {
  const reply = await fetch("/overlay", {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Semstream-Token": token},
    body: JSON.stringify({[name]: on}),
  });
  if (!reply.ok) showControlStatus(`overlay refused: ${await reply.text()}`, true);
}

document.getElementById("snr").addEventListener("input", (e) => {
  touched = true;
  document.getElementById("snr-value").textContent = `${e.target.value} dB`;
});
document.getElementById("snr").addEventListener("change", (e) =>
  semstream.setControl({snr_db: Number(e.target.value)}));
for (const [id, key, parse] of [["channel", "channel", String], ["mode", "mode", String],
  ["skip", "skip", Number], ["interp-method", "interp", String]]) {
  document.getElementById(id).addEventListener("change", (e) =>
    semstream.setControl({[key]: parse(e.target.value)}));
}
for (const name of ["box", "mask", "interp"]) {
  document.getElementById(`overlay-${name}`).addEventListener("change", (e) =>
    setOverlay(name, e.target.checked));
}

async function poll() {
  try {
    const reply = await fetch("/stats", {cache: "no-store"});
    if (reply.ok) render(await reply.json());
  } catch (err) {
    statusLine.textContent = `stats unavailable: ${err}`;
  }
}

button.addEventListener("click", async () => {
  button.disabled = true;
  try {
    const reply = await fetch("/interp", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({on: !semstream.interp}),
    });
    if (reply.ok) showInterp((await reply.json()).on);
    else statusLine.textContent = `switch refused: ${await reply.text()}`;
  } finally {
    button.disabled = false;
  }
});

function countOriginal() {
  semstream.presentedOriginal += 1;
  originalVideo.requestVideoFrameCallback(countOriginal);
}

function countFrames(now, metadata) {
  semstream.presented += 1;
  if (metadata.rtpTimestamp !== undefined) {
    displayed.push([metadata.rtpTimestamp, performance.timeOrigin + metadata.expectedDisplayTime]);
  }
  video.requestVideoFrameCallback(countFrames);
}

// Tell the viewer when each frame was displayed (it works out glass-to-glass latency).
async function reportDisplayed() {
  if (pageId === null || displayed.length === 0) return;
  const frames = displayed.splice(0, displayed.length);
  await fetch("/displayed", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({page: pageId, frames}),
  });
}

// The frame on screen as a 32 x 24 grey thumbnail (values 0..255), row by row.
semstream.thumbnail = (which) => {
  const source = which === "original" ? originalVideo : video;
  const canvas = document.createElement("canvas");
  canvas.width = 32;
  canvas.height = 24;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const grey = [];
  for (let i = 0; i < data.length; i += 4) grey.push((data[i] + data[i + 1] + data[i + 2]) / 3);
  return grey;
};
semstream.selectedPair = () => selectedPair(semstream.pc);

async function start() {
  const first = await (await fetch("/stats", {cache: "no-store"})).json();
  const pc = semstream.pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  if (first.original) {  // the second transceiver carries the original frames
    pc.addTransceiver("video", {direction: "recvonly"});
    document.getElementById("original-pane").hidden = false;
  }
  pc.addEventListener("track", (event) => {
    if (pc.getTransceivers().indexOf(event.transceiver) === 1) {
      originalVideo.srcObject = new MediaStream([event.track]);
      originalVideo.requestVideoFrameCallback(countOriginal);
      return;
    }
    video.srcObject = new MediaStream([event.track]);
    video.requestVideoFrameCallback(countFrames);
  });
  pc.addEventListener("connectionstatechange", () => {
    statusLine.textContent = `connection: ${pc.connectionState}`;
  });
  pageId = (await negotiate(pc, "/offer")).page;
}

start().catch((err) => {
  semstream.error = String(err);
  statusLine.textContent = `could not connect: ${err}`;
});
poll();
setInterval(() => { poll(); reportDisplayed().catch(() => {}); }, 500);
