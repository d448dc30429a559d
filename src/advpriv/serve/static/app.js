// advpriv web page: plain script, no build step, no external resources.
"use strict";

(function () {
  const AMPLIFY = 20;             // difference view: |protected - original| * AMPLIFY
  const MAX_DIFF_PIXELS = 16e6;   // larger images are compared at a reduced size
  const TOKEN_KEY = "advpriv-token";

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

    controller = new AbortController();
    startProgress();
    let response;
    try {
      response = await fetch("v1/protect", { method: "POST", body: data, headers: headers, signal: controller.signal });
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
        ? "That access token was not accepted. Check it and press Protect again."
        : "This server needs an access token. Enter it below and press Protect again.");
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

  function startProgress() {
    protectBtn.disabled = true;
    cancelBtn.hidden = false;
    progress.hidden = false;
    form.setAttribute("aria-busy", "true");
    const started = Date.now();
    const update = () => {
      const s = Math.round((Date.now() - started) / 1000);
      progressText.textContent = "Protecting… this usually takes 5 to 60 seconds (" + s + " s so far).";
    };
    update();
    timer = setInterval(update, 1000);
  }

  function stopProgress() {
    clearInterval(timer);
    timer = null;
    controller = null;
    protectBtn.disabled = false;
    cancelBtn.hidden = true;
    progress.hidden = true;
    form.removeAttribute("aria-busy");
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

    $("verdict").textContent = verdictText(body);
    $("verdict").className = "verdict " + (body.success ? "ok" : "warn");
    showMetrics(body);
    showFaces(body.faces || []);
    showVariants(body.variants || {}, body.mode === "impersonate");

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

  function verdictText(body) {
    const isFaces = body.target === "dlib" || (body.faces && body.faces.length);
    if (isFaces && body.mode === "impersonate") {
      return (body.success ? "Done. " : "Not fully done. ") +
        "Before: " + body.before + ". Now: " + body.summary + " (the person in your other photos).";
    }
    if (isFaces) {
      return (body.success ? "Protected. " : "Not fully protected. ") +
        "Before: " + body.before + ". Now: " + body.summary + ".";
    }
    return (body.success ? "Protected. " : "Not fully protected. ") +
      "The classifier saw \u201c" + body.before + "\u201d; on the protected photo it sees \u201c" + body.summary + "\u201d.";
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

  function showFaces(faces) {
    const block = $("faces-block");
    const table = $("faces");
    table.textContent = "";
    block.hidden = faces.length === 0;
    if (!faces.length) return;
    const judges = [];
    for (const f of faces) for (const j of Object.keys(f.judges || {})) if (!judges.includes(j)) judges.push(j);
    const caption = document.createElement("caption");
    caption.className = "visually-hidden";
    caption.textContent = "Does each judge still recognise each face?";
    const thead = document.createElement("thead");
    const hr = document.createElement("tr");
    hr.append(th("Face", "col"));
    for (const j of judges) hr.append(th(j, "col"));
    hr.append(th("PSNR / SSIM in the face", "col"));
    thead.append(hr);
    const tbody = document.createElement("tbody");
    faces.forEach((f, i) => {
      const tr = document.createElement("tr");
      const box = Array.isArray(f.box) ? " at (" + f.box.slice(0, 2).join(", ") + ")" : "";
      tr.append(th("Face " + (i + 1) + box, "row"));
      for (const j of judges) {
        const v = (f.judges || {})[j];
        const td = document.createElement("td");
        td.setAttribute("data-judge", j);
        if (!v) {
          td.textContent = "not judged";
        } else if (!v.detected) {
          td.textContent = "Not recognised (no face found)";
          td.className = "ok";
        } else {
          td.textContent = v.matches ? "Still recognised" : "Not recognised";
          td.className = v.matches ? "warn" : "ok";
          if (typeof v.distance === "number") {
            const small = document.createElement("span");
            small.className = "detail";
            small.textContent = " (distance " + fixed(v.distance, 3) +
              (typeof v.threshold === "number" ? ", recognised below " + fixed(v.threshold, 2) : "") + ")";
            td.append(small);
          }
        }
        tr.append(td);
      }
      const q = f.quality || {};
      const quality = document.createElement("td");
      quality.setAttribute("data-quality", "");
      quality.textContent = (q.psnr === null ? "\u221e dB" : fixed(q.psnr, 2) + " dB") + " / " + fixed(q.ssim, 4);
      tr.append(quality);
      tbody.append(tr);
    });
    table.append(caption, thead, tbody);
  }

  const VERSION_NAMES = { jpeg85: "After JPEG quality 85", half: "After a half-size resize" };

  // One row per version judged (the file as written first), one column per judge (faces) or the classifier.
  function showVariants(variants, impersonate) {
    const block = $("variants-block");
    const table = $("variants");
    table.textContent = "";
    const names = Object.keys(variants);
    block.hidden = names.length < 2;
    if (names.length < 2) return;
    const judges = [];
    for (const n of names) for (const f of variants[n].faces || []) {
      for (const j of Object.keys(f.judges || {})) if (!judges.includes(j)) judges.push(j);
    }
    const caption = document.createElement("caption");
    caption.className = "visually-hidden";
    caption.textContent = "Does the protection hold on re-encoded copies?";
    const thead = document.createElement("thead");
    const hr = document.createElement("tr");
    hr.append(th("Version", "col"), th("Protected?", "col"));
    for (const j of judges) hr.append(th(j + ": faces recognised", "col"));
    if (!judges.length) hr.append(th("The classifier sees", "col"));
    thead.append(hr);
    const tbody = document.createElement("tbody");
    names.forEach((n, i) => {
      const v = variants[n];
      const tr = document.createElement("tr");
      tr.setAttribute("data-variant", n);
      tr.append(th(i === 0 ? "As written (" + n + ")" : VERSION_NAMES[n] || "After " + n, "row"));
      const verdict = document.createElement("td");
      verdict.textContent = v.success ? "Yes" : "No";
      verdict.className = v.success ? "ok" : "warn";
      tr.append(verdict);
      for (const j of judges) tr.append(recognisedCell(v.faces || [], j, impersonate));
      if (!judges.length) {
        const td = document.createElement("td");
        td.textContent = v.summary;
        tr.append(td);
      }
      tbody.append(tr);
    });
    table.append(caption, thead, tbody);
  }

  // "k/n": faces the judge still matches (when impersonating: to the target) over the faces it judged.
  function recognisedCell(faces, judge, impersonate) {
    const verdicts = faces.map((f) => (f.judges || {})[judge]).filter(Boolean);
    const matched = verdicts.filter((v) => v.matches).length;
    const td = document.createElement("td");
    td.setAttribute("data-judge", judge);
    td.textContent = matched + "/" + verdicts.length + (impersonate ? " match the target" : "");
    td.className = verdicts.every((v) => v.matches === impersonate) ? "ok" : "warn";
    return td;
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

  function formatBytes(n) {
    if (n < 1024) return n + " bytes";
    if (n < 1024 * 1024) return (n / 1024).toFixed(0) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  // ---- version, shown in the footer; also hides targets this server does not offer ----
  fetch("v1/version").then((r) => (r.ok ? r.json() : null)).then((v) => {
    if (!v) return;
    $("version").textContent = "advpriv " + (v.advpriv || "");
    if (v.token_required) tokenField.hidden = false;
    if (Array.isArray(v.ensemble) && v.ensemble.length) {
      $("ensemble").textContent = "Faces are protected against: " + v.ensemble.map((m) => m.name).join(", ") + ".";
      $("ensemble").hidden = false;
    }
    if (v.limits && v.limits.max_as_photos) {
      maxAsPhotos = v.limits.max_as_photos;
      $("as-limit").textContent = String(maxAsPhotos);
    }
    if (Array.isArray(v.targets) && v.targets.length) {
      for (const opt of Array.from($("target").options)) {
        if (!v.targets.includes(opt.value) && opt.value !== $("target").value) opt.remove();
      }
    }
    syncMode();
  }).catch(() => { /* the footer stays empty */ });
})();
