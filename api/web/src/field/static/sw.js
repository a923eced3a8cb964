// 城管通's service worker (scope /m/): the app opens without a network. Pages are fetched
// fresh when possible and the last copy of the shell answers offline; the console's hashed
// files (/assets/) never change under one name, so a kept copy is always right. The API
// (/v1/) is never cached: a case's state must come from the server, and drafts wait on the
// phone (src/field/drafts.js) until the network is back.
const SHELL = "cityops-field-shell-v1";
const ASSETS = "cityops-field-assets-v1";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.add("/m/")).catch(() => {}));
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => ![SHELL, ASSETS].includes(k))
      .map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

async function page(request) {
  try {
    const fresh = await fetch(request);
    if (fresh.ok) (await caches.open(SHELL)).put("/m/", fresh.clone());
    return fresh;
  } catch (err) {
    const kept = await caches.match("/m/");
    if (kept) return kept;
    throw err;
  }
}

async function asset(request) {
  const kept = await caches.match(request);
  if (kept) return kept;
  const fresh = await fetch(request);
  if (fresh.ok) (await caches.open(ASSETS)).put(request, fresh.clone());
  return fresh;
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (event.request.mode === "navigate" && url.pathname.startsWith("/m")) {
    event.respondWith(page(event.request));
  } else if (url.pathname.startsWith("/assets/")) {
    event.respondWith(asset(event.request));
  }
});
