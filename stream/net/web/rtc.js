// Shared by the viewer and webcam pages: offer/answer with the Python peer over HTTP,
// and what the tests read back (the selected ICE candidate pair).
"use strict";

// Create the offer, wait until ICE gathering completes (no trickle), post it to
// `url` and apply the answer; returns the answer's JSON (with any extra fields).
async function negotiate(pc, url) {
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      const check = () => {
        if (pc.iceGatheringState === "complete") {
          pc.removeEventListener("icegatheringstatechange", check);
          resolve();
        }
      };
      pc.addEventListener("icegatheringstatechange", check);
    });
  }
  const reply = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({sdp: pc.localDescription.sdp, type: pc.localDescription.type}),
  });
  if (!reply.ok) throw new Error(`offer refused: ${reply.status} ${await reply.text()}`);
  const answer = await reply.json();
  await pc.setRemoteDescription({sdp: answer.sdp, type: answer.type});
  return answer;
}

// {local, remote} addresses of the nominated candidate pair, or null before ICE ends.
async function selectedPair(pc) {
  const stats = await pc.getStats();
  let transport = null;
  stats.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId) transport = s; });
  const pair = transport && stats.get(transport.selectedCandidatePairId);
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return {local: local.address || local.ip, remote: remote.address || remote.ip};
}
