// The booth's screen: attract -> choose -> live preview -> (privacy) -> (look) -> countdown -> processing -> result.
// Local asset, no libraries: booths are often offline.
"use strict";

// What the visitor reads on the look choice (kept together, for the translation catalogues to come).
const LOOK_TEXT = {
  title: "How would you like to appear?",
  looks: {
    realistic: { name: "As you are", line: "Your photo, in the painting's colours and light" },
    painted: { name: "Painted in", line: "You, in the painting's own brushstrokes" },
  },
  back: "Back",
};

const body = document.body;
const kioskId = body.dataset.kiosk;
const idleMs = Number(body.dataset.idleSeconds) * 1000;
const countdownSeconds = Number(body.dataset.countdownSeconds);
const heartbeatMs = Number(body.dataset.heartbeatSeconds) * 1000;
const artworks = JSON.parse(document.getElementById("artworks").textContent);
const liveVideo = document.getElementById("live");
const cameraVideo = document.getElementById("camera");
const api = (action) => `/api/kiosks/${encodeURIComponent(kioskId)}/${action}`;
// Set when signed-in staff opened this page rather than the paired booth: their session's CSRF token.
const staffCsrf = body.dataset.staffCsrf;

// What the camera is asked for, in turn: as large as it runs at 25 fps or more, up to 1920x1080 (where
// the browser takes stills no larger than the stream, as Chromium on Linux does, the still is one of its
// frames), else its best at a lower rate: a camera that never reaches 25 fps still makes photos.
const CAMERA_REQUESTS = [
  { width: { ideal: 1920 }, height: { ideal: 1080 }, frameRate: { min: 25, ideal: 30 } },
  { width: { ideal: 1920 }, height: { ideal: 1080 }, frameRate: { ideal: 30 } },
];
// The live preview is sent to the server scaled to fit this, as large as before the camera was asked for
// more: the server mattes at 320 px, larger frames only cost decoding and drawing, and WebRTC starts them
// at a lower resolution than this until its bandwidth estimate grows (569x320 from 1920x1080, measured).
const PREVIEW_MAX_SIZE = { width: 640, height: 480 };

let chosen = null;
// The look the chosen artwork offers ("realistic", "painted" or "visitor": the visitor taps one), as the
// server answered the choice; null until it has. The visitor's tap, sent with the capture.
let offeredLook = null;
let chosenLook = null;
// Settles once the server has answered the latest choice (whatever it answered).
let choiceAnnounced = Promise.resolve();
let camera = null;
let peer = null;
let reconnectTimer = null;
let reconnectDelayMs = 1000;
let privacyAccepted = false;
let capturing = false;
let idleTimer = null;

function show(screen) {
  for (const section of document.querySelectorAll(".screen")) {
    section.classList.toggle("active", section.id === screen);
  }
  body.dataset.screen = screen;
  resetIdle();
}

function resetIdle() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (!capturing) goToAttract();
  }, idleMs);
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

function showProblem(title, text, retryScreen) {
  document.getElementById("problem-title").textContent = title;
  document.getElementById("problem-text").textContent = text;
  document.getElementById("retry").onclick = () => (retryScreen ? retryScreen() : goToAttract());
  show("problem");
}

// ---- talking to the server ----

// Every POST carries the booth header (another site cannot make a browser send it); the booth's
// credential travels in its cookie. 401/403: this screen is no longer paired (staff revoked it or
// paired another screen), so the page is loaded again and the server shows how to set it up.
async function post(action, options = {}) {
  const headers = { "X-ArtBooth-Booth": "1", ...(options.headers || {}) };
  if (staffCsrf) headers["X-CSRF-Token"] = staffCsrf;
  const response = await fetch(api(action), { ...options, method: "POST", headers });
  if (response.status === 401 || response.status === 403) {
    disconnect();
    window.location.reload();
    throw new Error(`the server refused this booth (${response.status})`);
  }
  return response;
}

function goToAttract() {
  disconnect();
  if (camera) {
    for (const track of camera.getTracks()) track.stop(); // the camera light goes off between visitors
    camera = null;
  }
  privacyAccepted = false;
  chosen = null;
  offeredLook = null;
  delete body.dataset.offeredLook;
  show("attract");
}

// ---- artworks ----

function artworkButton(artwork) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "artwork";
  button.dataset.artwork = artwork.id;
  const image = document.createElement("img");
  image.src = artwork.thumbnail_url;
  image.alt = artwork.title;
  const caption = document.createElement("span");
  caption.textContent = artwork.title;
  button.append(image, caption);
  button.addEventListener("click", () => choose(artwork.id));
  return button;
}

function renderArtworks() {
  for (const container of [document.getElementById("carousel"), document.getElementById("strip")]) {
    container.replaceChildren(...artworks.map(artworkButton));
  }
}

