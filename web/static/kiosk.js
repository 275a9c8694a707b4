// The booth's screen: attract -> choose -> live preview -> (privacy) -> (look) -> countdown -> processing -> result.
// Local asset, no libraries: booths are often offline.
"use strict";

const body = document.body;
const kioskId = body.dataset.kiosk;
const idleMs = Number(body.dataset.idleSeconds) * 1000;
const countdownSeconds = Number(body.dataset.countdownSeconds);
const heartbeatMs = Number(body.dataset.heartbeatSeconds) * 1000;
// The result screen keeps the QR code this long without a touch, counting down where the visitor sees it.
const resultSeconds = Number(body.dataset.resultSeconds);
// The visitor's language, and the museum's, which the booth returns to after each visitor.
const language = body.dataset.language;
const defaultLanguage = body.dataset.defaultLanguage;
const artworks = JSON.parse(document.getElementById("artworks").textContent);
// Every word this script writes, in the booth's language (web/visitor_text.py, from the catalogues).
const TEXT = JSON.parse(document.getElementById("booth-text").textContent);
const liveVideo = document.getElementById("live");
const cameraVideo = document.getElementById("camera");
// Requests carry the visitor's language where it is not the museum's (the server's default): the
// server answers in it and the photo's phone page opens in it.
const languageQuery = language === defaultLanguage ? "" : `?lang=${encodeURIComponent(language)}`;
const api = (action) => `/api/kiosks/${encodeURIComponent(kioskId)}/${action}${languageQuery}`;
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
let resultTicker = null;
// The camera as this booth found it, sent with every heartbeat for staff: ok, missing, denied
// (the browser or the visitor refused it) or insecure (not HTTPS, so the browser offers no camera).
let cameraState = "unknown";
let serverReachable = true;

function show(screen) {
  for (const section of document.querySelectorAll(".screen")) {
    section.classList.toggle("active", section.id === screen);
  }
  body.dataset.screen = screen;
  resetIdle();
}

// Back to the attract screen after a while without a touch; the result screen waits longer
// (resultSeconds), showing how long is left, so a visitor busy with their phone keeps the QR code.
function resetIdle() {
  clearTimeout(idleTimer);
  clearInterval(resultTicker);
  const onResult = body.dataset.screen === "result";
  const waitMs = onResult ? resultSeconds * 1000 : idleMs;
  const leavesAt = Date.now() + waitMs;
  idleTimer = setTimeout(() => {
    if (!capturing) goToAttract();
  }, waitMs);
  if (onResult) {
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((leavesAt - Date.now()) / 1000));
      document.getElementById("result-countdown").textContent = TEXT.result_leaves_in.replace("%(seconds)s", String(seconds));
    };
    tick();
    resultTicker = setInterval(tick, 1000);
  }
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
  // Each visitor starts in the museum's language: the page again, without the last visitor's choice.
  if (language !== defaultLanguage) {
    chooseLanguage(defaultLanguage);
    return;
  }
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
// Resolves to whether the server that answered has this booth's live preview (null: no answer).
async function announceChoice(artworkId) {
  try {
    const response = await post("artwork", { headers: { "Content-Type": "application/json" }, body: JSON.stringify({ artwork: artworkId }) });
    if (!response.ok) return null;
    const answer = await response.json();
    if (chosen === artworkId) {
      offeredLook = answer.look;
      body.dataset.offeredLook = offeredLook; // for diagnostics and the browser tests
    }
    return answer.live;
  } catch (error) {
    console.warn("announcing the artwork failed; the server picks the look:", error);
    return null;
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
    // Not live there: the booth's requests now reach another server node than its preview (behind a
    // proxy, after a node died or came back); the preview moves to the node that answered.
    if ((await choiceAnnounced) === false && chosen === artworkId && peer !== null) connect();
    return;
  }
  if (!(await startCamera())) return;
  show("preview");
  connect();
}

// ---- camera and WebRTC ----

