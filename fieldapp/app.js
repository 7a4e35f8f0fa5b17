// The field app's screen: photo in, the answer large, one tap for the fisherman's word, count and weight, today's
// catch, what waits to be sent. Everything is kept on the phone first (store.js) and sent when there is a network.

import * as core from "./core.js";
import { phoneLanguage, percent, speciesName, word } from "./i18n.js";
import { Model, unpack } from "./model.js";
import * as store from "./store.js";
import * as sync from "./sync.js";

const state = { lang: "en", model: null, meta: null, token: null, shots: [], current: null, busy: false };
const $ = (id) => document.getElementById(id);
const t = (key, values) => word(state.lang, key, values);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function sha256(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

function localIso(date = new Date()) {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  const local = new Date(date.getTime() + offset * 60_000).toISOString().slice(0, 19);
  return `${local}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

// --- the model ---------------------------------------------------------------------------------------

/** The parts of a kept model, by sha256 (a missing one is left out: Model.load then says so). */
async function keptParts(meta) {
  const parts = {};
  for (const { sha256 } of meta.parts || []) {
    const data = await store.setting(`part:${sha256}`);
    if (data) parts[sha256] = data;
  }
  return parts;
}

/** The model this phone keeps, or null (none yet, or one in a format this app no longer reads). */
async function keptModel() {
  const kept = await store.setting("model");
  return kept && kept.meta && kept.meta.format === core.PACKAGE_FORMAT ? kept : null;
}

async function loadModel() {
  const kept = await keptModel();
  if (kept) {
    try {
      state.model = await Model.load(kept.graph, kept.meta, await keptParts(kept.meta));
      state.meta = kept.meta;
    } catch (error) {
      setStatus(t("modelProblem", { reason: error.message })); // the next download brings what is missing
    }
  }
  await render();
  if (navigator.onLine && state.token) await refreshModel();
}

async function refreshModel() {
  try {
    // A kept model that answers has every part it names (it loaded from them); one that does not load is
    // downloaded whole again.
    const kept = state.model ? await keptModel() : null;
    if (!kept) setStatus(t("gettingModel"));
    const have = kept ? kept.meta.parts.map((p) => p.sha256) : [];
    const newer = await sync.newerModel(state.token, kept && kept.etag, have);
    if (newer) {
      // Only the parts that changed come; the new model is used, and kept, only once it loads whole: a cut or
      // damaged download leaves the old one answering. The kept parts are read only now, when they are needed.
      const { meta, graph, parts } = await unpack(newer.zip);
      const all = { ...(kept ? await keptParts(kept.meta) : {}), ...parts };
      const model = await Model.load(graph, meta, all);
      for (const [sha, data] of Object.entries(parts)) await store.setSetting(`part:${sha}`, data);
      if (kept) await store.setSetting("news", core.modelNews(kept.meta, meta)); // told once, until the user says OK
      await store.setSetting("model", { etag: newer.etag, meta, graph });
      state.meta = meta;
      state.model = model;
      const used = new Set(meta.parts.map((p) => p.sha256));
      if (kept) for (const p of kept.meta.parts) if (!used.has(p.sha256)) await store.removeSetting(`part:${p.sha256}`);
    }
    setStatus(t("modelReady"));
  } catch (error) {
    // A failed fetch is a TypeError (no network); anything else is the station's answer or its package.
    const problem = error.name === "TypeError" ? t("offline") : t("modelProblem", { reason: error.message });
    setStatus(error.status ? t("refused", { reason: error.message }) : problem);
  }
  await render();
}

// --- a photo in, an answer out ------------------------------------------------------------------------

async function onPhotos(files, addShot) {
  if (!state.model || !files.length) return;
  state.busy = true;
  setStatus(t("looking"));
  try {
    if (!addShot) state.shots = [];
    for (const file of files) {
      let numbers;
      try {
        numbers = await state.model.numbers(file);
      } catch {
        setStatus(t("notPhoto"));
        continue;
      }
      const blob = file.slice(0, file.size, file.type || "image/jpeg");
      state.shots.push({ blob, sha: await sha256(blob), ...numbers });
    }
    if (!state.shots.length) return;
    const answer = state.shots.length > 1
      ? core.together(state.shots, state.meta)
      : core.answer(files[0].name || "photo", state.shots[0].probs, state.shots[0].distance, state.shots[0].fish, state.meta);
    await record(answer);
    setStatus("");
  } finally {
    state.busy = false;
    render();
  }
}

/** The answer into the phone's catch log: a new entry, or the current one when a shot was added. */
async function record(answer) {
  const first = state.shots[0];
  if (!(await store.get("photos", first.sha))) await store.put("photos", { sha256: first.sha, blob: first.blob, type: first.blob.type });
  const kept = answer.top.length ? answer : null;
  const entry = (state.current && state.shots.length > 1 && (await store.get("entries", state.current))) || {
    id: crypto.randomUUID(), taken_at: localIso(), place: (await store.setting("place")) || "", words: [], count: 1,
    weight_kg: null, photo_sha256: first.sha, synced: false, version: 0,
  };
  Object.assign(entry, {
    model_name: state.meta.folder, model_checksum: state.meta.checksum, dirty: true, version: (entry.version || 0) + 1,
    answer: {
      label: kept.top[0].label, confidence: kept.top[0].prob, verdict: kept.verdict, reason: kept.reason,
      top: kept.top.map((x) => [x.label, x.prob]), distance: kept.distance, distance_threshold: state.meta.distance_threshold,
      candidates: kept.set.map((x) => [x.label, x.prob]), set_coverage: kept.set_coverage, threshold: state.meta.threshold,
    },
  });
  await store.put("entries", entry);
  state.current = entry.id;
}

async function giveWord(id, wordCode, species = null) {
  const e = await store.get("entries", id);
  e.words = [...e.words, { word: wordCode, species, by: "", at: localIso() }];
  e.dirty = true;
  e.version = (e.version || 0) + 1;
  await store.put("entries", e);
  render();
  trySync();
}

async function setAmount(id, count, weight) {
  const e = await store.get("entries", id);
  e.count = Math.max(1, Math.min(core.LIMITS.count, Math.round(Number(count) || 1)));
  const w = Number(String(weight).replace(",", "."));
  e.weight_kg = weight === "" || !(w > 0) ? null : Math.min(w, core.LIMITS.weightKg);
  e.dirty = true;
  e.version = (e.version || 0) + 1;
  await store.put("entries", e);
  render();
}

// --- sending --------------------------------------------------------------------------------------------

let sending = null;

async function trySync() {
  if (!navigator.onLine || !state.token || sending) return sending;
  sending = (async () => {
    try {
      setStatus(t("sending"));
      const n = await sync.send(state.token, () => {});
      setStatus(n ? t("sent", { n }) : "");
      await refreshModel();
    } catch (error) {
      setStatus(error.status ? t("refused", { reason: error.message }) : t("offline"));
    } finally {
      sending = null;
      render();
    }
  })();
  return sending;
}

// --- drawing the screen ---------------------------------------------------------------------------------

function setStatus(text) {
  $("status").textContent = text;
}

/** The model's own answer in a few words, for a card the fisherman corrected. */
function modelAnswer(e) {
  const a = e.answer;
  if (a.verdict === core.NOT_A_FISH) return t("notAFish");
  const name = speciesName(state.meta, a.label, state.lang);
  return `${name} · ${a.verdict === core.CONFIDENT ? t("confident") : t("notSure")} ${percent(a.confidence, state.lang)}`;
}

function verdictLine(e) {
  const a = e.answer;
  if (a.verdict === core.CONFIDENT) return `${t("confident")} · ${percent(a.confidence, state.lang)}`;
  if (a.verdict === core.NOT_A_FISH) return t("notAFish");
  if (a.reason === "unfamiliar") return `${t("unfamiliar")}. ${t("closest", { species: speciesName(state.meta, a.label, state.lang) })}`;
  const names = (a.candidates || []).map(([s]) => speciesName(state.meta, s, state.lang));
  return names.length > 1 ? `${t("notSure")}. ${t("probablyOneOf", { species: names.join(", ") })}` : `${t("notSure")} · ${percent(a.confidence, state.lang)}`;
}

function wordLine(e) {
  const last = e.words[e.words.length - 1];
  if (!last) return t("noWord");
  if (last.word === "right") return t("wordRight");
  if (last.word === "not_fish") return t("wordNotFish");
  return t("wordWrong", { species: speciesName(state.meta, last.species, state.lang) });
}

function wordButtons(e) {
  const pick = el("select", { "aria-label": t("itIs"), class: "pick" },
    el("option", { value: "" }, t("itIs")),
    (state.meta ? state.meta.classes : []).filter((c) => c !== e.answer.label).map((c) => el("option", { value: c }, speciesName(state.meta, c, state.lang))),
    el("option", { value: "\u0000new" }, t("otherSpecies")));
  const typed = el("input", { type: "text", maxlength: core.LIMITS.species, hidden: true, "aria-label": t("otherSpecies"), class: "typed" });
  const wrongBox = el("div", { class: "wrong", hidden: true }, pick, typed,
    el("button", { class: "save", onclick: () => {
      const species = core.checkSpecies(pick.value === "\u0000new" ? typed.value : pick.value);
      typed.setCustomValidity(species ? "" : t("badName"));
      if (species) giveWord(e.id, "wrong", species);
      else typed.reportValidity();
    } }, t("save")));
  pick.addEventListener("change", () => (typed.hidden = pick.value !== "\u0000new"));
  return el("div", { class: "words" },
    el("div", { class: "buttons" },
      el("button", { class: "right", onclick: () => giveWord(e.id, "right") }, t("right")),
      el("button", { class: "wrong-open", onclick: () => (wrongBox.hidden = !wrongBox.hidden) }, t("wrong")),
      el("button", { class: "notfish", onclick: () => giveWord(e.id, "not_fish") }, t("notFish"))),
    wrongBox);
}

function amount(e) {
  const count = el("input", { type: "number", min: 1, max: core.LIMITS.count, value: e.count, inputmode: "numeric", "aria-label": t("count") });
  const weight = el("input", { type: "text", inputmode: "decimal", value: e.weight_kg ?? "", "aria-label": t("weight"), placeholder: "kg" });
  const save = () => setAmount(e.id, count.value, weight.value);
  count.addEventListener("change", save);
  weight.addEventListener("change", save);
  return el("div", { class: "amount" }, el("label", {}, t("count"), count), el("label", {}, t("weight"), weight));
}

/** The card's headline, the truth at a glance: the fisherman's own word once given, "not sure" for a fish unlike
 * every known species (the closest one small, below), else the model's answer. */
function headline(e) {
  const a = e.answer;
  const last = e.words[e.words.length - 1];
  if (last && last.word === "wrong" && last.species) return speciesName(state.meta, last.species, state.lang);
  if ((last && last.word === "not_fish") || a.verdict === core.NOT_A_FISH) return t("notAFish");
  if (a.verdict === core.UNCERTAIN && a.reason === "unfamiliar") return t("notSure");
  return speciesName(state.meta, a.label, state.lang);
}

function entryCard(e, big) {
  const a = e.answer;
  const last = e.words[e.words.length - 1];
  const corrected = last && (last.word === "wrong" || last.word === "not_fish");
  return el("article", {
    class: `entry ${big ? "big" : ""} ${a.verdict}`,
    dataset: { id: e.id, species: a.label, probability: a.confidence.toFixed(6), verdict: a.verdict, word: (e.words.at(-1) || {}).word || "", synced: String(!!e.synced && !e.dirty) },
  },
  el("h2", { class: "species" }, headline(e)),
  el("p", { class: corrected ? "verdict small" : "verdict" }, corrected ? t("modelSaid", { answer: modelAnswer(e) }) : verdictLine(e)),
  el("p", { class: "meta" }, `${wordLine(e)} · ${t("fish", { n: e.count })} · ${e.synced && !e.dirty ? t("synced") : t("notSynced")}`),
  big ? [wordButtons(e), amount(e)] : wordButtons(e));
}

async function render() {
  document.documentElement.lang = state.lang;
  $("title").textContent = t("title");
  $("lang").textContent = t("language");
  $("net").textContent = navigator.onLine ? t("online") : t("offline");
  $("net").className = navigator.onLine ? "online" : "offline";
  $("setup").hidden = !!state.token;
  $("setup-title").textContent = t("connect");
  $("code").setAttribute("aria-label", t("code"));
  $("connect").textContent = t("connectButton");
  $("place").setAttribute("aria-label", t("place"));
  $("place").placeholder = t("place");
  $("take-label").textContent = state.shots.length ? t("newFish") : t("take");
  $("shot-label").textContent = t("another");
  $("shot").parentElement.hidden = !state.shots.length;
  $("take").disabled = $("shot").disabled = !state.model || state.busy;
  $("need-model").hidden = !!state.model;
  const news = await store.setting("news");
  $("news").hidden = !news;
  $("news-ok").textContent = t("ok");
  if (news) {
    const names = news.added.map((s) => speciesName(state.meta, s, state.lang));
    $("news-text").textContent = names.length ? t("modelNewSpecies", { species: names.join(", ") }) : t("modelUpdated");
    $("news").dataset.added = news.added.join("|");
  }
  $("need-model").textContent = t("needModel");
  $("send").textContent = t("send");
  $("wipe").textContent = t("wipe");
  $("today-title").textContent = t("today");
  $("entries-title").textContent = t("entries");
  const list = await store.entries();
  const waiting = list.filter((e) => !e.synced || e.dirty).length;
  $("waiting").textContent = waiting ? t("waiting", { n: waiting }) : t("allSent");
  $("waiting").dataset.count = String(waiting);
  const current = list.find((e) => e.id === state.current);
  $("answer").replaceChildren(...(current ? [entryCard(current, true)] : []));
  const day = today();
  const catchToday = core.todaysCatch(list, day);
  $("today").replaceChildren(...(catchToday.length
    ? catchToday.map(([s, n]) => el("li", { dataset: { species: s, fish: String(n) } }, `${s ? speciesName(state.meta, s, state.lang) : t("notSure")}: ${t("fish", { n })}`))
    : [el("li", {}, t("nothingToday"))]));
  $("entries").replaceChildren(...list.filter((e) => e.id !== state.current).slice(0, 50).map((e) => entryCard(e, false)));
}

// --- start --------------------------------------------------------------------------------------------

async function start() {
  window.fieldApp = state; // tests read the model and its answers from here
  state.lang = (await store.setting("lang")) || phoneLanguage(navigator.languages);
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromLink) {
    await store.setSetting("token", fromLink);
    history.replaceState(null, "", location.pathname);
  }
  state.token = await store.setting("token");
  $("place").value = (await store.setting("place")) || "";
  $("place").maxLength = core.LIMITS.place;
  $("place").addEventListener("change", () => store.setSetting("place", core.cleanText($("place").value, core.LIMITS.place)));
  $("lang").addEventListener("click", async () => {
    state.lang = state.lang === "en" ? "id" : "en";
    await store.setSetting("lang", state.lang);
    render();
  });
  $("connect").addEventListener("click", async () => {
    const code = $("code").value.trim();
    if (!code) return;
    await store.setSetting("token", code);
    state.token = code;
    await loadModel();
    trySync();
  });
  $("take").addEventListener("change", (ev) => onPhotos([...ev.target.files], false).then(() => (ev.target.value = "")));
  $("shot").addEventListener("change", (ev) => onPhotos([...ev.target.files], true).then(() => (ev.target.value = "")));
  $("send").addEventListener("click", () => trySync());
  $("news-ok").addEventListener("click", async () => {
    await store.remove("kv", "news");
    render();
  });
  $("wipe").addEventListener("click", async () => {
    if (!confirm(t("wipeConfirm"))) return;
    await store.wipe();
    for (const name of await caches.keys()) await caches.delete(name);
    location.replace(location.pathname);
  });
  addEventListener("online", () => { render(); trySync(); });
  addEventListener("offline", () => render());
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("./sw.js").catch(() => {});
  await store.forgetOld(30);
  await loadModel();
  await render();
  document.body.dataset.ready = "true";
  trySync();
}

start();
