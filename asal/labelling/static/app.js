// The labelling page: shows the batch the session has open, sends each answer as it is given, and polls the
// session's state while it trains and selects the next batch. Everything it shows comes from the JSON API
// (asal/labelling/app.py); it keeps no state the server does not have, so a reload shows the same page.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"];
let state = null;   // GET /api/state
let batch = null;   // GET /api/batch
let focus = -1;     // the item shown large: an index into batch.items
let pending = 0;    // answers and undos queued or on their way: sent one after another, none dropped
let queue = Promise.resolve();

const $ = (id) => document.getElementById(id);

function withToken(url) {
  if (!token) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(token ? { "X-Asal-Token": token } : {}) };
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function show(section) {
  for (const id of ["labelling", "training", "done", "failed"]) $(id).hidden = id !== section;
}

function percent(x) { return x === null || x === undefined ? "n/a" : (100 * x).toFixed(1) + "%"; }

function renderHeader() {
  $("run").textContent = `${state.experiment} · ${state.strategy} · seed ${state.seed}`;
  $("labelled").textContent = `${state.n_labelled} / ${state.budget} labelled` +
    (state.n_skipped ? ` (${state.n_skipped} skipped)` : "");
  $("labelled-bar").style.width = Math.min(100, 100 * state.n_labelled / state.budget) + "%";
  $("cycle").textContent = state.cycle === null ? "" : `cycle ${state.cycle}`;
  $("accuracy").textContent = !state.has_test_set ? "no test set"
    : state.accuracy !== null ? `test accuracy ${percent(state.accuracy)}`
    : state.cycle ? "test accuracy: scoring" : "test accuracy: after the first training";
  $("status").textContent = state.status;
  $("status").className = "chip " + state.status;
  $("show-gan").hidden = !state.gan_samples;
  const counts = $("counts");
  counts.replaceChildren(...state.classes.map((name) => {
    const span = document.createElement("span");
    span.textContent = `${name}: ${state.class_counts[name]}`;
    return span;
  }));
}

function renderClasses() {
  const buttons = state.classes.map((name, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.label = name;
    if (i < KEYS.length) {
      const key = document.createElement("kbd");
      key.textContent = KEYS[i];
      button.append(key, " ");
    }
    button.append(name);
    button.addEventListener("click", () => enqueue(() => answer(name)));
    return button;
  });
  $("classes").replaceChildren(...buttons);
}

function renderBatch() {
  const items = batch.items;
  const answered = items.filter((item) => item.answered).length;
  $("batch-number").textContent = `${batch.cycle} · ${answered} of ${items.length} answered`;
  $("progress-in-batch").textContent = `${items.length - answered} left in this batch`;
  $("grid").replaceChildren(...items.map((item, k) => {
    const cell = document.createElement("button");
    cell.type = "button";
    cell.className = "item" + (k === focus ? " current" : "") + (item.answered ? " answered" : "") +
      (item.answered && item.label === null ? " skipped" : "");
    cell.title = item.source;
    const img = document.createElement("img");
    img.src = item.image;
    img.alt = `pool image ${item.pool_index}`;
    cell.append(img);
    if (item.answered) {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = item.label === null ? "skip" : item.label;
      cell.append(tag);
    }
    cell.addEventListener("click", () => { if (!item.answered) { focus = k; renderFocus(); renderBatch(); } });
    return cell;
  }));
  renderFocus();
}

function renderFocus() {
  const item = batch.items[focus];
  const buttons = $("classes").querySelectorAll("button");
  if (!item) {
    for (const b of buttons) b.disabled = true;
    return;
  }
  for (const b of buttons) {
    b.disabled = false;
    b.classList.toggle("suggested", b.dataset.label === item.suggestion);
  }
  $("real").src = item.image;
  $("source").textContent = `${item.pool_index} (${item.source})`;
  $("synthetic-figure").hidden = !item.synthetic;
  if (item.synthetic) $("synthetic").src = item.synthetic;
  $("suggestion").textContent = item.suggestion === null ? "No suggestion yet: the first batch comes before any model."
    : `The classifier suggests "${item.suggestion}" (${percent(item.confidence)}): Enter accepts it.`;
}

function nextUnanswered(from, step = 1) {
  const n = batch.items.length;
  for (let d = 1; d <= n; d++) {
    const k = ((from + step * d) % n + n) % n;
    if (!batch.items[k].answered) return k;
  }
  return -1;
}

