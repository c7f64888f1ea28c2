/*
 * Territory Atlas: start fetching the map's unit shapes (and state outlines) as soon as the
 * map's iframe loads its first script, while Leaflet and the unit layer are still loading
 * (streamlit-folium loads its scripts one after another). The files are this script's `u`
 * parameters; unit_layer.js takes the same requests from `window.atlasPrefetch`.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) { return; }
  var cache = window.atlasPrefetch = window.atlasPrefetch || {};
  new URL(script.src).searchParams.getAll("u").forEach(function (url) {
    if (url.indexOf("/app/static/cache/") !== 0 || cache[url]) { return; }  // ours only
    cache[url] = fetch(url).then(function (r) {
      if (!r.ok) { throw new Error(url + ": " + r.status); }
      return r.json();
    });
    cache[url].catch(function () {});  // unit_layer.js reports it when it asks
  });
})();
