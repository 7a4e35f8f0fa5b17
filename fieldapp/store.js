// What the phone keeps (IndexedDB): its entries and their photos until the station has them, the model, settings.

const DB_NAME = "fishcore-field";
const VERSION = 1;

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

let opened = null;

export function open() {
  if (!opened) {
    const r = indexedDB.open(DB_NAME, VERSION);
    r.onupgradeneeded = () => {
      const db = r.result;
      db.createObjectStore("entries", { keyPath: "id" });
      db.createObjectStore("photos", { keyPath: "sha256" });
      db.createObjectStore("kv");
    };
    opened = request(r);
  }
  return opened;
}

async function tx(store, mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(store, mode);
    let result;
    Promise.resolve(fn(t.objectStore(store))).then((r) => (result = r), reject);
    t.oncomplete = () => resolve(result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  });
}

export const get = (store, key) => tx(store, "readonly", (s) => request(s.get(key)));
export const all = (store) => tx(store, "readonly", (s) => request(s.getAll()));
export const put = (store, value, key) => tx(store, "readwrite", (s) => request(key === undefined ? s.put(value) : s.put(value, key)));
export const remove = (store, key) => tx(store, "readwrite", (s) => request(s.delete(key)));

export const setting = (key) => get("kv", key);
export const setSetting = (key, value) => put("kv", value, key);
export const removeSetting = (key) => remove("kv", key);

/** Every entry, newest first. */
export async function entries() {
  const list = await all("entries");
  return list.sort((a, b) => (a.taken_at < b.taken_at ? 1 : a.taken_at > b.taken_at ? -1 : 0));
}

/** Photos and entries of entries the station has confirmed and that are older than ``days``: gone from the phone. */
export async function forgetOld(days = 30) {
  const cutoff = new Date(Date.now() - days * 86400_000).toISOString();
  const keep = new Set();
  for (const e of await all("entries")) {
    if (e.synced && !e.dirty && e.taken_at < cutoff) await remove("entries", e.id);
    else keep.add(e.photo_sha256);
  }
  for (const p of await all("photos")) if (!keep.has(p.sha256)) await remove("photos", p.sha256);
}

/** Everything the app keeps on this phone, gone (entries not sent yet included). */
export async function wipe() {
  const db = await open();
  db.close();
  opened = null;
  await request(indexedDB.deleteDatabase(DB_NAME));
}
