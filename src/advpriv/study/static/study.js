// The rating page: double-stimulus impairment scale (ITU-R BT.500) or forced choice, pairs in a random order per
// rater, some pairs twice (consistency), photos at native resolution. Sends invitation, pair, mode, answer, seconds.
"use strict";

const $ = (id) => document.getElementById(id);
const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));
const MODES = ["dsis", "choice"];
const finished = new Set();  // the parts done since the page was opened

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

// Room a trial needs around a photo, in CSS pixels: the line above it and its caption (height), the page's side
// padding and a pick's border (width). tests/test_study_server.py checks that a photo within it is shown whole.
const AROUND = {width: 40, height: 72};
let described = null;  // GET v1/study, fetched when the page opens

// Checked on the start page and on every resize: one photo pixel per screen pixel, so zooming does not help.
function checkFits() {
  if (!described) return;
  const ratio = devicePixelRatio;
  const need = [Math.max(...described.pairs.map((p) => p.width)) + Math.ceil(AROUND.width * ratio),
                Math.max(...described.pairs.map((p) => p.height)) + Math.ceil(AROUND.height * ratio)];
  const have = [Math.floor(innerWidth * ratio), Math.floor(innerHeight * ratio)];
  const note = $("too-small");
  note.hidden = need[0] <= have[0] && need[1] <= have[1];
  note.textContent = `Your window is too small for this study: it shows ${have[0]}×${have[1]} screen pixels, ` +
    `and the photos need ${need[0]}×${need[1]} to be seen whole (they are shown at their native resolution, never ` +
    "scaled, so zooming out does not help). Enlarge the window or make it full screen (F11); if your screen is " +
    "smaller than that, please take part on a larger one.";
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
  if (document.activeElement) document.activeElement.blur();  // the last pick's focus would mark a side
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

async function describe() {
  const response = await fetch("v1/study").catch(() => null);
  if (!response || !response.ok) throw new Error("The study could not be loaded (the server did not answer).");
  described = await response.json();
  checkFits();
  return described;
}

async function run(mode) {
  const invite = inviteToken();
  const study = described || await describe();
  const trials = trialOrder(study);
  ["intro", "done"].forEach((id) => ($(id).hidden = true));
  document.body.classList.add("running");
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
  document.body.classList.remove("running");
  finished.add(mode);
  const next = MODES.find((other) => !finished.has(other));
  $("done-text").textContent = `Your ${trials.length} answers are stored. ` +
    (next ? "Please go on to the other part." : "You have done both parts: you may close this page.");
  $("next-part").hidden = !next;
  if (next) {
    $("next-part").textContent = $(`start-${next}`).textContent;
    $("next-part").dataset.mode = next;
  }
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
$("next-part").addEventListener("click", (event) => start(event.currentTarget.dataset.mode));
addEventListener("resize", () => {
  sized.forEach((source, element) => fitNative(element, source));
  checkFits();
  if ($("pair").hidden) snapShown();
  else layoutPair();
});
describe().catch(() => {});  // the size check waits for it; a start retries it and reports what went wrong
