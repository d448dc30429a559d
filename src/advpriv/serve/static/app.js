// advpriv web page: plain script, no build step, no external resources.
"use strict";

(function () {
  const AMPLIFY = 20;             // difference view: |protected - original| * AMPLIFY
  const MAX_DIFF_PIXELS = 16e6;   // larger images are compared at a reduced size
  const TOKEN_KEY = "advpriv-token";
  const POLL_MS = 500;            // how often the page asks for the job's progress
  const CASE_CLASS = { all: "ok", attacked: "partial", none: "warn" };

  const $ = (id) => document.getElementById(id);
  const form = $("protect-form");
  const input = $("image");
  const drop = $("drop");
  const fileName = $("file-name");
  const protectBtn = $("protect");
  const cancelBtn = $("cancel");
  const tokenField = $("token-field");
  const tokenInput = $("token");
  const progress = $("progress");
  const progressText = $("progress-text");
  const errorBox = $("error");
  const result = $("result");
  const asInput = $("as");
  const asField = $("as-field");
  const modeField = $("mode-field");

  let file = null;
  let originalUrl = null;
  let protectedUrl = null;
  let controller = null;
  let timer = null;
  let progressReport = null;      // the worker's latest report for the running job
  let maxUploadBytes = null;
  let previewUrl = null;

  $("amp-factor").textContent = String(AMPLIFY);

  // ---- storage (sessionStorage may be unavailable, e.g. in some private modes) ----
  function getToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }
  function setToken(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* keep going without storage */ }
  }
  tokenInput.value = getToken();

  // ---- choosing a photo ----
  function choose(f) {
    if (!f) return;
    file = f;
    fileName.textContent = f.name + " (" + formatBytes(f.size) + ")";
    hideError();
    clearResult();  // a result on screen belongs to the previous photo
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(f);
    $("preview-img").src = previewUrl;
    $("preview").hidden = false;
  }
  input.addEventListener("change", () => choose(input.files && input.files[0]));
  ["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add("dragging");
  }));
  ["dragleave", "dragend"].forEach((type) => drop.addEventListener(type, () => drop.classList.remove("dragging")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("dragging");
    const files = e.dataTransfer && e.dataTransfer.files;
    if (files && files.length) choose(files[0]);
  });
  // A file dropped beside the drop zone would otherwise make the browser leave the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  // ---- impersonation: only for faces; then the photos of the person to be recognised as ----
  let maxAsPhotos = 8;
  function mode() {
    return modeField.hidden ? "dodge" : form.querySelector("input[name=mode]:checked").value;
  }
  function syncMode() {
    modeField.hidden = form.elements.target.value !== "dlib";
    $("ensemble").hidden = modeField.hidden || !$("ensemble").textContent;
    asField.hidden = mode() !== "impersonate";
  }
  form.elements.target.addEventListener("change", syncMode);
  form.querySelectorAll("input[name=mode]").forEach((radio) => radio.addEventListener("change", syncMode));
  syncMode();
  asInput.addEventListener("change", () => {
    const names = Array.from(asInput.files || []).map((f) => f.name);
    $("as-names").textContent = names.length ? names.join(", ") : "No photos chosen yet.";
    hideError();
  });

  // ---- protecting ----
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    protect();
  });
  cancelBtn.addEventListener("click", () => { if (controller) controller.abort(); });

  async function protect() {
    hideError();
    clearResult();
    if (!file) {
      showError("Choose a photo first.");
      input.focus();
      return;
    }
    const asPhotos = mode() === "impersonate" ? Array.from(asInput.files || []) : [];
    if (mode() === "impersonate" && (asPhotos.length < 1 || asPhotos.length > maxAsPhotos)) {
      showError(asPhotos.length
        ? "Choose at most " + maxAsPhotos + " photos of the person to be recognised as."
        : "Choose at least one photo of the person to be recognised as.");
      asInput.focus();
      return;
    }
    const size = [file, ...asPhotos].reduce((total, f) => total + f.size, 0);
    if (maxUploadBytes !== null && size > maxUploadBytes) {
      showError((asPhotos.length ? "These photos are " : file.name + " is ") + formatBytes(size) +
        " together; this server accepts at most " + formatBytes(maxUploadBytes) +
        ". Downscale or compress the photo first.");
      return;
    }
    if (!tokenField.hidden) setToken(tokenInput.value.trim());

    const data = new FormData();
    data.append("image", file, file.name);
    data.append("target", form.elements.target.value);
    data.append("method", "mnd");
    data.append("mode", mode());
    for (const photo of asPhotos) data.append("as", photo, photo.name);
    data.append("strength", form.querySelector("input[name=strength]:checked").value);
    data.append("format", "png");
    data.append("response", "json");
    const headers = {};
    const token = getToken();
    if (token) headers["Authorization"] = "Bearer " + token;

    const job = jobId();
    controller = new AbortController();
    startProgress(job, headers);
    let response;
    try {
      response = await fetch("v1/protect", { method: "POST", body: data, signal: controller.signal,
        headers: Object.assign({ "X-Advpriv-Job": job }, headers) });
    } catch (err) {
      stopProgress();
      if (err && err.name === "AbortError") showError("Cancelled. Nothing was protected.");
      else showError("Could not reach the server. Check your connection and that the service is still running, then try again.");
      return;
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    stopProgress();
    if (!response.ok) {
      handleError(response, body, token);
      return;
    }
    if (!body || typeof body.image_base64 !== "string") {
      showError("The server's answer could not be understood. Please try again.");
      return;
    }
    tokenField.hidden = !token;  // keep the field visible once a token is in use
    await showResult(body);
  }

  function handleError(response, body, token) {
    const err = body && body.error ? body.error : null;
    const message = err && err.message ? err.message : "";
    if (response.status === 401) {
      tokenField.hidden = false;
      showError(token
        ? "That access token was not accepted. Check it in the \u201cAccess token\u201d field above and press Protect again."
        : "This server needs an access token. Enter it in the \u201cAccess token\u201d field above and press Protect again.");
      tokenInput.focus();
      return;
    }
    if (response.status === 503) {
      const wait = retryAfterSeconds(response.headers.get("Retry-After"));
      showError(wait !== null
        ? "The server is busy, try again in " + wait + " s."
        : "The server is busy, try again in a little while.");
      return;
    }
    if (response.status === 504) {
      showError(message ? capitalise(message) : "Protecting this photo took too long. Try a smaller photo or a lower strength.");
      return;
    }
    if (message) {
      showError(capitalise(message));
      return;
    }
    showError("Something went wrong on the server (error " + response.status + "). Please try again.");
  }

  function retryAfterSeconds(value) {
    if (!value) return null;
    const n = Number(value);
    if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
    const when = Date.parse(value);  // Retry-After may also be an HTTP date
    if (!Number.isNaN(when)) return Math.max(1, Math.ceil((when - Date.now()) / 1000));
    return null;
  }

  // A fresh random id per request, for asking the server how far the job has come.
  function jobId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function startProgress(job, headers) {
    protectBtn.disabled = true;
    cancelBtn.hidden = false;
    progress.hidden = false;
    progress.scrollIntoView({ block: "nearest" });
    form.setAttribute("aria-busy", "true");
    progressReport = null;
    $("progress-recent").textContent = "";
    const bar = $("progress-bar");
    bar.removeAttribute("value");
    const started = Date.now();
    let asking = false;
    const update = () => {
      const s = Math.round((Date.now() - started) / 1000);
      progressText.textContent = stageText(progressReport) + " (" + s + " s so far)";
      if (progressReport && progressReport.total) {
        bar.max = progressReport.total;
        bar.value = progressReport.step;
      } else {
        bar.removeAttribute("value");
      }
      if (asking) return;
      asking = true;
      fetch("v1/progress/" + job, { headers: headers }).then((r) => (r.ok ? r.json() : null)).then((report) => {
        if (report && timer !== null) showProgress(report);
      }).catch(() => { /* the next poll tries again */ }).finally(() => { asking = false; });
    };
    update();
    timer = setInterval(update, POLL_MS);
  }

  function showProgress(report) {
    progressReport = report;
    const recent = report.recent || {};
    $("progress-recent").textContent = typeof recent.median_s === "number"
      ? "The last " + (recent.jobs === 1 ? "photo" : recent.jobs + " photos") + " on this server took " +
        (recent.jobs === 1 ? "" : "a median of ") + Math.round(recent.median_s) + " s."
      : "";
  }

  // What the worker is doing, in words: its stage, the step out of the total, and the time the stage still needs.
  function stageText(report) {
    if (!report) return "Sending the photo\u2026";
    const faces = form.elements.target.value === "dlib";
    switch (report.stage) {
      case "waiting": return "Waiting for a free worker\u2026";
      case "reading": return "Reading the photo\u2026";
      case "preparing": return faces ? "Finding the faces\u2026" : "Preparing\u2026";
      case "protecting": {
        if (!report.total) return "Protecting\u2026";
        const left = typeof report.eta_s === "number" ? ", about " + Math.ceil(report.eta_s) + " s left at most" : "";
        return "Protecting: step " + report.step + " of " + report.total + left;
      }
      case "checking": return "Checking the result: the judges look at the file and at its re-encoded copies\u2026";
      default: return "Working\u2026";
    }
  }

  function stopProgress() {
    clearInterval(timer);
    timer = null;
    controller = null;
    progressReport = null;
    protectBtn.disabled = false;
    cancelBtn.hidden = true;
    progress.hidden = true;
    form.removeAttribute("aria-busy");
  }

  // Nothing of an earlier result may stay on screen next to a new photo, a new run or an error.
  function clearResult() {
    result.hidden = true;
    result.removeAttribute("data-ready");
    for (const id of ["verdict", "verdict-detail", "faces", "variants", "metrics", "diff-note"]) $(id).textContent = "";
    $("verdict").className = "verdict";
    $("preview-boxes").textContent = "";
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }
  function hideError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
  }

  // ---- the result ----
  async function showResult(body) {
    const bytes = base64ToBytes(body.image_base64);
    const blob = new Blob([bytes], { type: body.media_type || "image/png" });
    if (protectedUrl) URL.revokeObjectURL(protectedUrl);
    if (originalUrl) URL.revokeObjectURL(originalUrl);
    protectedUrl = URL.createObjectURL(blob);
    originalUrl = URL.createObjectURL(file);

    const link = $("download");
    link.href = protectedUrl;
    link.download = body.filename || "protected.png";
    link.textContent = "Download the protected photo (" + link.download + ", " + formatBytes(blob.size) + ")";

    const verdict = body.verdict;
    $("verdict").textContent = verdict.headline;
    $("verdict").className = "verdict " + CASE_CLASS[verdict.case];
    $("verdict").setAttribute("data-case", verdict.case);
    $("verdict-detail").textContent = beforeText(body, verdict) + verdict.detail;
    showMetrics(body);
    showFaces(body.faces || [], verdict);
    showVariants(verdict);
    numberFaces(body.faces || []);

    const [orig, prot] = await Promise.all([
      loadImage(originalUrl).catch(() => null),
      loadImage(protectedUrl).catch(() => null),
    ]);
    $("original-img").src = originalUrl;
    $("protected-img").src = protectedUrl;
    $("compare-original").src = originalUrl;
    $("compare-protected").src = protectedUrl;
    setCompare($("compare-slider").value);
    // Small photos are shown larger in the compare and difference views, large ones fit the page.
    const shown = Math.max(prot ? prot.naturalWidth : 0, 512) + "px";
    $("compare-wrap").style.maxWidth = shown;
    $("diff").style.maxWidth = shown;
    result.hidden = false;
    syncCompareWidth();
    drawDifference(orig, prot);
    $("result-heading").scrollIntoView({ behavior: "smooth", block: "start" });
    result.setAttribute("data-ready", "true");
  }

  function beforeText(body, verdict) {
    if (verdict.goal === "classifier") return "Before protection it saw \u201c" + body.before + "\u201d. ";
    return body.before ? capitalise(body.before) + " found. " : "";
  }

  function showMetrics(body) {
    const m = body.metrics || {};
    const rows = [
      ["PSNR", m.psnr === null || m.psnr === undefined ? "\u221e dB (unchanged)" : fixed(m.psnr, 2) + " dB",
        "higher is closer to the original; above about 40 dB the change is hard to see"],
      ["SSIM", fixed(m.ssim, 4), "structural similarity, 1 means identical"],
    ];
    if (m.ms_ssim !== undefined) rows.push(["MS-SSIM", fixed(m.ms_ssim, 4), "multi-scale SSIM"]);
    if (m.gmsd !== undefined) rows.push(["GMSD", fixed(m.gmsd, 4), "gradient deviation, 0 means identical"]);
    if (typeof body.seconds === "number") rows.push(["Time", fixed(body.seconds, 1) + " s", "on the server"]);
    if (body.strength) rows.push(["Strength", body.strength, ""]);
    const dl = $("metrics");
    dl.textContent = "";
    for (const [name, value, help] of rows) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dd.setAttribute("data-metric", name.toLowerCase());
      if (help) dd.title = help;
      div.append(dt, dd);
      dl.append(div);
    }
  }

  // One row per face (numbered as on the preview), one column per judge: what it sees in the file as written.
  function showFaces(faces, verdict) {
    const block = $("faces-block");
    const table = $("faces");
    table.textContent = "";
    block.hidden = faces.length === 0;
    if (!faces.length) return;
    const impersonate = verdict.goal === "impersonate";
    $("faces-hint").textContent = impersonate
      ? "Whether each judge recognises each face in the protected photo as the person in your other photos."
      : "Whether each judge still recognises each face in the protected photo as the person in the original.";
    const judges = verdict.copies[0].judges.map((j) => j.judge);
    const caption = document.createElement("caption");
    caption.className = "visually-hidden";
    caption.textContent = impersonate ? "Does each judge match each face to the target?"
      : "Does each judge still recognise each face?";
    const thead = document.createElement("thead");
    const hr = document.createElement("tr");
    hr.append(th("Face", "col"));
    for (const j of verdict.copies[0].judges) hr.append(th(j.judge + (j.attacked ? "" : " (never attacked)"), "col"));
    hr.append(th("Face \u0394E / SSIM / eyes and lips \u0394E", "col"));
    thead.append(hr);
    const tbody = document.createElement("tbody");
    faces.forEach((f, i) => {
      const tr = document.createElement("tr");
      tr.append(th("Face " + (i + 1), "row"));
      for (const j of judges) tr.append(faceCell((f.judges || {})[j], j, impersonate));
      const q = f.quality || {};
      const quality = document.createElement("td");
      quality.setAttribute("data-quality", "");
      quality.title = "How visibly the face changed (CIEDE2000, 99th percentile over its box, through a 1-pixel blur), " +
        "SSIM inside its box (1 means unchanged) and the colour change of its eyes and lips in CIEDE2000 " +
        "(2.3 is one just-noticeable difference)";
      quality.textContent = fixed(q.ciede2000_p99, 2) + " / " + fixed(q.ssim, 3) + " / " + fixed(q.ciede2000, 2);
      tr.append(quality);
      tbody.append(tr);
    });
    table.append(caption, thead, tbody);
  }

  // A judge's verdict on one face; green when it is the goal (not recognised, or matching the target).
  function faceCell(v, judge, impersonate) {
    const td = document.createElement("td");
    td.setAttribute("data-judge", judge);
    if (!v) {
      td.textContent = "not judged";
      return td;
    }
    const words = impersonate ? ["Matches the target", "Does not match the target"]
      : ["Still recognised", "Not recognised"];
    td.textContent = v.detected ? words[v.matches ? 0 : 1] : words[1] + " (no face found)";
    td.className = v.matches === impersonate ? "ok" : "warn";
    if (v.detected && typeof v.distance === "number") {
      const small = document.createElement("span");
      small.className = "detail";
      small.textContent = " (distance " + fixed(v.distance, 3) +
        (typeof v.threshold === "number" ? ", a match below " + fixed(v.threshold, 2) : "") + ")";
      td.append(small);
    }
    return td;
  }

  const COPY_WORDS = {
    dodge: { all: "Yes, from every judge", attacked: "From the attacked models only", none: "No" },
    impersonate: { all: "Yes, by every judge", attacked: "By the attacked models only", none: "No" },
    classifier: { all: "Yes", attacked: "Yes", none: "No" },
  };
  const COPY_QUESTION = { dodge: "Protected?", impersonate: "Recognised as the target?", classifier: "Fooled?" };

  // One row per copy judged (the file as written first), its verdict, and per judge the faces it matches.
  function showVariants(verdict) {
    const block = $("variants-block");
    const table = $("variants");
    table.textContent = "";
    const copies = verdict.copies;
    block.hidden = copies.length < 2;
    if (copies.length < 2) return;
    const classifier = verdict.goal === "classifier";
    const caption = document.createElement("caption");
    caption.className = "visually-hidden";
    caption.textContent = "Does the protection hold on re-encoded copies?";
    const thead = document.createElement("thead");
    const hr = document.createElement("tr");
    hr.append(th("Version", "col"), th(COPY_QUESTION[verdict.goal], "col"));
    const counted = verdict.goal === "impersonate" ? ": faces matching the target" : ": faces recognised";
    if (classifier) hr.append(th("The classifier sees", "col"));
    else for (const j of copies[0].judges) hr.append(th(j.judge + counted, "col"));
    thead.append(hr);
    const tbody = document.createElement("tbody");
    for (const copy of copies) {
      const tr = document.createElement("tr");
      tr.setAttribute("data-variant", copy.name);
      tr.append(th(capitalise(copy.label), "row"));
      const answer = document.createElement("td");
      answer.textContent = COPY_WORDS[verdict.goal][copy.case];
      answer.className = classifier ? (copy.case === "none" ? "warn" : "ok") : CASE_CLASS[copy.case];
      answer.setAttribute("data-case", copy.case);
      tr.append(answer);
      if (classifier) {
        const td = document.createElement("td");
        td.textContent = copy.sees;
        tr.append(td);
      }
      for (const j of classifier ? [] : copy.judges) {
        const td = document.createElement("td");
        td.setAttribute("data-judge", j.judge);
        td.textContent = j.matched + "/" + j.known;
        td.className = j.reached ? "ok" : "warn";
        tr.append(td);
      }
      tbody.append(tr);
    }
    table.append(caption, thead, tbody);
  }

  // Each face's number drawn on the preview, where its detector box is (boxes are in the photo's pixels).
  function numberFaces(faces) {
    const layer = $("preview-boxes");
    const img = $("preview-img");
    layer.textContent = "";
    const w = img.naturalWidth, h = img.naturalHeight;
    if (!img.complete) {
      img.addEventListener("load", () => numberFaces(faces), { once: true });
      return;
    }
    if (!w || !h) return;
    faces.forEach((f, i) => {
      if (!Array.isArray(f.box)) return;
      const [l, t, r, b] = f.box;
      const box = document.createElement("div");
      box.className = "face-box";
      box.style.left = (100 * l / w) + "%";
      box.style.top = (100 * t / h) + "%";
      box.style.width = (100 * (r - l + 1) / w) + "%";
      box.style.height = (100 * (b - t + 1) / h) + "%";
      const label = document.createElement("span");
      label.textContent = String(i + 1);
      box.append(label);
      layer.append(box);
    });
    $("preview-caption").textContent = faces.length
      ? "The photo you chose, its faces numbered as in the table below."
      : "The photo you chose.";
  }

  function th(text, scope) {
    const el = document.createElement("th");
    el.scope = scope;
    el.textContent = text;
    return el;
  }

  // ---- compare slider ----
  const slider = $("compare-slider");
  function setCompare(value) {
    const pct = Math.max(0, Math.min(100, Number(value)));
    $("compare-clip").style.width = pct + "%";
    $("compare-line").style.left = pct + "%";
    slider.setAttribute("aria-valuetext", pct + "% original");
  }
  slider.addEventListener("input", () => setCompare(slider.value));
  // The clipped original must keep the full width of the frame, not of the clip.
  function syncCompareWidth() {
    $("compare-original").style.width = $("compare").clientWidth + "px";
  }
  window.addEventListener("resize", syncCompareWidth);
  $("compare-protected").addEventListener("load", syncCompareWidth);

  // ---- amplified difference ----
  function drawDifference(orig, prot) {
    const canvas = $("diff");
    const note = $("diff-note");
    note.textContent = "";
    if (!orig || !prot) {
      canvas.hidden = true;
      note.textContent = "This browser cannot display the original photo, so the difference cannot be shown.";
      return;
    }
    canvas.hidden = false;
    let w = prot.naturalWidth, h = prot.naturalHeight;
    const scale = Math.min(1, Math.sqrt(MAX_DIFF_PIXELS / (w * h)));
    w = Math.max(1, Math.round(w * scale));
    h = Math.max(1, Math.round(h * scale));
    canvas.width = w;
    canvas.height = h;
    try {
      const a = pixels(orig, w, h);
      const b = pixels(prot, w, h);
      const out = new ImageData(w, h);
      let max = 0;
      for (let i = 0; i < a.length; i += 4) {
        for (let c = 0; c < 3; c++) {
          const d = Math.abs(b[i + c] - a[i + c]);
          if (d > max) max = d;
          out.data[i + c] = Math.min(255, d * AMPLIFY);
        }
        out.data[i + 3] = 255;
      }
      canvas.getContext("2d").putImageData(out, 0, 0);
      canvas.setAttribute("data-max-difference", String(max));
      const sizeNote = (orig.naturalWidth !== prot.naturalWidth || orig.naturalHeight !== prot.naturalHeight)
        ? " The original was resized to the protected photo's size to compare them." : "";
      const scaleNote = scale < 1 ? " Compared at a reduced size." : "";
      note.textContent = "Largest change: " + max + " of 255 levels." + sizeNote + scaleNote;
    } catch (err) {
      canvas.hidden = true;
      note.textContent = "The difference could not be computed in this browser.";
    }
  }

  function pixels(img, w, h) {
    const c = document.createElement("canvas");
    c.width = w;
    c.height = h;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.fillStyle = "#fff";  // the server composites transparency on white
    ctx.fillRect(0, 0, w, h);
    ctx.drawImage(img, 0, 0, w, h);
    return ctx.getImageData(0, 0, w, h).data;
  }

  // ---- helpers ----
  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("cannot decode"));
      img.src = url;
    });
  }

  function base64ToBytes(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }

  // "the server is busy; ..." -> "The server ...", but a message that starts with a file name keeps it as it is.
  function capitalise(text) {
    return /^[a-z]+[ ,;]/.test(text) ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  }

  function fixed(x, digits) {
    return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "n/a";
  }

  // Decimal units, as the server's messages use them (1 MB = 1,000,000 bytes).
  function formatBytes(n) {
    if (n < 1e3) return n + " bytes";
    if (n < 1e6) return (n / 1e3).toFixed(0) + " KB";
    return (n / 1e6).toFixed(1) + " MB";
  }

  // ---- version, shown in the footer; also hides targets this server does not offer ----
  fetch("v1/version").then((r) => (r.ok ? r.json() : null)).then((v) => {
    if (!v) return;
    $("version").textContent = "advpriv " + (v.advpriv || "");
    if (v.token_required) tokenField.hidden = false;
    if (Array.isArray(v.ensemble) && v.ensemble.length) {
      const attacked = v.ensemble.map((m) => m.name);
      const unseen = (v.judges || []).filter((j) => !attacked.includes(j));
      $("ensemble").textContent = "Faces are protected against: " + attacked.join(", ") + "." +
        (unseen.length ? " The result is also checked by " + unseen.join(", ") + ", which the protection never sees." : "");
    }
    const budgets = v.face_budgets || {};
    const levels = ["low", "medium", "high"].filter((name) => budgets[name]);
    if (levels.length) {
      $("budget-hint").textContent = ": " + levels.map((name) => name[0].toUpperCase() + name.slice(1) +
        " keeps each face's visible change at most \u0394E " + budgets[name].max_change +
        ", its SSIM at least " + budgets[name].min_ssim + " and its eyes' and lips' colour change at most \u0394E " +
        budgets[name].max_ciede2000).join("; ") + " (2.3 is one just-noticeable difference), and says so when that is not enough";
    }
    if (v.limits && v.limits.max_upload_bytes) maxUploadBytes = v.limits.max_upload_bytes;
    if (v.limits && v.limits.max_as_photos) {
      maxAsPhotos = v.limits.max_as_photos;
      $("as-limit").textContent = String(maxAsPhotos);
    }
    if (Array.isArray(v.targets) && v.targets.length) {
      for (const opt of Array.from($("target").options)) {
        if (!v.targets.includes(opt.value) && opt.value !== $("target").value) opt.remove();
      }
      const listed = Array.from($("target").options, (opt) => opt.value);
      for (const name of v.targets.filter((t) => !listed.includes(t))) {
        $("target").append(new Option("A classifier this server offers: " + name, name));
      }
    }
    syncMode();
  }).catch(() => { /* the footer stays empty */ });
})();
