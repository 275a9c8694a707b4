// Injected into the kiosk page by bench/preview.py: reads the frame number off every local
// camera frame and every returned preview frame, with the frames' timestamps from
// requestVideoFrameCallback.
//
// Pixels are read with WebCodecs (new VideoFrame(video).copyTo, only the panel's region, in
// the frame's own I420/NV12 planes): a canvas drawImage + getImageData costs about 5 ms a
// frame here, which on two cores would steal noticeably from the server being measured. The
// canvas path remains as the fallback for other pixel formats.
//
// The decoder is decode_panel in bench/preview.py, on YUV planes: the two markers are the
// pixels with both chroma components high (magenta), the cells are read from the luma plane.
"use strict";

(() => {
  // Panel layout: must match MARKER, GAP, CELL, CELLS, DATA_BITS in bench/preview.py.
  const MARKER = 36, GAP = 6, CELL = 17, CELLS = 10, DATA_BITS = 7;
  const SPAN = MARKER + 2 * GAP + CELLS * CELL; // between the markers' centres

  function crc3(value) {
    let register = 0b101;
    for (let bit = DATA_BITS - 1; bit >= 0; bit -= 1) {
      const top = (register >> 2) & 1;
      register = (register << 1) & 0b111;
      if (top ^ ((value >> bit) & 1)) register ^= 0b011;
    }
    return register;
  }

  let columns = new Int32Array(0), columnY = new Float64Array(0);

  // A picture to decode: luma(x, y) and magenta(cx, cy) on a chroma grid `sub` times coarser.
  // Returns the number or null; `found` gets the markers' bounding box in luma pixels.
  function decode(picture, found) {
    const { width, height, sub, chromaWidth, chromaHeight, luma, magenta } = picture;
    if (columns.length < chromaWidth) {
      columns = new Int32Array(chromaWidth);
      columnY = new Float64Array(chromaWidth);
    } else {
      columns.fill(0, 0, chromaWidth);
      columnY.fill(0, 0, chromaWidth);
    }
    let total = 0, top = chromaHeight, bottom = -1;
    for (let y = 0; y < chromaHeight; y += 1) {
      for (let x = 0; x < chromaWidth; x += 1) {
        if (magenta(x, y)) {
          columns[x] += 1;
          columnY[x] += y;
          total += 1;
          if (y < top) top = y;
          bottom = y;
        }
      }
    }
    if (total * sub * sub < 20) return null;
    // Split the magenta pixels at the widest run of columns without any: the two markers.
    let first = -1, previous = -1, bestGap = 0, split = -1;
    for (let x = 0; x < chromaWidth; x += 1) {
      if (!columns[x]) continue;
      if (first < 0) first = x;
      if (previous >= 0 && x - previous > bestGap) {
        bestGap = x - previous;
        split = previous + 1;
      }
      previous = x;
    }
    if (bestGap * sub < 8) return null;
    let ln = 0, lx = 0, ly = 0, rn = 0, rx = 0, ry = 0;
    for (let x = 0; x < chromaWidth; x += 1) {
      const n = columns[x];
      if (!n) continue;
      if (x < split) { ln += n; lx += x * n; ly += columnY[x]; } else { rn += n; rx += x * n; ry += columnY[x]; }
    }
    if (ln * sub * sub < 8 || rn * sub * sub < 8) return null;
    // Centres in luma pixels (a chroma sample covers sub x sub luma pixels).
    const c = (value) => (value + 0.5) * sub - 0.5;
    lx = c(lx / ln); ly = c(ly / ln); rx = c(rx / rn); ry = c(ry / rn);
    const distance = rx - lx;
    if (distance < 20 || Math.abs(ry - ly) > 0.3 * distance) return null;
    const radius = Math.max(1, Math.floor(0.25 * distance * CELL / SPAN));
    const samples = [];
    for (let i = 0; i < CELLS; i += 1) {
      const t = (MARKER / 2 + GAP + CELL * (i + 0.5)) / SPAN;
      const cx = Math.round(lx + t * (rx - lx)), cy = Math.round(ly + t * (ry - ly));
      let sum = 0, count = 0;
      for (let y = Math.max(0, cy - radius); y <= Math.min(height - 1, cy + radius); y += 1) {
        for (let x = Math.max(0, cx - radius); x <= Math.min(width - 1, cx + radius); x += 1) {
          sum += luma(x, y);
          count += 1;
        }
      }
      if (!count) return null;
      samples.push(sum / count);
    }
    const low = Math.min(...samples), high = Math.max(...samples);
    if (high - low < 60) return null;
    const threshold = (low + high) / 2;
    let word = 0;
    for (const s of samples) word = (word << 1) | (s < threshold ? 1 : 0);
    const value = word >> 3;
    if (crc3(value) !== (word & 0b111)) return null;
    Object.assign(found, { left: first * sub, right: (previous + 1) * sub - 1, top: top * sub, bottom: (bottom + 1) * sub - 1 });
    return value;
  }

  function rgbaPicture(data, width, height) {
    return {
      width, height, sub: 1, chromaWidth: width, chromaHeight: height,
      luma: (x, y) => {
        const i = (y * width + x) * 4;
        return 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
      },
      magenta: (x, y) => {
        const i = (y * width + x) * 4;
        const r = data[i], g = data[i + 1], b = data[i + 2];
        return r > 150 && b > 150 && g < 110 && r - g > 90 && b - g > 90;
      },
    };
  }

  // Magenta (255, 0, 255) has Cb about 212 and Cr about 235; greys have 128, and no hue the
  // paintings show has both above 170.
  const CHROMA_HIGH = 170;

  function yuvPicture(buffer, layout, format, width, height) {
    const [yl, ul, vl] = layout;
    const chromaWidth = width >> 1, chromaHeight = height >> 1;
    const luma = (x, y) => buffer[yl.offset + y * yl.stride + x];
    let magenta;
    if (format === "NV12") {
      magenta = (x, y) => {
        const i = ul.offset + y * ul.stride + 2 * x;
        return buffer[i] > CHROMA_HIGH && buffer[i + 1] > CHROMA_HIGH;
      };
    } else {
      magenta = (x, y) => buffer[ul.offset + y * ul.stride + x] > CHROMA_HIGH && buffer[vl.offset + y * vl.stride + x] > CHROMA_HIGH;
    }
    return { width, height, sub: 2, chromaWidth, chromaHeight, luma, magenta };
  }

  function region(left, top, right, bottom, width, height) {
    // The markers' box, widened for motion, on even coordinates (4:2:0 planes).
    const marginX = Math.round(0.4 * (right - left)), marginY = Math.round(1.5 * (bottom - top));
    const x = Math.max(0, left - marginX) & ~1, y = Math.max(0, top - marginY) & ~1;
    const x1 = Math.min(width, right + marginX + 2) & ~1, y1 = Math.min(height, bottom + marginY + 2) & ~1;
    return { x, y, w: x1 - x, h: y1 - y, width, height };
  }

  // Reads the number from the frame the video element shows now; null when it cannot.
  async function readFrame(video, state, width, height) {
    const roi = state.roi && state.roi.width === width && state.roi.height === height ? state.roi : null;
    const rects = roi ? [roi, { x: 0, y: 0, w: width & ~1, h: height & ~1, width, height }] : [{ x: 0, y: 0, w: width & ~1, h: height & ~1, width, height }];
    if (state.webcodecs) {
      let frame = null;
      try {
        frame = new VideoFrame(video);
        const format = frame.format;
        if (format === "I420" || format === "I420A" || format === "NV12") {
          for (const rect of rects) {
            const options = { rect: { x: rect.x, y: rect.y, width: rect.w, height: rect.h } };
            const buffer = new Uint8Array(frame.allocationSize(options));
            const layout = await frame.copyTo(buffer, options);
            const found = {};
            const number = decode(yuvPicture(buffer, layout, format, rect.w, rect.h), found);
            if (rect.w === (width & ~1) && rect.h === (height & ~1)) state.fullScans += 1;
            if (number !== null) {
              state.roi = region(rect.x + found.left, rect.y + found.top, rect.x + found.right, rect.y + found.bottom, width, height);
              return number;
            }
          }
          state.roi = null;
          return null;
        }
        state.otherFormats[format] = (state.otherFormats[format] || 0) + 1;
      } catch (error) {
        state.webcodecsErrors += 1;
        state.lastError = String(error);
        if (state.webcodecsErrors > 20) state.webcodecs = false;
      } finally {
        if (frame) frame.close();
      }
    }
    // Fallback: through a canvas, as RGBA.
    state.canvasReads += 1;
    if (state.canvas.width !== width || state.canvas.height !== height) {
      state.canvas.width = width;
      state.canvas.height = height;
    }
    state.context.drawImage(video, 0, 0, width, height);
    for (const rect of rects) {
      const found = {};
      const pixels = state.context.getImageData(rect.x, rect.y, rect.w, rect.h);
      const number = decode(rgbaPicture(pixels.data, rect.w, rect.h), found);
      if (rect.w === (width & ~1)) state.fullScans += 1;
      if (number !== null) {
        state.roi = region(rect.x + found.left, rect.y + found.top, rect.x + found.right, rect.y + found.bottom, width, height);
        return number;
      }
    }
    state.roi = null;
    return null;
  }

  function watch(video, onFrame) {
    const canvas = document.createElement("canvas");
    const state = {
      callbacks: 0, missed: 0, unread: 0, fullScans: 0, readMs: 0, canvasReads: 0, webcodecsErrors: 0,
      lastPresented: null, stopped: false, roi: null, canvas, webcodecs: "VideoFrame" in window,
      context: canvas.getContext("2d", { willReadFrequently: true }), otherFormats: {}, lastError: null,
    };
    const step = async (now, metadata) => {
      if (state.stopped) return;
      video.requestVideoFrameCallback(step);
      const started = performance.now();
      state.callbacks += 1;
      if (state.lastPresented !== null && metadata.presentedFrames > state.lastPresented + 1) {
        state.missed += metadata.presentedFrames - state.lastPresented - 1;
      }
      state.lastPresented = metadata.presentedFrames;
      const number = await readFrame(video, state, metadata.width, metadata.height);
      if (number === null) state.unread += 1;
      onFrame(number, metadata);
      state.readMs += performance.now() - started;
    };
    video.requestVideoFrameCallback(step);
    return state;
  }

  async function videoStats() {
    const peer = window.kioskPeer && window.kioskPeer();
    if (!peer) return null;
    const result = { at: performance.now() };
    for (const stat of (await peer.getStats()).values()) {
      if (stat.type === "inbound-rtp" && stat.kind === "video") result.inbound = stat;
      else if (stat.type === "outbound-rtp" && stat.kind === "video") result.outbound = stat;
      else if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded") result.pair = stat;
    }
    for (const key of ["inbound", "outbound", "pair"]) {
      if (result[key]) result[key] = JSON.parse(JSON.stringify(result[key]));
    }
    return result;
  }

  function counters(state) {
    const { canvas, context, roi, ...plain } = state;
    return plain;
  }

  const bench = {
    local: [], // [frame number, captureTime]
    remote: [], // [frame number, expectedDisplayTime, receiveTime, presentedFrames, width, height]
    localState: null,
    remoteState: null,
    firstLocal: null,
    firstRemote: null,

    start() {
      const camera = document.getElementById("camera").srcObject;
      const live = document.getElementById("live");
      if (!camera || !live.srcObject) throw new Error("the preview is not running");
      // A visible (tiny) element of our own: the page's hidden camera <video> presents no frames.
      const local = document.createElement("video");
      local.muted = true;
      local.playsInline = true;
      local.autoplay = true;
      local.style.cssText = "position:fixed;left:0;bottom:0;width:64px;height:48px;z-index:1000;";
      local.srcObject = camera;
      document.body.append(local);
      local.play();
      this.localState = watch(local, (number, m) => {
        if (this.firstLocal === null) this.firstLocal = m;
        if (number !== null) this.local.push([number, m.captureTime ?? null]);
      });
      this.remoteState = watch(live, (number, m) => {
        if (this.firstRemote === null) this.firstRemote = m;
        this.remote.push([number, m.expectedDisplayTime, m.receiveTime ?? null, m.presentedFrames, m.width, m.height]);
      });
    },

    async mark() {
      // The start of the measuring window: remote frames and counters from here on.
      this.remote = [];
      for (const state of [this.localState, this.remoteState]) {
        Object.assign(state, { callbacks: 0, missed: 0, unread: 0, fullScans: 0, readMs: 0, canvasReads: 0 });
      }
      return videoStats();
    },

    async collect() {
      const stats = await videoStats();
      const keys = (m) => (m ? Object.keys(m).filter((k) => m[k] !== undefined) : null);
      return {
        stats,
        local: this.local,
        remote: this.remote,
        localState: counters(this.localState),
        remoteState: counters(this.remoteState),
        firstLocalKeys: keys(this.firstLocal),
        firstRemoteKeys: keys(this.firstRemote),
      };
    },

    stop() {
      for (const state of [this.localState, this.remoteState]) if (state) state.stopped = true;
    },
  };
  window.__previewBench = bench;
})();
