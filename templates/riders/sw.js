/* Campus Errand rider app service worker (served at /rider/sw.js, scope /rider/).
   Rider pages: network first, the last good copy when the network fails, then the offline page.
   Static files: cache first (their URLs change with their content in production).
   Everything else (APIs, sockets, POSTs) goes straight to the network. */
"use strict";
var VERSION = {{ version|safe }};
var SHELL = {{ shell|safe }};
var SCAN_ASSETS = {{ scan_assets|safe }};
var OFFLINE_URL = {{ offline_url|safe }};
var LOGOUT_URL = {{ logout_url|safe }};
var STATIC_CACHE = "rider-static-" + VERSION;
var PAGE_CACHE = "rider-pages-v1";
var NETWORK_TIMEOUT_MS = 4000;
var NO_CACHE_PAGES = ["/rider/board/fragment/", "/rider/sw.js"];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(STATIC_CACHE).then(function (cache) {
      // The shell must be complete; the scanner's decoder is a bonus.
      return cache.addAll(SHELL).then(function () {
        return cache.addAll(SCAN_ASSETS).catch(function () {});
      });
    }).then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (keys) {
      return Promise.all(keys.filter(function (k) {
        return k.indexOf("rider-static-") === 0 && k !== STATIC_CACHE;
      }).map(function (k) { return caches.delete(k); }));
    }).then(function () { return self.clients.claim(); })
  );
});

// Pages are cached per signed-in user: a different user (or a log-out) empties the page cache.
self.addEventListener("message", function (event) {
  var data = event.data || {};
  if (data.type !== "user") { return; }
  caches.open(PAGE_CACHE).then(function (cache) {
    var marker = new Request("/rider/__user__");
    return cache.match(marker).then(function (hit) {
      return hit ? hit.text() : null;
    }).then(function (previous) {
      var current = String(data.id || "");
      if (previous === current) { return; }
      return caches.delete(PAGE_CACHE).then(function () {
        return caches.open(PAGE_CACHE);
      }).then(function (fresh) { return fresh.put(marker, new Response(current)); });
    });
  });
});

function timeout(ms) {
  return new Promise(function (_, reject) { setTimeout(function () { reject(new Error("timeout")); }, ms); });
}

function networkFirst(request) {
  return Promise.race([fetch(request), timeout(NETWORK_TIMEOUT_MS)]).then(function (response) {
    if (response.ok && !response.redirected && response.type === "basic") {
      var copy = response.clone();
      caches.open(PAGE_CACHE).then(function (cache) { cache.put(request.url, copy); });
    }
    return response;
  }).catch(function () {
    return caches.open(PAGE_CACHE).then(function (cache) {
      return cache.match(request.url, { ignoreSearch: true });
    }).then(function (hit) {
      return hit || caches.match(OFFLINE_URL);
    }).then(function (hit) {
      return hit || new Response("offline", { status: 503, headers: { "Content-Type": "text/plain" } });
    });
  });
}

function cacheFirst(request) {
  return caches.match(request).then(function (hit) {
    if (hit) { return hit; }
    return fetch(request).then(function (response) {
      if (response.ok && response.type === "basic") {
        var copy = response.clone();
        caches.open(STATIC_CACHE).then(function (cache) { cache.put(request, copy); });
      }
      return response;
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.method === "POST" && url.pathname === LOGOUT_URL) {
    event.waitUntil(caches.delete(PAGE_CACHE));
    return;
  }
  if (request.method !== "GET") { return; }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(cacheFirst(request));
    return;
  }
  var isPage = request.mode === "navigate" ||
    (request.headers.get("Accept") || "").indexOf("text/html") !== -1;
  if (isPage && url.pathname.indexOf("/rider/") === 0 && NO_CACHE_PAGES.indexOf(url.pathname) === -1) {
    event.respondWith(networkFirst(request));
  }
});