async function startCamera() {
  if (camera) return true;
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    cameraProblem(window.isSecureContext ? "missing" : "insecure");
    return false;
  }
  try {
    camera = await openCamera();
  } catch (error) {
    cameraProblem(cameraStateOf(error));
    return false;
  }
  noteCamera("ok");
  cameraVideo.srcObject = camera;
  return true;
}

// getUserMedia's error, as staff need it: refused (by the browser's settings or a prompt) or not there.
function cameraStateOf(error) {
  if (error.name === "NotAllowedError" || error.name === "SecurityError") return window.isSecureContext ? "denied" : "insecure";
  return "missing"; // NotFoundError, OverconstrainedError, NotReadableError (in use or broken), AbortError
}

// The visitor is told to ask staff; staff see the diagnosis on Kiosks and Overview (the heartbeat).
function cameraProblem(state) {
  noteCamera(state);
  showProblem(TEXT.camera_unavailable_title, TEXT.camera_unavailable_text, goToAttract);
}

function noteCamera(state) {
  if (state === cameraState) return;
  cameraState = state;
  body.dataset.camera = state; // for diagnostics and the browser tests
  heartbeat();
}

// What the booth can tell without turning the camera on: no secure context, no camera device,
// or a camera the browser was told to refuse. A camera that is there counts as ok until it fails to open.
async function probeCamera() {
  if (!window.isSecureContext || !navigator.mediaDevices) return noteCamera("insecure");
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    if (!devices.some((device) => device.kind === "videoinput")) return noteCamera("missing");
    const permission = navigator.permissions ? await navigator.permissions.query({ name: "camera" }).catch(() => null) : null;
    noteCamera(permission && permission.state === "denied" ? "denied" : "ok");
  } catch (error) {
    console.warn("probing the camera failed:", error);
  }
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
  setStatus(TEXT.reconnecting);
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

const CAPTURE_TRIES = 3;
const CAPTURE_RETRY_MS = 2000;
const PROBLEM_TITLES = { 415: TEXT.problem_415, 422: TEXT.problem_422, 503: TEXT.problem_503 };

// A random id per press of the button, sent with every try of that capture.
function newCaptureId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// A dropped connection (the booth's server node died) or a busy answer is asked again with the same
// capture id: where several nodes share the workers, the node that answers picks up the same photo
// instead of composing it twice. The visitor keeps seeing the processing screen meanwhile.
async function postCapture(form) {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await post("capture", { body: form });
      if (response.status !== 503 || attempt >= CAPTURE_TRIES) return response;
    } catch (error) {
      if (attempt >= CAPTURE_TRIES) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, CAPTURE_RETRY_MS));
  }
}

async function capture() {
  if (capturing) return;
  capturing = true;
  document.getElementById("shoot").disabled = true;
  try {
    await countdown();
    const form = new FormData();
    form.append("artwork", chosen);
    if (chosenLook) form.append("look", chosenLook);
    form.append("capture_id", newCaptureId());
    const still = await grabStill().catch(() => null);
    if (still) form.append("photo", still, "still.jpg"); // without it the server uses the newest video frame
    show("processing");
    holdCameraUpload(true);
    const response = await postCapture(form);
    const result = await response.json().catch(() => ({ error: TEXT.problem_text }));
    if (!response.ok) {
      // The server's message says what happened: no photo arrived, nobody was seen, or it is busy.
      showProblem(PROBLEM_TITLES[response.status] || TEXT.problem_title, result.error, () => show("preview"));
      return;
    }
    document.getElementById("result-photo").src = result.image;
    document.getElementById("result-qr").src = result.qr_svg;
    body.dataset.downloadUrl = result.download_url;
    show("result");
  } catch (error) {
    showProblem(TEXT.problem_title, TEXT.problem_text, () => show("preview"));
  } finally {
    holdCameraUpload(false);
    capturing = false;
    document.getElementById("shoot").disabled = !serverReachable;
  }
}

// While the server composes, the camera's preview stream is not sent: the processing screen shows
// no preview, and encoding it here and decoding it there took cores the capture needs (a booth
// and its server often share one small machine). The server keeps the last camera frame. The
// changes are chained: a sender takes one setParameters at a time.
let cameraUploadChange = Promise.resolve();
function holdCameraUpload(held) {
  cameraUploadChange = cameraUploadChange.then(() => setCameraUpload(!held));
  return cameraUploadChange;
}