function markChosen() {
  for (const button of document.querySelectorAll(".artwork")) {
    button.classList.toggle("chosen", button.dataset.artwork === chosen);
  }
}

// Tell the server the choice: it answers the look the artwork offers (staff may have changed it
// since this page was loaded) and, with a live preview, swaps the painting from its next frame.
async function announceChoice(artworkId) {
  try {
    const response = await post("artwork", { headers: { "Content-Type": "application/json" }, body: JSON.stringify({ artwork: artworkId }) });
    if (response.ok && chosen === artworkId) {
      offeredLook = (await response.json()).look;
      body.dataset.offeredLook = offeredLook; // for diagnostics and the browser tests
    }
  } catch (error) {
    console.warn("announcing the artwork failed; the server picks the look:", error);
  }
}

async function choose(artworkId) {
  const switching = chosen !== null && peer !== null;
  chosen = artworkId;
  offeredLook = null;
  delete body.dataset.offeredLook;
  markChosen();
  choiceAnnounced = announceChoice(artworkId);
  if (switching) {
    await choiceAnnounced;
    return;
  }
  if (!(await startCamera())) return;
  show("preview");
  connect();
}

// ---- camera and WebRTC ----

async function startCamera() {
  if (camera) return true;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showProblem("The camera is not available", "This screen cannot use a camera. Please ask the museum staff for help.", goToAttract);
    return false;
  }
  try {
    camera = await openCamera();
  } catch (error) {
    const blocked = error.name === "NotAllowedError" || error.name === "SecurityError";
    const missing = error.name === "NotFoundError" || error.name === "OverconstrainedError";
    showProblem(
      blocked ? "The camera is switched off for this screen" : missing ? "No camera is connected" : "The camera is not available",
      "Please ask the museum staff for help.",
      goToAttract,
    );
    return false;
  }
  cameraVideo.srcObject = camera;
  return true;
}

async function openCamera() {
  for (const [index, video] of CAMERA_REQUESTS.entries()) {
    try {
      return await navigator.mediaDevices.getUserMedia({ video, audio: false });
    } catch (error) {
      if (error.name !== "OverconstrainedError" || index === CAMERA_REQUESTS.length - 1) throw error;
      console.info("the camera does not reach 25 fps; taking its best rate:", error.constraint);
    }
  }
}

function disconnect() {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  if (peer) {
    const old = peer;
    peer = null;
    old.close();
  }
  liveVideo.srcObject = null;
}

function scheduleReconnect() {
  if (reconnectTimer || !camera || chosen === null) return;
  setStatus("Reconnecting…");
  reconnectTimer = setTimeout(() => {
    reconnectTimer = null;
    connect();
  }, reconnectDelayMs);
  reconnectDelayMs = Math.min(reconnectDelayMs * 2, 10000);
}

function iceGatheringComplete(connection) {
  // The server does not trickle: the offer goes out with every candidate in it.
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (connection.iceGatheringState === "complete") {
        connection.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    connection.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000);
  });
}

async function connect() {
  disconnect();
  const connection = new RTCPeerConnection({ iceServers: [] });
  peer = connection;
  const track = camera.getVideoTracks()[0];
  const { width = 0, height = 0 } = track.getSettings();
  const scaleResolutionDownBy = Math.max(1, width / PREVIEW_MAX_SIZE.width, height / PREVIEW_MAX_SIZE.height);
  connection.addTransceiver(track, { direction: "sendrecv", streams: [camera], sendEncodings: [{ scaleResolutionDownBy }] });
  connection.addEventListener("track", (event) => {
    liveVideo.srcObject = new MediaStream([event.track]);
  });
  connection.addEventListener("connectionstatechange", () => {
    if (connection !== peer) return;
    const state = connection.connectionState;
    body.dataset.connection = state;
    if (state === "connected") {
      reconnectDelayMs = 1000;
      setStatus("");
    } else if (state === "failed" || state === "closed") {
      scheduleReconnect();
    } else if (state === "disconnected") {
      // Often a blip that ICE recovers from by itself; reconnect only if it does not.
      setTimeout(() => {
        if (connection === peer && connection.connectionState === "disconnected") scheduleReconnect();
      }, 3000);
    }
  });
  try {
    await connection.setLocalDescription(await connection.createOffer());
    await iceGatheringComplete(connection);
    const response = await post("offer", {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: connection.localDescription.sdp, type: connection.localDescription.type, artwork: chosen }),
    });
    if (!response.ok) throw new Error((await response.json()).error);
    if (connection !== peer) return; // replaced meanwhile
    await connection.setRemoteDescription(await response.json());
  } catch (error) {
    if (connection === peer) {
      console.warn("connecting the preview failed:", error);
      scheduleReconnect();
    }
  }
}

// ---- capture ----

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function countdown() {
  const display = document.getElementById("countdown");
  for (let n = countdownSeconds; n > 0; n -= 1) {
    display.textContent = String(n);
    await sleep(1000);
  }
  display.textContent = "";
}

