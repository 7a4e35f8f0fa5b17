// Sending the catch to the station, safe to repeat: the photos it lacks, then the entries in batches (each entry's
// id was made on this phone, so an entry sent twice is one entry there), then the station's corrections back,
// and a newer model when the station has one.

import * as store from "./store.js";

const BATCH = 20;

async function call(token, path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...(options.headers || {}), Authorization: `Bearer ${token}` } });
  if (!r.ok && r.status !== 304) {
    let reason = `${r.status}`;
    try {
      const body = await r.json();
      reason = body.field ? `${body.field}: ${body.reason}` : body.reason || reason;
    } catch {}
    const error = new Error(reason);
    error.status = r.status;
    throw error;
  }
  return r;
}

/** What an entry is on the wire (the station's EntryIn). */
export function wire(e) {
  return {
    id: e.id, taken_at: e.taken_at, place: e.place || "", model_name: e.model_name, model_checksum: e.model_checksum,
    photo_sha256: e.photo_sha256, answer: e.answer, count: e.count, weight_kg: e.weight_kg ?? null,
    words: e.words.map((w) => ({ word: w.word, species: w.species ?? null, by: w.by || "", at: w.at })),
  };
}

/** Send what waits; returns how many entries the station took. */
export async function send(token, onProgress = () => {}) {
  const waiting = (await store.entries()).filter((e) => !e.synced || e.dirty);
  if (waiting.length) {
    const shas = [...new Set(waiting.map((e) => e.photo_sha256))];
    const { missing } = await (await call(token, "/api/v1/photos/missing", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sha256: shas }),
    })).json();
    let done = 0;
    for (const sha of missing) {
      const photo = await store.get("photos", sha);
      await call(token, `/api/v1/photos/${sha}`, { method: "PUT", body: photo.blob, headers: { "Content-Type": photo.type || "image/jpeg" } });
      onProgress(++done, missing.length + waiting.length);
    }
    for (let i = 0; i < waiting.length; i += BATCH) {
      const batch = waiting.slice(i, i + BATCH);
      await call(token, "/api/v1/sync", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ entries: batch.map(wire) }),
      });
      for (const e of batch) {
        const now = await store.get("entries", e.id);
        if (now && now.version === e.version) await store.put("entries", { ...now, synced: true, dirty: false });
      }
      onProgress(missing.length + Math.min(i + BATCH, waiting.length), missing.length + waiting.length);
    }
  }
  await fetchChanges(token);
  return waiting.length;
}

/** The station's corrections of this phone's entries since the last time. */
export async function fetchChanges(token) {
  const since = await store.setting("changes_since");
  const query = since ? `?since=${encodeURIComponent(since)}` : "";
  const { changes, server_time } = await (await call(token, `/api/v1/sync/changes${query}`)).json();
  for (const c of changes) {
    const e = await store.get("entries", c.id);
    if (!e || e.dirty) continue; // a word given here since wins; it goes to the station next time
    const words = [...e.words];
    const last = words[words.length - 1];
    if (c.word && (!last || last.at < c.word_at)) words.push({ word: c.word, species: c.species, by: c.word_by, at: c.word_at });
    await store.put("entries", { ...e, words, count: c.count, weight_kg: c.weight_kg, synced: true });
  }
  await store.setSetting("changes_since", server_time);
  return changes.length;
}

/** The station's active model when it is newer than the phone's, as a zip without the parts in ``have`` (the
 * sha256 of the parts the phone keeps), or null. */
export async function newerModel(token, current, have = []) {
  const headers = current ? { "If-None-Match": `"${current}"` } : {};
  const options = have.length
    ? { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify({ have }) }
    : { headers };
  const r = await call(token, have.length ? "/api/v1/model/update" : "/api/v1/model/download", options);
  if (r.status === 304) return null;
  return { etag: (r.headers.get("ETag") || "").replaceAll('"', ""), zip: await r.arrayBuffer() };
}