async function setCameraUpload(active) {
  const sender = peer && peer.getSenders().find((candidate) => candidate.track && candidate.track.kind === "video");
  if (!sender) return;
  try {
    const parameters = sender.getParameters();
    if (!parameters.encodings || !parameters.encodings.length) return;
    parameters.encodings.forEach((encoding) => { encoding.active = active; });
    await sender.setParameters(parameters);
  } catch (error) {
    console.info("the camera's upload could not be", active ? "resumed:" : "held:", error);
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
  title.textContent = TEXT.look_title;
  const choices = document.createElement("div");
  choices.className = "look-choices";
  for (const look of ["realistic", "painted"]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "primary look-choice";
    button.dataset.look = look;
    const name = document.createElement("strong");
    name.textContent = TEXT[`look_${look}_name`];
    const line = document.createElement("span");
    line.textContent = TEXT[`look_${look}_line`];
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
  back.textContent = TEXT.back;
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

// ---- languages: the page again in the chosen one (the camera is off on the attract screen) ----

function chooseLanguage(code) {
  const url = new URL(window.location.href);
  if (code === defaultLanguage) url.searchParams.delete("lang");
  else url.searchParams.set("lang", code);
  disconnect();
  window.location.replace(url.toString());
}

// ---- example photos on the attract screen (when staff allow them): one after another ----

function cycleExamples() {
  const examples = document.getElementById("attract-examples");
  if (!examples) return;
  const photos = [...examples.querySelectorAll("img")];
  if (photos.length < 2) return;
  let shown = 0;
  setInterval(() => {
    photos[shown].classList.remove("shown");
    shown = (shown + 1) % photos.length;
    photos[shown].classList.add("shown");
  }, Number(examples.dataset.seconds) * 1000);
}

// ---- the server's heartbeat: the booth is alive, and how its camera is; while the server cannot be
// reached the visitor sees "temporarily unavailable" and cannot start a photo, until it answers again ----

let heartbeatTimer = null;

async function heartbeat() {
  clearTimeout(heartbeatTimer);
  let reachable;
  try {
    const response = await post("heartbeat", { headers: { "Content-Type": "application/json" }, body: JSON.stringify({ camera: cameraState }) });
    reachable = response.status < 500;
  } catch (error) {
    reachable = false;
  }
  setReachable(reachable);
  // Unreachable: ask again soon, so the booth comes back by itself as soon as the server does.
  clearTimeout(heartbeatTimer); // one timer, even when a camera change sent a heartbeat meanwhile
  heartbeatTimer = setTimeout(heartbeat, reachable ? heartbeatMs : Math.min(heartbeatMs, 3000));
}

function setReachable(reachable) {
  serverReachable = reachable;
  body.dataset.server = reachable ? "reachable" : "unreachable";
  // The result screen stays as it is: its QR code works again as soon as the server does.
  document.getElementById("unavailable").hidden = reachable || body.dataset.screen === "result";
  document.getElementById("shoot").disabled = !reachable || capturing;
  document.getElementById("agree").disabled = !reachable;
}

// ---- wiring ----

document.addEventListener("pointerdown", resetIdle, true);
document.getElementById("attract").addEventListener("click", () => {
  if (!serverReachable) return;
  renderArtworks();
  show("choose");
});
for (const button of document.querySelectorAll("#attract .language")) {
  button.addEventListener("click", (event) => {
    event.stopPropagation(); // a language, not the start of a photo
    if (button.dataset.language !== language) chooseLanguage(button.dataset.language);
  });
}
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
// Another photo with the same painting (and look): straight back to the countdown.
document.getElementById("retake").addEventListener("click", () => {
  show("preview");
  capture();
});
probeCamera().finally(heartbeat);
cycleExamples();
// For diagnostics (and the browser tests): the live connection, to read getStats() from.
window.kioskPeer = () => peer;
show("attract");