function renderTraining() {
  const last = state.last_train_seconds;
  $("training-title").textContent = state.phase === "selecting the next batch"
    ? "Selecting the next batch" : state.phase === "labelling" || state.phase === "done" ? "Working" :
    state.phase === "starting" || state.phase === "resuming" ? "Starting the session" : "Training the classifier";
  $("training-detail").textContent = `${state.phase}: ${state.seconds.toFixed(0)} s so far` +
    (last ? ` (the last training took ${last.toFixed(1)} s)` : "") + `, on ${state.n_labelled} labels.`;
}

async function refresh() {
  try {
    state = await api("/api/state");
  } catch (error) {
    $("message").textContent = `The server does not answer (${error.message}); retrying.`;
    return;
  }
  renderHeader();
  if (state.status === "labelling") {
    if (batch === null || batch.cycle !== state.cycle || answeredCount() !== state.n_answered) await loadBatch();
    show("labelling");
  } else if (state.status === "training") {
    renderTraining();
    show("training");
  } else if (state.status === "done") {
    const last = state.accuracy === null ? "" : `, final test accuracy ${percent(state.accuracy)}`;
    $("done-detail").textContent = `${state.n_labelled} labels${last}. The run's files: ${state.outputs.runs} and ` +
      `${state.outputs.indices}.`;
    show("done");
  } else {
    $("error").textContent = state.error;
    show("failed");
  }
}

function answeredCount() { return batch.items.filter((item) => item.answered).length; }

async function loadBatch() {
  batch = await api("/api/batch");
  if (!state.classes.length || $("classes").children.length !== state.classes.length) renderClasses();
  if (focus < 0 || focus >= batch.items.length || batch.items[focus].answered) focus = nextUnanswered(-1);
  renderBatch();
}

// Keys and clicks run in the order given, each after the one before has been answered by the server: a fast
// typist's keys are queued, not dropped.
function enqueue(action) {
  pending++;
  queue = queue.then(action).catch((error) => { $("message").textContent = error.message; })
    .finally(() => { pending--; });
}

async function send(path, payload) {
  $("message").textContent = "";
  try {
    return await api(path, { method: "POST", body: JSON.stringify(payload) });
  } catch (error) {
    $("message").textContent = error.message;
    batch = null;   // another tab may have answered: reload the batch
    await refresh();
    return null;
  }
}

async function answer(label) {
  if (!batch || state.status !== "labelling") return;
  const item = batch.items[focus];
  if (!item || item.answered) return;
  const result = await send("/api/label", { pool_index: item.pool_index, label });
  if (!result) return;
  item.answered = true;
  item.label = label;
  focus = nextUnanswered(focus);
  renderBatch();
  await refresh();
}

async function undo() {
  if (!batch || state.status !== "labelling") return;
  const result = await send("/api/undo", {});
  if (!result) return;
  const k = batch.items.findIndex((item) => item.pool_index === result.pool_index);
  if (k >= 0) {
    batch.items[k].answered = false;
    batch.items[k].label = null;
    focus = k;
  }
  renderBatch();
  await refresh();
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || $("gan-dialog").open) return;
  if (!state || state.status !== "labelling" || !batch) return;
  const k = KEYS.indexOf(event.key);
  if (k >= 0 && k < state.classes.length) enqueue(() => answer(state.classes[k]));
  else if (event.key === "s") enqueue(() => answer(null));
  else if (event.key === "u") enqueue(undo);
  else if (event.key === "Enter") {
    enqueue(() => {
      const item = batch && batch.items[focus];
      return item && item.suggestion !== null ? answer(item.suggestion) : null;
    });
  } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
    const next = nextUnanswered(focus, event.key === "ArrowRight" ? 1 : -1);
    if (next >= 0) { focus = next; renderBatch(); }
  } else return;
  event.preventDefault();
});

$("skip").addEventListener("click", () => enqueue(() => answer(null)));
$("undo").addEventListener("click", () => enqueue(undo));
$("show-gan").addEventListener("click", () => {
  $("gan-samples").src = withToken("/api/gan-samples");
  $("gan-dialog").showModal();
});
$("export-csv").href = withToken("api/export?format=csv");
$("export-ls").href = withToken("api/export?format=labelstudio");
for (const link of document.querySelectorAll('#done a')) link.href = withToken(link.getAttribute("href"));

refresh();
setInterval(() => { if (!pending) refresh(); }, 700);
