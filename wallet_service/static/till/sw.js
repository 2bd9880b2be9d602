/* The till's service worker: the page shell starts offline; actions never wait here.
 *
 * The shell (the page, its script, styles, the barcode reader) is cached when the worker
 * installs and refreshed from the network whenever it answers. Calls to /till/api/ pass
 * straight through: when the network fails they fail, the page says "not sent", and the
 * staff decides whether to retry. Nothing is queued to be sent later.
 */
"use strict";

var CACHE = "till-shell-v1";
var SHELL = [
  "/till",
  "/till/manifest.webmanifest",
  "/static/till/till.css",
  "/static/till/till.js",
  "/static/till/icon-192.png",
  "/static/vendor/barcode-detector/ponyfill.js",
  "/static/vendor/barcode-detector/zxing_reader.wasm"
];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(SHELL); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== CACHE; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin
      || url.pathname.indexOf("/till/api/") === 0) {
    return; // the network's answer, or its failure, goes to the page as it is
  }
  var shell = url.pathname === "/till" ? "/till" : url.pathname;
  if (SHELL.indexOf(shell) < 0) { return; }
  // Network first, so a new release shows at once; the cached shell when offline.
  event.respondWith(fetch(event.request).then(function (response) {
    if (response.ok) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { cache.put(shell, copy); });
    }
    return response;
  }).catch(function () { return caches.match(shell); }));
});
