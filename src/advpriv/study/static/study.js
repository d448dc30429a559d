// The rating page: double-stimulus impairment scale (ITU-R BT.500) or forced choice, pairs in a random order per
// rater, some pairs twice (consistency), photos at native resolution. Sends invitation, pair, mode, answer, seconds.
"use strict";

const $ = (id) => document.getElementById(id);
const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));

function inviteToken() {
  // The link the organiser sent (`advpriv study make` prints one per rater); the server binds it to a rater id.
  const token = new URLSearchParams(location.search).get("invite");
  if (!token) throw new Error("This page needs your invitation link (it ends in ?invite=…); open the link you were sent.");
  return token;
}

function shuffle(items) {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

// Every pair once and the repeated pairs twice, shuffled; a repeat never follows its own first showing.
function trialOrder(study) {
  const ids = [...study.pairs.map((p) => p.id), ...study.repeats];
  for (let attempt = 0; attempt < 50; attempt++) {
    shuffle(ids);
    if (ids.every((id, i) => i === 0 || ids[i - 1] !== id)) break;
  }
  return ids.map((id) => study.pairs.find((p) => p.id === id));
}

function loaded(url) {
  const img = new Image();
  img.src = url;
  return img.decode().then(() => img);
}

// One photo pixel per device pixel: the CSS size is the pixel size divided by devicePixelRatio (which zooming
// changes, so the sizes are set again on every resize).
const sized = new Map();

function fitNative(element, source) {
  element.style.width = `${source.naturalWidth / devicePixelRatio}px`;
  element.style.height = `${source.naturalHeight / devicePixelRatio}px`;
}

function nativeSize(element, source) {
  if (element.tagName === "IMG") element.src = source.src;
  sized.set(element, source);
  fitNative(element, source);
}

// Put a shown photo on whole device pixels: at a fractional position the browser resamples (blurs) it.
function snap(element) {
  element.style.left = element.style.top = "0px";
  const box = element.getBoundingClientRect();
  const whole = (v) => Math.round(v * devicePixelRatio) / devicePixelRatio - v;
  element.style.left = `${whole(box.left)}px`;
  element.style.top = `${whole(box.top)}px`;
}

function snapShown() {
  document.querySelectorAll("#stage img, #grey").forEach((element) => {
    if (element.offsetParent) snap(element);
  });
}

function checkFits() {
  const shown = [...document.querySelectorAll("#stage img")].filter((img) => img.offsetParent && img.src);
  if (!shown.length) return;
  const width = Math.max(...shown.map((img) => img.getBoundingClientRect().right + 16));
  const height = Math.max(...shown.map((img) => img.getBoundingClientRect().height));
  const note = $("too-small");
  const tooSmall = width > innerWidth || height > innerHeight;
  note.hidden = !tooSmall;
  if (tooSmall) {
    note.textContent = `Your window (${innerWidth}×${innerHeight}) is too small to show the photos whole: they ` +
      "are shown at their native resolution and never scaled. Enlarge the window (or zoom out) before answering.";
  }
}

function layoutPair() {
  const pair = $("pair");
  pair.classList.remove("stacked");
  const [left, right] = [$("left-img"), $("right-img")];
  const needed = parseFloat(left.style.width) + parseFloat(right.style.width) + 48;
  if (needed > $("stage").clientWidth) pair.classList.add("stacked");
  snapShown();
  checkFits();
}

async function send(answer) {
  for (;;) {
    const response = await fetch("v1/ratings", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(answer),
    }).catch(() => null);
    if (response && response.ok) {
      $("error").hidden = true;
      return;
    }
    const body = response ? await response.json().catch(() => ({})) : {};
    $("error").textContent = (body.error && body.error.message) ||
      "Your answer could not be sent (the server did not answer). Retrying in 3 seconds…";
    $("error").hidden = false;
    if (response && response.status < 500) throw new Error($("error").textContent);
    await sleep(3);
  }
}

