// The viewer page: plays the receiver's video track, shows its stats, and switches
// interpolation through POST /interp. The state shown is the receiver's, from /stats.
"use strict";

const video = document.getElementById("video");
const button = document.getElementById("interp");
const stateLabel = document.getElementById("interp-state");
const statusLine = document.getElementById("status");
const table = document.querySelector("#stats tbody");

// Read by the browser tests.
const semstream = window.semstream = {presented: 0, interp: null, pc: null, error: null};
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
semstream.thumbnail = () => {
  const canvas = document.createElement("canvas");
  canvas.width = 32;
  canvas.height = 24;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const grey = [];
  for (let i = 0; i < data.length; i += 4) grey.push((data[i] + data[i + 1] + data[i + 2]) / 3);
  return grey;
};
semstream.selectedPair = () => selectedPair(semstream.pc);

async function start() {
  const pc = semstream.pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addEventListener("track", (event) => {
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
