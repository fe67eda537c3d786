// ferlab page: upload a photo or stream the webcam to /v1/predict, draw faces, optionally explain them.
// Plain browser JavaScript, no build step and no external resource.
"use strict";

(() => {
  const FPS = 4;                       // webcam frames per second sent to the server (one in flight at most)
  const CAPTURE_MAX_WIDTH = 640;       // webcam frames are downscaled before upload
  const EXPLAIN_EVERY_MS = 2000;       // webcam explanations are refreshed at most this often
  const COLORS = {
    angry: "#e53935", disgust: "#43a047", fear: "#8e24aa", happy: "#fbc02d",
    sad: "#1e88e5", surprise: "#fb8c00", neutral: "#9e9e9e",
    positive: "#fbc02d", negative: "#e53935",
  };
  const FALLBACK = ["#26a69a", "#ec407a", "#7e57c2", "#8d6e63", "#5c6bc0"];

  const $ = (id) => document.getElementById(id);
  const el = {
    modePhoto: $("mode-photo"), modeCamera: $("mode-camera"), photoPanel: $("photo-panel"),
    cameraPanel: $("camera-panel"), drop: $("drop-zone"), choose: $("choose-file"), file: $("file-input"),
    start: $("camera-start"), stop: $("camera-stop"), camMsg: $("camera-message"), explain: $("explain-toggle"),
    stage: $("stage"), frame: $("frame"), photo: $("photo"), video: $("video"), canvas: $("overlay"),
    placeholder: $("placeholder"), status: $("status"), faces: $("faces"), modelInfo: $("model-info"),
  };

  const state = {
    mode: "photo", lastFile: null, lastFaces: [], stream: null, timer: null, upload: 0,
    inFlight: false, explainInFlight: false, lastExplainAt: 0, explanations: new Map(), frames: 0,
  };

  function colorFor(label) {
    if (COLORS[label]) return COLORS[label];
    let h = 0;
    for (const ch of label) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return FALLBACK[h % FALLBACK.length];
  }

  const pct = (p) => `${Math.round(p * 100)}%`;

  function setStatus(text, isError = false) {
    el.status.textContent = text;
    el.status.classList.toggle("error", isError);
  }

  async function errorMessage(resp) {
    try {
      const body = await resp.json();
      if (body && body.error) return body.error.message;
    } catch (_) { /* not JSON */ }
    return `${resp.status} ${resp.statusText}`;
  }

  async function postImage(url, blob, fields = {}) {
    const form = new FormData();
    form.append("file", blob, blob.name || "frame.jpg");
    for (const [key, value] of Object.entries(fields)) form.append(key, String(value));
    const resp = await fetch(url, { method: "POST", body: form });
    if (!resp.ok) throw new Error(await errorMessage(resp));
    return resp.json();
  }

  // ---- drawing -----------------------------------------------------------------------------------

  function sortedProbs(probs) {
    return Object.entries(probs).sort((a, b) => b[1] - a[1]);
  }

  function drawFaces(faces, srcWidth, srcHeight) {
    const c = el.canvas;
    const ctx = c.getContext("2d");
    const scaleX = c.width / srcWidth;
    const scaleY = c.height / srcHeight;
    ctx.clearRect(0, 0, c.width, c.height);
    const unit = Math.max(1, c.width / 500);
    ctx.textBaseline = "top";
    faces.forEach((face, i) => {
      const [x, y, w, h] = [face.box[0] * scaleX, face.box[1] * scaleY, face.box[2] * scaleX, face.box[3] * scaleY];
      const color = colorFor(face.label);
      ctx.lineWidth = 3 * unit;
      ctx.strokeStyle = color;
      ctx.strokeRect(x, y, w, h);
      // label tag above the box (below it when there is no room)
      const text = `${i + 1}. ${face.label} ${pct(face.probs[face.label] ?? 0)}`;
      ctx.font = `600 ${Math.round(15 * unit)}px system-ui, sans-serif`;
      const tw = ctx.measureText(text).width + 10 * unit;
      const th = 22 * unit;
      const ty = y - th >= 0 ? y - th : y + h;
      ctx.fillStyle = color;
      ctx.fillRect(x - ctx.lineWidth / 2, ty, tw, th);
      ctx.fillStyle = "#111";
      ctx.fillText(text, x + 5 * unit - ctx.lineWidth / 2, ty + 4 * unit);
      // top-3 probability bars inside the bottom of the box
      const rows = sortedProbs(face.probs).slice(0, 3);
      const rowH = 14 * unit;
      const barX = x + 4 * unit;
      const barW = Math.max(w - 8 * unit, 40 * unit);
      let by = y + h - rows.length * rowH - 4 * unit;
      ctx.font = `${Math.round(11 * unit)}px system-ui, sans-serif`;
      for (const [name, p] of rows) {
        ctx.fillStyle = "rgba(0,0,0,0.55)";
        ctx.fillRect(barX, by, barW, rowH - 2 * unit);
        ctx.fillStyle = colorFor(name);
        ctx.fillRect(barX, by, barW * p, rowH - 2 * unit);
        ctx.fillStyle = "#fff";
        ctx.fillText(`${name} ${pct(p)}`, barX + 3 * unit, by + 1 * unit);
        by += rowH;
      }
    });
    c.dataset.faces = String(faces.length);
    c.dataset.labels = faces.map((f) => f.label).join(",");
  }

  function barsList(entries, className = "bars") {
    const dl = document.createElement("dl");
    dl.className = className;
    entries.forEach(([name, p], i) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.className = "bar";
      dd.setAttribute("role", "img");
      dd.setAttribute("aria-label", `${name} ${pct(p)}`);
      const fill = document.createElement("span");
      fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
      fill.style.background = colorFor(name);
      dd.appendChild(fill);
      const value = document.createElement("dd");
      value.className = i === 0 ? "pct pct-top" : "pct";
      value.textContent = pct(p);
      dl.append(dt, dd, value);
    });
    return dl;
  }

  function whyBlock(exp) {
    const div = document.createElement("div");
    div.className = "why";
    const title = document.createElement("p");
    title.className = "why-title";
    title.textContent = `Why ${exp.target}: heat map (${exp.method}) and share of attention per facial region`;
    const img = document.createElement("img");
    img.src = `data:image/png;base64,${exp.overlay_png_base64}`;
    img.alt = `Heat map of face ${exp.face_index + 1} for ${exp.target}`;
    img.className = "heatmap";
    div.append(title, img, barsList(Object.entries(exp.regions).sort((a, b) => b[1] - a[1])));
    return div;
  }

  function renderList(faces) {
    const items = faces.map((face, i) => {
      const li = document.createElement("li");
      li.className = "face";
      li.dataset.label = face.label;
      const h3 = document.createElement("h3");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = colorFor(face.label);
      sw.setAttribute("aria-hidden", "true");
      const name = document.createElement("span");
      name.className = "face-label";
      name.textContent = `Face ${i + 1}: ${face.label} (${pct(face.probs[face.label] ?? 0)})`;
      h3.append(sw, name);
      li.append(h3, barsList(sortedProbs(face.probs)));
      const exp = state.explanations.get(i);
      if (el.explain.checked && exp) li.appendChild(whyBlock(exp));
      return li;
    });
    el.faces.replaceChildren(...items);
  }

  function showResult(result, srcWidth, srcHeight, source) {
    state.lastFaces = result.faces;
    drawFaces(result.faces, srcWidth, srcHeight);
    renderList(result.faces);
    const n = result.faces.length;
    const ms = Math.round(result.timing_ms.total);
    if (n === 0) {
      setStatus(`No face found in the ${source}. Try a brighter, frontal view.`);
    } else {
      const labels = result.faces.map((f, i) => `face ${i + 1} ${f.label}`).join(", ");
      setStatus(`${n} face${n > 1 ? "s" : ""} in the ${source}: ${labels} (${ms} ms).`);
    }
  }

  // ---- photo mode ---------------------------------------------------------------------------------

  function showFrame(media) {
    el.frame.hidden = false;
    el.placeholder.hidden = true;
    el.photo.hidden = media !== el.photo;
    el.video.hidden = media !== el.video;
  }

  // Every upload gets a number; an answer to an older upload (slower, or still running when a new file was
  // chosen) is dropped, so the faces, boxes and heat maps on screen always belong to the photo on screen.
  const current = (upload) => upload === state.upload && state.mode === "photo";

  function clearResults() {
    state.lastFaces = [];
    state.explanations.clear();
    el.faces.replaceChildren();
    el.canvas.getContext("2d").clearRect(0, 0, el.canvas.width, el.canvas.height);
    el.canvas.dataset.faces = "0";
    el.canvas.dataset.labels = "";
  }

  async function explainPhoto() {
    if (!el.explain.checked || !state.lastFile || state.lastFaces.length === 0) return;
    const upload = state.upload;
    const file = state.lastFile;
    const n = state.lastFaces.length;
    try {
      for (let i = 0; i < n; i++) {
        if (state.explanations.has(i)) continue;
        setStatus(`Computing heat maps… ${i + 1} of ${n}`);
        const exp = await postImage("/v1/explain", file, { face_index: i });
        if (!current(upload)) return;
        state.explanations.set(i, exp);
        renderList(state.lastFaces);
      }
      setStatus(`Heat maps ready for ${n} face${n > 1 ? "s" : ""}.`);
    } catch (err) {
      if (current(upload)) setStatus(`Could not explain: ${err.message}`, true);
    }
  }

  async function analysePhoto(file, upload, source) {
    setStatus("Looking for faces…");
    try {
      const result = await postImage("/v1/predict", file);
      if (!current(upload)) return;
      showResult(result, result.image.width, result.image.height, source);
      await explainPhoto();
    } catch (err) {
      if (current(upload)) setStatus(`Could not analyse the photo: ${err.message}`, true);
    }
  }

  async function handleFile(file) {
    if (!file) return;
    if (state.stream) stopCamera();
    state.upload += 1;
    const upload = state.upload;
    state.lastFile = file;
    clearResults();
    const url = URL.createObjectURL(file);
    el.photo.onload = () => {
      URL.revokeObjectURL(url);
      if (!current(upload)) return;
      el.canvas.width = el.photo.naturalWidth;
      el.canvas.height = el.photo.naturalHeight;
      clearResults();
      showFrame(el.photo);
      analysePhoto(file, upload, "photo");
    };
    el.photo.onerror = () => {
      // The browser cannot show it (TIFF, a corrupt file...): the server decides, and lists faces without a preview.
      URL.revokeObjectURL(url);
      if (!current(upload)) return;
      el.frame.hidden = true;
      el.placeholder.hidden = false;
      el.placeholder.textContent = "This browser cannot show this file; the faces the server finds are listed.";
      analysePhoto(file, upload, "photo (this browser cannot preview it)");
    };
    el.photo.src = url;
  }

  el.choose.addEventListener("click", () => el.file.click());
  el.file.addEventListener("change", () => handleFile(el.file.files[0]));
  ["dragenter", "dragover"].forEach((type) => el.drop.addEventListener(type, (e) => {
    e.preventDefault();
    el.drop.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((type) => el.drop.addEventListener(type, () => el.drop.classList.remove("dragging")));
  el.drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) handleFile(file);
  });
  // dropping a file elsewhere on the page should not navigate away from it
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  // ---- webcam mode --------------------------------------------------------------------------------

  function cameraError(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "Camera permission was denied. Allow camera access for this page in the browser, then try again.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
      return "No camera was found. Connect one, or use a photo instead.";
    }
    if (name === "NotReadableError") return "The camera is busy in another application.";
    return `The camera could not start (${name || err}).`;
  }

  const captureCanvas = document.createElement("canvas");

  function captureFrame() {
    const v = el.video;
    const scale = Math.min(1, CAPTURE_MAX_WIDTH / v.videoWidth);
    captureCanvas.width = Math.round(v.videoWidth * scale);
    captureCanvas.height = Math.round(v.videoHeight * scale);
    captureCanvas.getContext("2d").drawImage(v, 0, 0, captureCanvas.width, captureCanvas.height);
    return new Promise((resolve) => captureCanvas.toBlob(resolve, "image/jpeg", 0.85));
  }

  async function explainFrame(blob) {
    if (!el.explain.checked || state.explainInFlight || state.lastFaces.length === 0) return;
    if (performance.now() - state.lastExplainAt < EXPLAIN_EVERY_MS) return;
    state.explainInFlight = true;
    state.lastExplainAt = performance.now();
    try {
      state.explanations.set(0, await postImage("/v1/explain", blob, { face_index: 0 }));
      renderList(state.lastFaces);
    } catch (_) {
      /* the face may have left the frame: keep the last heat map */
    } finally {
      state.explainInFlight = false;
    }
  }

  async function tick() {
    if (state.inFlight || !state.stream || el.video.readyState < 2 || !el.video.videoWidth) return;
    state.inFlight = true;
    try {
      const blob = await captureFrame();
      if (!blob || !state.stream) return;
      const result = await postImage("/v1/predict", blob);
      if (!state.stream) return;
      state.frames += 1;
      showResult(result, result.image.width, result.image.height, "camera");
      el.stage.dataset.frames = String(state.frames);
      await explainFrame(blob);  // awaited: one request in flight at a time (the 503 limit counts them all)
    } catch (err) {
      setStatus(`Frame not analysed: ${err.message}`, true);
    } finally {
      state.inFlight = false;
    }
  }

  async function startCamera() {
    el.camMsg.textContent = "";
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      el.camMsg.textContent = "This browser cannot use a camera here (it needs https or localhost). Use a photo.";
      return;
    }
    el.start.disabled = true;
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
    } catch (err) {
      el.start.disabled = false;
      el.camMsg.textContent = cameraError(err);
      setStatus("Camera unavailable.", true);
      return;
    }
    state.explanations.clear();
    state.frames = 0;
    el.video.srcObject = state.stream;
    await el.video.play().catch(() => {});
    el.canvas.width = el.video.videoWidth || 640;
    el.canvas.height = el.video.videoHeight || 480;
    showFrame(el.video);
    el.stop.disabled = false;
    el.stop.focus();
    setStatus("Camera on: looking for faces…");
    state.timer = setInterval(tick, 1000 / FPS);
  }

  function stopCamera() {
    clearInterval(state.timer);
    state.timer = null;
    if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
    state.stream = null;
    el.video.srcObject = null;
    el.start.disabled = false;
    el.stop.disabled = true;
    setStatus("Camera stopped.");
  }

  el.video.addEventListener("loadedmetadata", () => {
    el.canvas.width = el.video.videoWidth;
    el.canvas.height = el.video.videoHeight;
  });
  el.start.addEventListener("click", startCamera);
  el.stop.addEventListener("click", stopCamera);

  // ---- mode switch, explanation toggle, model card ------------------------------------------------

  function setMode(mode) {
    if (mode !== state.mode) state.upload += 1;  // a photo still being analysed no longer owns the screen
    state.mode = mode;
    el.modePhoto.setAttribute("aria-pressed", String(mode === "photo"));
    el.modeCamera.setAttribute("aria-pressed", String(mode === "camera"));
    el.photoPanel.hidden = mode !== "photo";
    el.cameraPanel.hidden = mode !== "camera";
    if (mode === "photo" && state.stream) stopCamera();
  }

  el.modePhoto.addEventListener("click", () => setMode("photo"));
  el.modeCamera.addEventListener("click", () => setMode("camera"));
  el.explain.addEventListener("change", () => {
    if (!el.explain.checked) renderList(state.lastFaces);
    else if (state.mode === "photo") explainPhoto();
  });

  fetch("/v1/model")
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(r.statusText))))
    .then((card) => {
      const size = card.input_size.slice(1).join("×");
      el.modelInfo.textContent = `Model ${card.name}: ${card.classes.length} classes (${card.classes.join(", ")}), ` +
        `${size} input.`;
    })
    .catch(() => { el.modelInfo.textContent = "Model information unavailable."; });
})();