function waitForClick(selector) {
  return new Promise((resolve) => {
    const buttons = [...document.querySelectorAll(selector)];
    const handler = (event) => {
      buttons.forEach((b) => b.removeEventListener("click", handler));
      resolve(event.currentTarget);
    };
    buttons.forEach((b) => b.addEventListener("click", handler));
  });
}

function setPhase(phase) {
  $("stage").dataset.phase = phase;
}

// BT.500 double stimulus: original, mid-grey, changed version, mid-grey with the voting scale.
async function presentDsis(original, changed, study) {
  const img = $("single-img"), grey = $("grey");
  nativeSize(grey, original);
  $("vote").hidden = true;
  $("pair").hidden = true;
  for (const [phase, source, caption] of [["original", original, "Original"], ["changed", changed, "Second photo"]]) {
    grey.hidden = true;
    nativeSize(img, source);
    $("single-caption").textContent = caption;
    $("single").hidden = false;
    $("instruction").textContent = phase === "original" ? "The original…" : "…and the second photo.";
    snapShown();
    setPhase(phase);
    checkFits();
    await sleep(study.show_seconds);
    $("single").hidden = true;
    grey.hidden = false;
    setPhase("gap");
    await sleep(study.gap_seconds);
  }
  $("instruction").textContent = "Score the second photo against the original.";
  $("vote").hidden = false;
  setPhase("vote");
}

async function rateDsis(original, changed, study) {
  await presentDsis(original, changed, study);
  for (;;) {
    const button = await waitForClick("#vote button");
    if (button.id !== "replay") return {score: Number(button.dataset.score)};
    await presentDsis(original, changed, study);
  }
}

async function rateChoice(original, changed) {
  const changedLeft = Math.random() < 0.5;
  nativeSize($("left-img"), changedLeft ? changed : original);
  nativeSize($("right-img"), changedLeft ? original : changed);
  $("single").hidden = true;
  $("grey").hidden = true;
  $("vote").hidden = true;
  $("pair").hidden = false;
  $("instruction").textContent = "Which one was changed? Click it (guess if you cannot tell).";
  setPhase("choice");
  layoutPair();
  const button = await waitForClick("#pair .pick");
  const pickedLeft = button.dataset.side === "left";
  return {choice: pickedLeft === changedLeft ? "changed" : "original"};
}

async function run(mode) {
  const invite = inviteToken();
  const study = await (await fetch("v1/study")).json();
  const trials = trialOrder(study);
  $("intro").hidden = true;
  $("trial").hidden = false;
  $("trial").dataset.mode = mode;
  for (const [i, pair] of trials.entries()) {
    $("progress-text").textContent = `Pair ${i + 1} of ${trials.length}`;
    ["single", "pair", "grey", "vote"].forEach((id) => ($(id).hidden = true));  // no stale pair while loading
    $("instruction").textContent = "Loading the next pair…";
    setPhase("loading");
    $("trial").dataset.index = String(i);
    const [original, changed] = await Promise.all([loaded(pair.original), loaded(pair.changed)]);
    const started = performance.now();
    const answer = mode === "dsis" ? await rateDsis(original, changed, study)
      : await rateChoice(original, changed);
    const seconds = (performance.now() - started) / 1000;
    await send({invite, pair: pair.id, mode, score: null, choice: null, ...answer, seconds});
  }
  $("trial").hidden = true;
  $("too-small").hidden = true;
  $("done-text").textContent = `Your ${trials.length} answers are stored. You may close this page.`;
  $("done").hidden = false;
}

function start(mode) {
  run(mode).catch((error) => {
    $("error").textContent = `The study stopped: ${error.message} Reload the page to start again.`;
    $("error").hidden = false;
  });
}

$("start-dsis").addEventListener("click", () => start("dsis"));
$("start-choice").addEventListener("click", () => start("choice"));
addEventListener("resize", () => {
  sized.forEach((source, element) => fitNative(element, source));
  if ($("pair").hidden) {
    snapShown();
    checkFits();
  } else layoutPair();
});
