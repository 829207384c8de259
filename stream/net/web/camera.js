// The webcam page: getUserMedia, then offer the camera's video track to the sender.
"use strict";

const statusLine = document.getElementById("status");
const semstream = window.semstream = {pc: null, error: null, state: "starting"};
semstream.selectedPair = () => selectedPair(semstream.pc);

async function start() {
  const config = await (await fetch("/config")).json();
  const stream = await navigator.mediaDevices.getUserMedia({
    video: {width: config.width, height: config.height, frameRate: config.fps},
    audio: false,
  });
  document.getElementById("preview").srcObject = stream;
  const pc = semstream.pc = new RTCPeerConnection({iceServers: []});
  const [track] = stream.getVideoTracks();
  const sender = pc.addTrack(track, stream);
  try {  // keep the asked size under load; a browser without the option scales down
    const params = sender.getParameters();
    params.degradationPreference = "maintain-resolution";
    await sender.setParameters(params);
  } catch (err) {
    console.info(`degradationPreference not set: ${err}`);
  }
  pc.addEventListener("connectionstatechange", () => {
    semstream.state = pc.connectionState;
    statusLine.textContent = `streaming to the sender: ${pc.connectionState}`;
  });
  await negotiate(pc, "/offer");
}

start().catch((err) => {
  semstream.error = String(err);
  statusLine.textContent = `could not start: ${err}`;
});
