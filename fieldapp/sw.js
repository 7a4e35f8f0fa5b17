// The field app's service worker: the app shell and the model runtime cached on the first visit, so the app
// opens with no network. Served from the cache at once and refreshed behind it when there is a network
// (stale while revalidate); the station's API is never cached here (the app keeps its data in IndexedDB).

// The station fills in both when it serves this file (fishcore/server/routes/fieldapp.py, the one list of the
// app's files): the cache's name follows the contents of everything cached, so a new app or runtime replaces the old.
const CACHE = "fishcore-field-__VERSION__";
const SHELL = "__FILES__";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  event.respondWith(
    caches.open(CACHE).then(async (cache) => {
      const key = url.pathname === "/" ? "./" : event.request;
      const cached = await cache.match(key, { ignoreSearch: true });
      if (cached && url.pathname.includes("/vendor/")) return cached; // pinned by the lock file: never refetched
      const fresh = fetch(event.request)
        .then((response) => {
          if (response.ok) cache.put(key, response.clone());
          return response;
        })
        .catch(() => cached);
      return cached || fresh;
    }),
  );
});