// The camera's still at the largest size it offers (photoCapabilities), which may be larger than the
// video stream; else (no ImageCapture, or it failed) the video frame: a capture never fails for this.
async function grabStill() {
  const track = camera.getVideoTracks()[0];
  if ("ImageCapture" in window) {
    try {
      const imageCapture = new ImageCapture(track);
      return await imageCapture.takePhoto(await largestPhotoSize(imageCapture));
    } catch (error) {
      console.info("the camera's still is not available, grabbing the video frame:", error);
    }
  } else {
    console.info("this browser has no ImageCapture: grabbing the video frame");
  }
  const canvas = document.createElement("canvas");
  canvas.width = cameraVideo.videoWidth;
  canvas.height = cameraVideo.videoHeight;
  canvas.getContext("2d").drawImage(cameraVideo, 0, 0);
  return await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
}

async function largestPhotoSize(imageCapture) {
  const { imageWidth, imageHeight } = await imageCapture.getPhotoCapabilities();
  // A camera that announces no sizes (empty ranges) takes its still at the size the browser chooses.
  if (!(imageWidth?.max > 0 && imageHeight?.max > 0)) return {};
  return { imageWidth: imageWidth.max, imageHeight: imageHeight.max };
}

const PROBLEM_TITLES = {
  415: "The picture did not come through",
  422: "We could not see you",
  503: "One moment, please",
};

async function capture() {
  if (capturing) return;
  capturing = true;
  document.getElementById("shoot").disabled = true;
  try {
    await countdown();
    const form = new FormData();
    form.append("artwork", chosen);
    if (chosenLook) form.append("look", chosenLook);
    const still = await grabStill().catch(() => null);
    if (still) form.append("photo", still, "still.jpg"); // without it the server uses the newest video frame
    show("processing");
    const response = await post("capture", { body: form });
    const result = await response.json().catch(() => ({ error: "Sorry, that did not work. Please try again." }));
    if (!response.ok) {
      // The server's message says what happened: no photo arrived, nobody was seen, or it is busy.
      showProblem(PROBLEM_TITLES[response.status] || "Let's try that again", result.error, () => show("preview"));
      return;
    }
    document.getElementById("result-photo").src = result.image;
    document.getElementById("result-qr").src = result.qr_svg;
    body.dataset.downloadUrl = result.download_url;
    show("result");
  } catch (error) {
    showProblem("Let's try that again", "Sorry, that did not work. Please try again.", () => show("preview"));
  } finally {
    capturing = false;
    document.getElementById("shoot").disabled = false;
  }
}

// ---- the look: where the artwork leaves it to the visitor, two big buttons before the countdown ----

function buildLookScreen() {
  const section = document.createElement("section");
  section.id = "look";
  section.className = "screen overlay";
  const card = document.createElement("div");
  card.className = "card looks";
  const title = document.createElement("h2");
  title.textContent = LOOK_TEXT.title;
  const choices = document.createElement("div");
  choices.className = "look-choices";
  for (const [look, text] of Object.entries(LOOK_TEXT.looks)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "primary look-choice";
    button.dataset.look = look;
    const name = document.createElement("strong");
    name.textContent = text.name;
    const line = document.createElement("span");
    line.textContent = text.line;
    button.append(name, line);
    button.addEventListener("click", () => {
      chosenLook = look;
      show("preview");
      capture();
    });
    choices.append(button);
  }
  const back = document.createElement("button");
  back.type = "button";
  back.className = "secondary";
  back.textContent = LOOK_TEXT.back;
  back.addEventListener("click", () => show("preview"));
  card.append(title, choices, back);
  section.append(card);
  document.getElementById("processing").before(section);
}

// After the privacy notice: the visitor's look where the artwork offers the choice, else straight to the countdown.
async function startCapture() {
  chosenLook = null;
  await choiceAnnounced; // a visitor quicker than the server still gets the choice
  if (offeredLook === "visitor") show("look");
  else capture();
}

// ---- wiring ----

document.addEventListener("pointerdown", resetIdle, true);
document.getElementById("attract").addEventListener("click", () => {
  renderArtworks();
  show("choose");
});
buildLookScreen();
document.getElementById("shoot").addEventListener("click", () => {
  if (privacyAccepted) startCapture();
  else show("privacy");
});
document.getElementById("agree").addEventListener("click", () => {
  privacyAccepted = true;
  show("preview");
  startCapture();
});
document.getElementById("decline").addEventListener("click", () => show("preview"));
document.getElementById("done").addEventListener("click", goToAttract);
setInterval(() => post("heartbeat").catch(() => {}), heartbeatMs);
// For diagnostics (and the browser tests): the live connection, to read getStats() from.
window.kioskPeer = () => peer;
show("attract");
