/*
 * Territory Atlas: the unit layer of the territory map, drawn inside the streamlit-folium
 * iframe.
 *
 * The base map never changes between reruns (so the component never remounts and the view
 * is kept). Each rerun only sends a small spec through `feature_group_to_add`:
 * one territory code per unit, the territory list, the layer choice. Unit shapes and
 * per-unit numbers are static files, fetched once and cached by their content-hashed URL.
 * Only units whose colour changed are restyled; outlines are the unit edges whose two sides
 * are in different territories.
 */
(function () {
  "use strict";
  if (window.atlasUnits) {
    return;
  }
  var UNASSIGNED = "#E6E6E6";  // ui/palette.py UNASSIGNED
  var cache = {};
  var state = {
    map: null, renderer: null, geomUrl: null, geom: null, units: null, colors: [],
    numbersUrl: null, numbers: null, basemapUrl: null, basemap: null, codes: null,
    homes: null, homesKey: null, legend: null, fitNonce: null,
    spec: null, layerValues: {}, busy: false, pending: null, hoverTip: null, version: 0,
    chosenLayer: null, picker: null, pickerControl: null, pickerKey: null,
  };
  try {  // the layer picked earlier in this browser tab
    state.chosenLayer = sessionStorage.getItem("atlasLayer");
  } catch (err) { /* storage unavailable: the page's layer */ }

  function fetchJSON(url) {
    if (!cache[url] && window.atlasPrefetch && window.atlasPrefetch[url]) {
      cache[url] = window.atlasPrefetch[url];  // asked for by prefetch.js, before Leaflet
    }
    if (!cache[url]) {
      cache[url] = fetch(url).then(function (r) {
        if (!r.ok) { throw new Error(url + ": " + r.status); }
        return r.json();
      });
    }
    return cache[url];
  }

  function decodeCodes(text) {
    var out = new Int32Array(text.length / 2);
    for (var i = 0; i < out.length; i++) {
      var c = text.substr(2 * i, 2);
      out[i] = c === ".." ? -1 : parseInt(c, 36);
    }
    return out;
  }

  function money(v) {
    if (v === null || v === undefined || isNaN(v)) { return "–"; }
    var a = Math.abs(v), sign = v < 0 ? "-$" : "$";  // -$451k, not $-451k
    if (a >= 1e9) { return sign + (a / 1e9).toFixed(1) + "B"; }
    if (a >= 1e6) { return sign + (a / 1e6).toFixed(1) + "M"; }
    if (a >= 1e3) { return sign + (a / 1e3).toFixed(0) + "k"; }
    return sign + a.toFixed(0);
  }
  function pct(v) {
    return (v === null || v === undefined || isNaN(v)) ? "–" : (100 * v).toFixed(0) + "%";
  }
  function fmt(v, kind) {
    if (kind === "money") { return money(v); }
    if (kind === "percent") { return pct(v); }
    if (v === null || v === undefined || isNaN(v)) { return "–"; }
    return Number(v).toLocaleString("en-US", {maximumFractionDigits: 1});
  }
  function esc(s) {
    return String(s === null || s === undefined ? "" : s).replace(/[&<>"]/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c];
    });
  }

  function tooltipHtml(i) {
    var g = state.geom, n = state.numbers, spec = state.spec;
    var code = state.codes ? state.codes[i] : -1;
    var t = code >= 0 ? spec.territories[code] : null;
    var html = "<b>" + esc(g.names[i]) + "</b>";
    if (n) {
      html += "<br>" + n.accounts[i] + " accounts, potential " + money(n.potential[i]) +
        ", won " + money(n.won[i]);
    }
    if (n && n.market_population !== undefined) {  // the market under the map
      html += "<br>Market: " + fmt(n.market_population[i]) + " people, " +
        fmt(n.market_establishments[i]) + " establishments";
    }
    var layer = activeLayer(spec), vals = layerValues(layer);
    if (layer.mode === "unit" && vals) {
      html += "<br>" + esc(layer.label) + ": " + fmt(vals[i], layer.format);
    }
    if (spec.hideTerritory) {
      return html;
    }
    if (t) {
      html += "<br><b>" + esc(t.name) + "</b>" + (t.locked ? " (locked)" : "") +
        "<br>Rep: " + esc(t.rep || "none") + " · attainment " + pct(t.attainment) +
        " · utilization " + pct(t.utilization) + " · " + esc(t.status);
    } else {
      html += "<br><i>Unassigned</i>";
    }
    return html;
  }

  // -- the units: one canvas layer draws every unit and finds the unit under a point -----
  // (17k Leaflet polygons took 0.3-0.4 s to build and 0.3 s to paint on a first load; one
  // layer that fills the units of each colour as one path takes a tenth of that)
  var CELL = 64;  // px: the grid that finds the units under a point
  var POINT_RADIUS = 5;

  function worldPoint(crs, lat, lng) {
    // the point at zoom 0 (Web Mercator inline: 120k vertices on a first load)
    if (crs === L.CRS.EPSG3857) {
      var max = 85.0511287798, s = Math.sin(Math.max(-max, Math.min(max, lat)) * Math.PI / 180);
      return [256 * (lng / 360 + 0.5), 256 * (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI))];
    }
    var p = crs.latLngToPoint(L.latLng(lat, lng), 0);
    return [p.x, p.y];
  }

  function pairTable(capacity) {
    // ids 0, 1, 2, ... for pairs of integers, in the order first seen (open addressing)
    var size = 1;
    while (size < 2 * capacity) { size *= 2; }
    var slots = new Int32Array(size).fill(-1), xs = new Int32Array(capacity);
    var ys = new Int32Array(capacity), count = 0;
    return {
      id: function (x, y) {
        var h = (Math.imul(x, 73856093) ^ Math.imul(y, 19349663)) & (size - 1);
        while (slots[h] >= 0) {
          var k = slots[h];
          if (xs[k] === x && ys[k] === y) { return k; }
          h = (h + 1) & (size - 1);
        }
        slots[h] = count;
        xs[count] = x;
        ys[count] = y;
        return count++;
      },
    };
  }

  var UnitsLayer = L.Path.extend({
    // one L.Path to the canvas renderer: it positions, clears and zooms the canvas (and its
    // zoom animation) as for any path, and calls _project, _update and _updatePath
    initialize: function (geom, crs, options) {
      L.setOptions(this, L.extend({interactive: false, weight: 1}, options));
      var n = geom.ids.length, points = geom.kind === "point";
      var ringStart = [0], unitRing = [0], xs = [], ys = [], lats = [], lngs = [];
      for (var i = 0; i < n; i++) {
        if (points) {
          var w = worldPoint(crs, geom.points[2 * i], geom.points[2 * i + 1]);
          xs.push(w[0]); ys.push(w[1]);
          ringStart.push(xs.length);
        } else {
          geom.shapes[i].forEach(function (poly) {
            poly.forEach(function (ring) {
              for (var j = 0; j < ring.length; j += 2) {
                var q = worldPoint(crs, ring[j], ring[j + 1]);
                xs.push(q[0]); ys.push(q[1]); lats.push(ring[j]); lngs.push(ring[j + 1]);
              }
              ringStart.push(xs.length);
            });
          });
        }
        unitRing.push(ringStart.length - 1);
      }
      this.points = points;
      this.count = n;
      this.wx = Float64Array.from(xs);
      this.wy = Float64Array.from(ys);
      this.ringStart = Int32Array.from(ringStart);
      this.unitRing = Int32Array.from(unitRing);
      this.px = new Float64Array(xs.length);
      this.py = new Float64Array(xs.length);
      this.box = new Float64Array(4 * n);  // layer px: min x, min y, max x, max y
      this.fill = new Array(n).fill(UNASSIGNED);
      this.alpha = new Float32Array(n).fill(0.7);
      this.lat = lats;
      this.lng = lngs;
      this.grid = null;
      this.edges = null;  // outlineIndex
      this.codes = null;  // the territory code of each unit, for the outlines
    },

    outlineIndex: function () {
      // every unit edge once, with the unit on each side (-1: none): the territory
      // outlines are the edges whose two sides are in different territories. Shared
      // borders are sent with the same rounded points, so a vertex is its lat, lng to
      // 1e-4 degree; vertices and edges are found in two integer-pair hash tables (17k
      // hexagons: ~20 ms; string keys took 0.2 s)
      if (this.edges || this.points) { return; }
      var n = this.wx.length, vid = new Int32Array(n), vertices = pairTable(n);
      for (var v = 0; v < n; v++) {
        vid[v] = vertices.id(Math.round(this.lat[v] * 1e4), Math.round(this.lng[v] * 1e4));
      }
      var edges = pairTable(n), ea = [], eb = [], eu = [], ew = [];
      function add(i, a, b) {
        var x = vid[a], y = vid[b];
        if (x === y) { return; }
        var e = x < y ? edges.id(x, y) : edges.id(y, x);
        if (e === ea.length) {
          ea.push(a); eb.push(b); eu.push(i); ew.push(-1);
        } else { ew[e] = i; }
      }
      for (var i = 0; i < this.count; i++) {
        for (var r = this.unitRing[i]; r < this.unitRing[i + 1]; r++) {
          var lo = this.ringStart[r], hi = this.ringStart[r + 1];
          for (var w = lo; w < hi - 1; w++) { add(i, w, w + 1); }
          if (hi - lo > 2) { add(i, hi - 1, lo); }  // nothing if the ring ends where it began
        }
      }
      this.edges = {a: Int32Array.from(ea), b: Int32Array.from(eb), u: Int32Array.from(eu),
                    w: Int32Array.from(ew)};
    },

    _project: function () {
      var map = this._map, s = map.options.crs.scale(map.getZoom()) / map.options.crs.scale(0);
      var o = map.getPixelOrigin(), px = this.px, py = this.py, wx = this.wx, wy = this.wy;
      for (var k = 0; k < wx.length; k++) {
        px[k] = wx[k] * s - o.x;
        py[k] = wy[k] * s - o.y;
      }
      var box = this.box, r = this.points ? POINT_RADIUS + 1 : 0;
      var all = [Infinity, Infinity, -Infinity, -Infinity];
      for (var i = 0; i < this.count; i++) {
        var lo = this.ringStart[this.unitRing[i]], hi = this.ringStart[this.unitRing[i + 1]];
        var b = [Infinity, Infinity, -Infinity, -Infinity];
        for (var v = lo; v < hi; v++) {
          if (px[v] < b[0]) { b[0] = px[v]; }
          if (py[v] < b[1]) { b[1] = py[v]; }
          if (px[v] > b[2]) { b[2] = px[v]; }
          if (py[v] > b[3]) { b[3] = py[v]; }
        }
        box[4 * i] = b[0] - r; box[4 * i + 1] = b[1] - r;
        box[4 * i + 2] = b[2] + r; box[4 * i + 3] = b[3] + r;
        for (var c = 0; c < 2; c++) {
          all[c] = Math.min(all[c], box[4 * i + c]);
          all[c + 2] = Math.max(all[c + 2], box[4 * i + c + 2]);
        }
      }
      this._pxBounds = this.count ? L.bounds([all[0], all[1]], [all[2], all[3]]) : null;
      this.grid = null;  // the pixels moved: the grid is built again when next asked for
    },

    _update: function () {},  // a pan moves the canvas, not the units' layer points

    _containsPoint: function () { return false; },  // the renderer's own hit test: not ours

    _trace: function (ctx, i) {
      var px = this.px, py = this.py;
      for (var r = this.unitRing[i]; r < this.unitRing[i + 1]; r++) {
        var lo = this.ringStart[r], hi = this.ringStart[r + 1];
        if (this.points) {
          ctx.moveTo(px[lo] + POINT_RADIUS, py[lo]);
          ctx.arc(px[lo], py[lo], POINT_RADIUS, 0, 2 * Math.PI);
          continue;
        }
        // no closePath: Chromium's takes time in the number of subpaths before it (2 s for
        // 17k units in one path); a ring ends on its first point, as the shapes are sent
        ctx.moveTo(px[lo], py[lo]);
        for (var v = lo + 1; v < hi; v++) { ctx.lineTo(px[v], py[v]); }
        if (px[hi - 1] !== px[lo] || py[hi - 1] !== py[lo]) { ctx.lineTo(px[lo], py[lo]); }
      }
    },

    _updatePath: function () {
      // the units of one colour and opacity filled as one path, then every edge stroked
      // once; units off the canvas are skipped
      var r = this._renderer, ctx = r._ctx, b = r._redrawBounds || r._bounds, box = this.box;
      var groups = new Map(), shown = [], seen = new Uint8Array(this.count);
      for (var i = 0; i < this.count; i++) {
        if (box[4 * i + 2] < b.min.x || box[4 * i] > b.max.x ||
            box[4 * i + 3] < b.min.y || box[4 * i + 1] > b.max.y) { continue; }
        seen[i] = 1;
        var key = this.fill[i] + "|" + this.alpha[i];
        var g = groups.get(key);
        if (!g) { groups.set(key, g = [this.fill[i], this.alpha[i], []]); }
        g[2].push(i);
        shown.push(i);
      }
      var self = this;
      groups.forEach(function (g) {
        ctx.beginPath();
        g[2].forEach(function (j) { self._trace(ctx, j); });
        ctx.globalAlpha = g[1];
        ctx.fillStyle = g[0];
        ctx.fill("evenodd");
      });
      ctx.globalAlpha = 1;
      ctx.beginPath();
      shown.forEach(function (j) { self._trace(ctx, j); });
      ctx.lineWidth = this.points ? 1 : 0.4;
      ctx.strokeStyle = this.points ? "#333333" : "#ffffff";
      ctx.lineJoin = ctx.lineCap = "round";
      ctx.stroke();
      // the territory outlines, above
      var E = this.edges, codes = this.codes, px = this.px, py = this.py;
      if (!E || !codes) { return; }
      ctx.beginPath();
      for (var e = 0; e < E.a.length; e++) {
        if (!seen[E.u[e]]) { continue; }
        var one = codes[E.u[e]], two = E.w[e] >= 0 ? codes[E.w[e]] : -2;
        if (one === two || (one < 0 && two < 0)) { continue; }
        ctx.moveTo(px[E.a[e]], py[E.a[e]]);
        ctx.lineTo(px[E.b[e]], py[E.b[e]]);
      }
      ctx.lineWidth = 1.6;
      ctx.strokeStyle = "#202020";
      ctx.stroke();
    },

    redrawAll: function () {
      if (this._renderer) { this._renderer._requestRedraw(this); }
    },

    setUnitStyle: function (i, color, opacity) {
      // the unit's box (and its outline's width) is drawn again at the next frame
      this.fill[i] = color;
      this.alpha[i] = opacity;
      var r = this._renderer, box = this.box;
      if (!r || !r._map) { return; }
      r._redrawBounds = r._redrawBounds || new L.Bounds();
      r._redrawBounds.extend(L.point(box[4 * i] - 2, box[4 * i + 1] - 2));
      r._redrawBounds.extend(L.point(box[4 * i + 2] + 2, box[4 * i + 3] + 2));
      r._redrawRequest = r._redrawRequest || L.Util.requestAnimFrame(r._redraw, r);
    },

    contains: function (i, p) {
      // whether unit i holds layer point p (a point unit: within its circle)
      var box = this.box;
      if (p.x < box[4 * i] || p.x > box[4 * i + 2] || p.y < box[4 * i + 1] ||
          p.y > box[4 * i + 3]) { return false; }
      var px = this.px, py = this.py, inside = false;
      for (var r = this.unitRing[i]; r < this.unitRing[i + 1]; r++) {
        var lo = this.ringStart[r], hi = this.ringStart[r + 1];
        if (this.points) {
          var dx = px[lo] - p.x, dy = py[lo] - p.y, t = POINT_RADIUS + 2;
          return dx * dx + dy * dy <= t * t;
        }
        for (var a = lo, c = hi - 1; a < hi; c = a++) {  // even-odd over every ring
          if ((py[a] > p.y) !== (py[c] > p.y) &&
              p.x < (px[c] - px[a]) * (p.y - py[a]) / (py[c] - py[a]) + px[a]) {
            inside = !inside;
          }
        }
      }
      return inside;
    },

    cellUnits: function (cx, cy) {
      // the units whose pixel box covers grid cell (cx, cy), built once per projection
      if (!this.grid) {
        var grid = new Map(), box = this.box;
        for (var i = 0; i < this.count; i++) {
          for (var x = Math.floor(box[4 * i] / CELL); x <= Math.floor(box[4 * i + 2] / CELL); x++) {
            for (var y = Math.floor(box[4 * i + 1] / CELL);
              y <= Math.floor(box[4 * i + 3] / CELL); y++) {
              var key = x + "," + y, list = grid.get(key);
              if (list) { list.push(i); } else { grid.set(key, [i]); }
            }
          }
        }
        this.grid = grid;
      }
      return this.grid.get(cx + "," + cy) || [];
    },

    unitsAt: function (p) {  // every unit holding layer point p
      var self = this;
      return this.cellUnits(Math.floor(p.x / CELL), Math.floor(p.y / CELL))
        .filter(function (i) { return self.contains(i, p); });
    },
  });

  function build(map, geom) {
    if (state.units) { map.removeLayer(state.units); }
    state.colors = new Array(geom.ids.length).fill(null);
    state.units = new UnitsLayer(geom, map.options.crs, {renderer: state.renderer});
    state.units.addTo(map);
  }

  function unitAt(e) {  // the unit under a map mouse event's point, or -1
    var hits = state.units ? state.units.unitsAt(e.layerPoint) : [];
    return hits.length ? hits[hits.length - 1] : -1;
  }

  function onHover(e) {
    // a rep's home has its own tooltip: the unit's waits until the pointer leaves it
    var target = e.originalEvent && e.originalEvent.target;
    var i = state.brushing || (target && target.closest && target.closest(".leaflet-atlasHomes-pane"))
      ? -1 : unitAt(e);
    if (i < 0) { onOut(); return; }
    if (!state.hoverTip) {
      state.hoverTip = L.tooltip({sticky: true, direction: "top", offset: [0, -8],
                                  className: "atlas-tip"});
    }
    state.hoverTip.setLatLng(e.latlng).setContent(tooltipHtml(i));
    if (!state.map.hasLayer(state.hoverTip)) { state.hoverTip.addTo(state.map); }
  }
  function onOut() {
    if (state.hoverTip && state.map.hasLayer(state.hoverTip)) {
      state.map.removeLayer(state.hoverTip);
    }
  }

  function onMapClick(e) {
    // a click anywhere on the map, a rep's home included (it lies above the units): a
    // click on the unit under it
    var i = unitAt(e);
    if (i >= 0) { onUnitClick(i, e.latlng); }
  }

  function strokeTarget(spec) {
    // the territory code a Paint or Erase stroke gives its units (-1: none), or null when
    // the map cannot answer it (no brush, a locked brush: the server will say why)
    if (!spec || !state.codes || (spec.mode !== "Paint" && spec.mode !== "Erase")) {
      return null;
    }
    if (spec.mode === "Erase") { return -1; }
    var t = spec.territories.findIndex(function (x) { return x.id === spec.brush; });
    return t < 0 || spec.territories[t].locked ? null : t;
  }

  function takeUnit(spec, i, target, from) {
    // recolour one unit for a stroke unless it is there already or locked; true if taken
    var now = state.codes[i];
    if (now === target || (now >= 0 && spec.territories[now].locked)) { return false; }
    from[i] = now;
    state.codes[i] = target;
    styleUnit(spec, i);
    return true;
  }

  function beginStroke(spec, target, from, key) {
    // the map's answer is settled by the first spec whose `answered` names this stroke (a
    // rerun that started before the server saw it does not answer it)
    var indices = Object.keys(from).map(Number);
    state.stroke = {target: target, indices: indices, version: state.version, waited: 0,
                    key: key, prior: JSON.stringify(spec.answered || null)};
    strokeEstimate(spec, from, target);
    drawOutlinesSoon();
    var el = document.getElementById("atlas-status");
    if (el) {
      el.setAttribute("data-answered-first",
                      indices.map(function (i) { return state.geom.ids[i]; }).join(","));
      el.setAttribute("data-answered-under", String(state.version));
    }
  }

  function sendNow() {
    // streamlit-folium reports a click or a drawing 250 ms later (a debounce for pans and
    // zooms); a stroke the map has answered goes to the server at once: the same value
    // its debounced report would send, which then finds nothing new and sends nothing
    var g = window.__GLOBAL_DATA__, S = window.Streamlit;
    var sent = {last_clicked: "lat_lng_clicked", last_active_drawing: "last_active_drawing"};
    if (!g || !S || !g.returned_objects) { return; }
    if (!g.returned_objects.every(function (k) { return k in sent; })) { return; }
    var data = {};
    ["last_clicked", "last_active_drawing"].forEach(function (k) {  // its key order
      if (g.returned_objects.indexOf(k) >= 0) { data[k] = g[sent[k]]; }
    });
    if (JSON.stringify(g.previous_data) !== JSON.stringify(data)) {
      g.previous_data = data;
      S.setComponentValue(data);
    }
  }

  function onUnitClick(i, latlng) {
    // The map answers first: a click in Paint or Erase mode recolours its unit at once;
    // the click still goes on to the server (streamlit-folium's last_clicked), which saves
    // it and stays the authority: its next spec replaces these codes, so a refused stroke
    // is put back as soon as the server answers. Locked territories wait for the server.
    // A click the map does not recolour (Inspect, a unit already in the brush territory,
    // a locked one) goes to the server at once as well: its answer or message comes sooner.
    var spec = state.spec, target = strokeTarget(spec), from = {};
    if (!spec || !spec.mode || brushActive(spec)) { return; }
    if (target !== null && takeUnit(spec, i, target, from)) {
      beginStroke(spec, target, from, {lat: latlng.lat, lng: latlng.lng});
    }
    setTimeout(sendNow, 0);  // after the map's own click handler has noted the click
  }

  // -- the drag brush: every unit the pointer passes over, one stroke -------------------

  function brushActive(spec) {
    return !!spec && spec.drag !== null && spec.drag !== undefined &&
      strokeTarget(spec) !== null && !state.drawing;
  }

  function centre(i) {
    var g = state.geom;
    if (g.kind === "point") { return [g.points[2 * i], g.points[2 * i + 1]]; }
    return [g.centres[2 * i], g.centres[2 * i + 1]];
  }

  function brushGrid(map) {
    // the units' centres by the 64 px cells they lie in (the view does not move while the
    // button is held)
    var centres = {};
    for (var i = 0; i < state.geom.ids.length; i++) {
      var c = map.latLngToLayerPoint(centre(i));
      var key = Math.floor(c.x / CELL) + "," + Math.floor(c.y / CELL);
      (centres[key] = centres[key] || []).push([i, c]);
    }
    return {centres: centres};
  }

  function kmPerPixel(map, lat) {
    return 40075.016686 * Math.cos(lat * Math.PI / 180) / (256 * Math.pow(2, map.getZoom()));
  }

  function brushAt(p) {
    // the units under layer point `p`, and with a brush size, those whose centre lies
    // within that many km of it
    var b = state.brushing, hits = state.units.unitsAt(p);
    if (b.radius > 0) {
      var r = b.radius, r2 = r * r;
      for (var x = Math.floor((p.x - r) / CELL); x <= Math.floor((p.x + r) / CELL); x++) {
        for (var y = Math.floor((p.y - r) / CELL); y <= Math.floor((p.y + r) / CELL); y++) {
          (b.grid.centres[x + "," + y] || []).forEach(function (ic) {
            var dx = ic[1].x - p.x, dy = ic[1].y - p.y;
            if (dx * dx + dy * dy <= r2) { hits.push(ic[0]); }
          });
        }
      }
    }
    return hits;
  }

  function brushTo(p) {
    // paint along the segment from the last pointer position, pixel by pixel: a fast drag
    // skips no unit, however small the units are at this zoom
    var b = state.brushing, last = b.last;
    var steps = last ? Math.max(1, Math.ceil(last.distanceTo(p))) : 1;  // every pixel
    for (var k = 1; k <= steps; k++) {
      var q = last ? last.add(p.subtract(last).multiplyBy(k / steps)) : p;
      brushAt(q).forEach(function (i) {
        if (!(i in b.seen)) {
          b.seen[i] = true;
          takeUnit(b.spec, i, b.target, b.from);
        }
      });
    }
    b.last = p;
  }

  function startBrush(latlng, layerPoint) {
    var spec = state.spec, map = state.map;
    state.brushing = {
      spec: spec, target: strokeTarget(spec), from: {}, seen: {}, last: null,
      grid: brushGrid(map), path: [latlng],
      radius: spec.drag > 0 ? spec.drag / kmPerPixel(map, latlng.lat) : 0,
    };
    brushTo(layerPoint);
  }

  function moveBrush(latlng, layerPoint) {
    var b = state.brushing;
    if (!b) { return; }
    brushTo(layerPoint);
    var tail = b.path[b.path.length - 1];
    if (state.map.latLngToLayerPoint(tail).distanceTo(layerPoint) > 6) {
      b.path.push(latlng);
    }
  }

  function onBrushDown(e) {  // the mouse, through Leaflet's map events
    if (!brushActive(state.spec) || e.originalEvent.button !== 0) { return; }
    L.DomEvent.preventDefault(e.originalEvent);  // no text selection while painting
    startBrush(e.latlng, e.layerPoint);
  }

  function onBrushMove(e) {
    moveBrush(e.latlng, e.layerPoint);
  }

  function onBrushUp() {
    var b = state.brushing;
    if (!b) { return; }
    state.brushing = null;
    state.swallowClickUntil = Date.now() + 400;  // the click that ends a drag is not one
    var ids = Object.keys(b.from).map(function (i) { return state.geom.ids[Number(i)]; });
    if (!ids.length) { return; }
    var nonce = Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    beginStroke(b.spec, b.target, b.from, {stroke: nonce});
    // sent through streamlit-folium as a drawn feature: the painted units, the path drawn
    var path = b.path.length > 1 ? b.path : [b.path[0], b.path[0]];
    var line = L.polyline(path);
    line.feature = {type: "Feature", properties: {atlas_stroke: nonce, units: ids}};
    state.map.fire("draw:created", {layer: line, layerType: "atlas_stroke"});
    sendNow();
  }

  function insideRing(lng, lat, ring) {  // ring: [[lng, lat], ...], closed
    var inside = false;
    for (var a = 0, b = ring.length - 1; a < ring.length; b = a++) {
      var xa = ring[a][0], ya = ring[a][1], xb = ring[b][0], yb = ring[b][1];
      if ((ya > lat) !== (yb > lat) && lng < (xb - xa) * (lat - ya) / (yb - ya) + xa) {
        inside = !inside;
      }
    }
    return inside;
  }

  function onDrawn(e) {
    // a rectangle or polygon drawn in Paint or Erase: the units whose centre it holds (the
    // server's rule, UnitIndex.inside) are recoloured at once; the server still decides
    if (e.layerType === "atlas_stroke") { return; }
    var spec = state.spec, target = strokeTarget(spec);
    if (target === null || !e.layer || !e.layer.toGeoJSON) { return; }
    var geometry = e.layer.toGeoJSON().geometry;
    if (!geometry || geometry.type !== "Polygon") { return; }
    var ring = geometry.coordinates[0], from = {};
    var lo = [Infinity, Infinity], hi = [-Infinity, -Infinity];
    ring.forEach(function (p) {
      lo = [Math.min(lo[0], p[0]), Math.min(lo[1], p[1])];
      hi = [Math.max(hi[0], p[0]), Math.max(hi[1], p[1])];
    });
    for (var i = 0; i < state.geom.ids.length; i++) {
      var c = centre(i);  // [lat, lng]
      if (c[1] >= lo[0] && c[1] <= hi[0] && c[0] >= lo[1] && c[0] <= hi[1] &&
          insideRing(c[1], c[0], ring)) {
        takeUnit(spec, i, target, from);
      }
    }
    if (Object.keys(from).length) {
      beginStroke(spec, target, from, {shape: ring[0]});
    }
    sendNow();
  }

  function brushHooks(map) {
    map.on("mousemove", onHover);
    map.on("mouseout", onOut);
    map.on("click", onMapClick);
    map.on("draw:created", onDrawn);
    map.on("mousedown", onBrushDown);
    map.on("mousemove", onBrushMove);
    map.on("mouseup", onBrushUp);
    document.addEventListener("mouseup", onBrushUp);  // released outside the map
    map.getContainer().addEventListener("click", function (e) {
      if (state.swallowClickUntil && Date.now() < state.swallowClickUntil) {
        state.swallowClickUntil = 0;
        e.stopImmediatePropagation();
        e.stopPropagation();
      }
    }, true);
    // a finger or a pen: Leaflet sends no mouse events for a touch drag, pointer events do
    var box = map.getContainer();
    box.addEventListener("pointerdown", function (e) {
      if (e.pointerType === "mouse" || !e.isPrimary || !brushActive(state.spec)) { return; }
      e.preventDefault();
      box.setPointerCapture(e.pointerId);
      startBrush(map.mouseEventToLatLng(e), map.mouseEventToLayerPoint(e));
    });
    box.addEventListener("pointermove", function (e) {
      if (e.pointerType === "mouse" || !state.brushing) { return; }
      moveBrush(map.mouseEventToLatLng(e), map.mouseEventToLayerPoint(e));
    });
    ["pointerup", "pointercancel"].forEach(function (type) {
      box.addEventListener(type, function (e) {
        if (e.pointerType !== "mouse") { onBrushUp(); }
      });
    });
    map.on("draw:drawstart", function () { state.drawing = true; setDragging(map); });
    map.on("draw:drawstop", function () { state.drawing = false; setDragging(map); });
  }

  function setDragging(map) {
    // while the drag brush is on, dragging paints instead of moving the map; while a
    // shape is drawn, leaflet.draw owns the map's dragging (it turns it off and back on)
    if (state.drawing) { return; }
    var on = brushActive(state.spec);
    if (on && !state.dragOff) {
      map.dragging.disable();
      state.dragOff = true;
    } else if (!on && state.dragOff) {
      map.dragging.enable();
      state.dragOff = false;
    }
    map.getContainer().style.cursor = on ? "crosshair" : "";
    map.getContainer().style.touchAction = on ? "none" : "";  // a finger paints, not scrolls
  }

  // -- keyboard: Ctrl+Z / Ctrl+Shift+Z reach the page's Undo and Redo from the map ------
  function keyHooks() {
    document.addEventListener("keydown", function (e) {
      if (!(e.ctrlKey || e.metaKey) || (e.key !== "z" && e.key !== "Z")) { return; }
      var host;
      try { host = window.parent.document; } catch (err) { return; }
      if (!host || host === document) { return; }
      e.preventDefault();
      ["keydown", "keyup"].forEach(function (type) {
        host.dispatchEvent(new KeyboardEvent(type, {
          key: e.key, code: e.code, ctrlKey: e.ctrlKey, metaKey: e.metaKey,
          shiftKey: e.shiftKey, bubbles: true, cancelable: true,
        }));
      });
    });
  }

  // -- the stroke panel: the numbers of the territories a click touched, at once --------
  var SUMS = ["accounts", "potential", "won"];

  function territoryRow(t) {  // the server's numbers of a territory, as it sent them
    return {id: t.id, name: t.name, accounts: t.accounts, potential: t.potential,
            won: t.won, quota: t.quota, attainment: t.attainment};
  }

  function strokeEstimate(spec, from, to) {
    // the server's last numbers of the touched territories, plus or minus the units' own
    // (per-unit sums: an estimate until the server answers; pinned accounts can differ)
    var n = state.numbers, rows = [], delta = {};
    if (!n) { return; }
    Object.keys(from).forEach(function (key) {
      var i = Number(key);
      [[from[key], -1], [to, 1]].forEach(function (pair) {
        if (pair[0] < 0) { return; }
        var d = delta[pair[0]] = delta[pair[0]] || {accounts: 0, potential: 0, won: 0};
        SUMS.forEach(function (k) { d[k] += pair[1] * (n[k][i] || 0); });
      });
    });
    Object.keys(delta).forEach(function (code) {
      var before = territoryRow(spec.territories[Number(code)]), after = territoryRow(before);
      SUMS.forEach(function (k) {
        if (before[k] !== null && before[k] !== undefined) { after[k] = before[k] + delta[code][k]; }
      });
      after.attainment = after.quota > 0 && after.won !== null ? after.won / after.quota
        : null;  // won / quota, as docs/metrics.md defines it
      rows.push({before: before, after: after});
    });
    state.stroke.ids = rows.map(function (r) { return r.before.id; });
    drawStroke(rows, "estimate");
  }

  function answers(spec, s) {
    var a = spec.answered, k = s.key;
    if (!a || JSON.stringify(a) === s.prior) { return false; }
    if (k.stroke) { return a.stroke === k.stroke; }
    if (k.shape) {
      return !!a.shape && Math.abs(a.shape[0] - k.shape[0]) < 1e-9 &&
        Math.abs(a.shape[1] - k.shape[1]) < 1e-9;
    }
    return Math.abs(a.lat - k.lat) < 1e-9 && Math.abs(a.lng - k.lng) < 1e-9;
  }

  function keepPendingStroke(spec) {
    // a spec that does not answer the pending click yet (a rerun begun before the server
    // saw it) must not undo the map's answer; three such in a row: give up on the click
    var s = state.stroke;
    if (!s || spec.version <= s.version || answers(spec, s)) { return; }
    if (++s.waited < 3) {
      s.indices.forEach(function (i) { state.codes[i] = s.target; });
    }
  }

  function strokeAnswered(spec) {
    // the server's answer to the click: its own numbers replace the estimate
    var s = state.stroke;
    if (!s || spec.version <= s.version) { return; }
    if (!answers(spec, s) && s.waited < 3) { return; }
    state.stroke = null;
    if (!s.ids) { return; }
    var saved = s.indices.every(function (i) { return state.codes[i] === s.target; });
    var rows = s.ids.map(function (id) {
      var t = spec.territories.find(function (x) { return x.id === id; });
      var r = t ? territoryRow(t) : null;
      return {before: r, after: r};
    }).filter(function (r) { return r.after; });
    drawStroke(rows, saved ? "saved" : "refused");
  }

  function drawStroke(rows, status) {
    var map = state.map;
    if (!state.strokePanel) {
      state.strokePanel = L.control({position: "topright"});
      state.strokePanel.onAdd = function () {
        var div = L.DomUtil.create("div");
        div.id = "atlas-stroke";
        div.style.cssText = "background:#fff;padding:6px 8px;border-radius:4px;" +
          "box-shadow:0 1px 4px rgba(0,0,0,.3);font:12px sans-serif;max-width:300px";
        // a click, a drag or the wheel on the panel is not one on the unit beneath it
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      };
      state.strokePanel.addTo(map);
    }
    var div = document.getElementById("atlas-stroke");
    var head = {estimate: "This stroke (estimate, saving...)",
                saved: "This stroke, as saved",
                // the unit not as the map guessed: refused, or (on a border, where the
                // map's simplified shapes and the server's differ) a neighbour was taken
                refused: "The server's answer differs: the map shows the plan as stored " +
                  "(see the message above the map)"}[status];
    var html = "<b>" + head + "</b>";
    rows.forEach(function (r) {
      var a = r.after, b = r.before;
      function cell(k, f) {
        var d = status === "estimate" && a[k] !== b[k] && a[k] !== null && b[k] !== null
          ? " (" + (a[k] > b[k] ? "+" : "") + f(a[k] - b[k]) + ")" : "";
        return f(a[k]) + d;
      }
      html += "<br><b>" + esc(a.name || a.id) + "</b>: " +
        cell("accounts", function (v) { return fmt(v); }) + " accounts, potential " +
        cell("potential", money) + ", won " + cell("won", money) + ", attainment " +
        pct(a.attainment);
    });
    div.innerHTML = html;
    div.setAttribute("data-status", status);
    div.setAttribute("data-rows", JSON.stringify(rows.map(function (r) { return r.after; })));
  }

  function classColor(value, layer) {
    if (value === null || value === undefined || isNaN(value)) { return UNASSIGNED; }
    var k = 0;
    while (k < layer.breaks.length && value > layer.breaks[k]) { k++; }
    return layer.colors[k];
  }

  function layerValues(layer) {
    // a unit layer's values: its own file (an overlay the manager imported), else the
    // per-unit numbers file
    if (layer.values) { return state.layerValues[layer.values] || null; }
    return state.numbers && state.numbers[layer.metric] !== undefined
      ? state.numbers[layer.metric] : null;
  }

  function activeLayer(spec) {
    // the layer the manager picked in the map (kept for the browser tab), else the page's
    var picked = spec && spec.layers && state.chosenLayer !== null
      ? spec.layers[state.chosenLayer] : null;
    return picked || (spec && spec.layer) || {mode: "territory"};
  }

  function unitColor(spec, i) {
    var layer = activeLayer(spec);
    var c = state.codes[i], t = c >= 0 ? spec.territories[c] : null;
    if (layer.mode === "unit") {
      var vals = layerValues(layer);
      return vals ? classColor(vals[i], layer) : UNASSIGNED;
    }
    if (layer.mode === "territory_metric") {
      return t ? classColor(t[layer.metric], layer) : UNASSIGNED;
    }
    return t ? t.color : UNASSIGNED;
  }

  function styleUnit(spec, i) {
    // restyle unit i if its look changed; 1 if it did
    var codes = state.codes, dim = spec.dim || null, color = unitColor(spec, i);
    var t = codes[i] >= 0 ? spec.territories[codes[i]] : null;
    var faded = dim !== null && dim.charAt(i) !== "1";
    var key = color + (t && t.locked ? "L" : "") + (t && t.id === spec.brush ? "B" : "") +
      (faded ? "D" : "");
    if (state.colors[i] === key) { return 0; }
    // highlighted areas stand out, others dim; the brush territory stands out, a locked
    // one fades
    var opacity = faded ? 0.08 : t && t.locked ? 0.4 : (t && t.id === spec.brush ? 0.92 : 0.68);
    state.units.setUnitStyle(i, color, opacity);
    state.colors[i] = key;
    return 1;
  }

  function restyle(spec) {
    var changed = 0;
    for (var i = 0; i < state.geom.ids.length; i++) { changed += styleUnit(spec, i); }
    return changed;
  }

  function drawOutlinesSoon() {
    // a new map's edges are indexed once its units have reached the screen
    requestAnimationFrame(function () { setTimeout(drawOutlines, 0); });
  }

  function drawOutlines() {
    // the outlines are drawn with the units, from the codes the map shows now
    if (state.geom.kind === "point") { return; }
    state.units.outlineIndex();
    state.units.codes = state.codes;
    state.units.redrawAll();
  }

  function drawBasemap(map, data) {
    var lines = L.geoJSON(data, {
      style: {color: "#555555", weight: 0.8, fill: false, opacity: 0.8},
      interactive: false, renderer: state.lineRenderer,
    });
    lines.addTo(map);
  }

  function drawHomes(map, homes) {
    var key = JSON.stringify(homes || []);
    if (key === state.homesKey) { return; }
    state.homesKey = key;
    if (state.homes) { map.removeLayer(state.homes); }
    state.homes = L.layerGroup((homes || []).map(function (h) {
      return L.circleMarker([h[0], h[1]], {
        radius: 5, color: "#000000", weight: 2, fillColor: "#ffffff", fillOpacity: 1,
        renderer: state.homeRenderer,
      }).bindTooltip("<b>" + esc(h[2]) + "</b> (home base)<br>" + esc(h[3]));
    }));
    state.homes.addTo(map);
  }

  function panel(cls, padding) {
    // a white box floating on the map that keeps clicks and the wheel to itself
    var div = L.DomUtil.create("div", cls);
    div.style.cssText = "background:#fff;padding:" + padding + ";border-radius:4px;" +
      "box-shadow:0 0 4px rgba(0,0,0,.3);font:12px sans-serif";
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  }

  function drawPicker(map, spec) {
    // "Colour units by" inside the map: a switch restyles the canvas from the numbers the
    // map already holds (no page rerun); the choice is kept for the browser tab
    var names = spec.layers ? Object.keys(spec.layers) : [];
    var key = names.join("\n");
    if (key === state.pickerKey) {
      if (state.picker) { state.picker.value = activeLabel(spec); }
      return;
    }
    state.pickerKey = key;
    if (state.pickerControl) { map.removeControl(state.pickerControl); }
    state.pickerControl = null;
    state.picker = null;
    if (!names.length) { return; }
    var control = L.control({position: "topright"});
    control.onAdd = function () {
      var div = panel("atlas-layer-control", "4px 6px");
      var label = L.DomUtil.create("label", "", div);
      label.textContent = "Colour units by ";
      var select = L.DomUtil.create("select", "atlas-layer-picker", label);
      select.setAttribute("aria-label", "Colour units by");
      select.style.cssText = "font:12px sans-serif;max-width:230px";
      names.forEach(function (name) {
        var opt = document.createElement("option");
        opt.value = name;
        opt.textContent = name;  // text, never markup: overlay names are typed by people
        select.appendChild(opt);
      });
      select.value = activeLabel(spec);
      select.addEventListener("change", function () { chooseLayer(map, select.value); });
      state.picker = select;
      return div;
    };
    control.addTo(map);
    state.pickerControl = control;
  }

  function activeLabel(spec) {
    return spec.layers && state.chosenLayer !== null && spec.layers[state.chosenLayer]
      ? state.chosenLayer : (spec.layer && spec.layer.label) || "Territory";
  }

  async function chooseLayer(map, name) {
    var t0 = performance.now();
    state.chosenLayer = name;
    try { sessionStorage.setItem("atlasLayer", name); } catch (err) { /* private mode */ }
    var spec = state.spec, layer = activeLayer(spec);
    if (layer.values && !state.layerValues[layer.values]) {
      state.layerValues[layer.values] = (await fetchJSON(layer.values)).values;
    }
    if (state.spec !== spec) { return; }  // a newer spec took over: it applies the choice
    var changed = restyle(spec);
    drawLegend(map, spec);
    var el = document.getElementById("atlas-status");
    if (el) {
      el.setAttribute("data-restyled", String(changed));
      el.setAttribute("data-layer", activeLabel(spec));
      el.setAttribute("data-layer-ms", String(Math.round((performance.now() - t0) * 10) / 10));
    }
  }

  function drawLegend(map, spec) {
    var layer = activeLayer(spec);
    if (state.legend) { map.removeControl(state.legend); state.legend = null; }
    if (layer.mode === "territory") { return; }
    var legend = L.control({position: "bottomright"});
    legend.onAdd = function () {
      var div = panel("atlas-legend", "6px 8px");
      div.style.lineHeight = "18px";
      var html = "<b>" + esc(layer.label) + "</b><br>";
      for (var k = 0; k < layer.colors.length; k++) {
        var lo = k === 0 ? null : layer.breaks[k - 1];
        var hi = k < layer.breaks.length ? layer.breaks[k] : null;
        var text = lo === null ? "≤ " + fmt(hi, layer.format)
          : hi === null ? "> " + fmt(lo, layer.format)
            : fmt(lo, layer.format) + " – " + fmt(hi, layer.format);
        html += '<i style="display:inline-block;width:14px;height:12px;margin-right:6px;' +
          "background:" + layer.colors[k] + '"></i>' + text + "<br>";
      }
      html += '<i style="display:inline-block;width:14px;height:12px;margin-right:6px;' +
        "background:" + UNASSIGNED + '"></i>no value';
      div.innerHTML = html;
      return div;
    };
    legend.addTo(map);
    state.legend = legend;
  }

  async function apply(map, spec) {
    if (state.map !== map) {
      state.map = map;
      state.renderer = L.canvas({padding: 0.3, tolerance: 2});
      // outlines and state lines above the units, rep homes above those
      map.createPane("atlasLines").style.zIndex = 450;
      map.getPane("atlasLines").style.pointerEvents = "none";
      map.createPane("atlasHomes").style.zIndex = 460;
      state.lineRenderer = L.canvas({padding: 0.3, pane: "atlasLines"});
      // rep homes as SVG: an SVG pane only catches the pointer on its markers, so the unit
      // canvas below still gets hover (tooltips) everywhere else
      state.homeRenderer = L.svg({padding: 0.3, pane: "atlasHomes"});
      state.geomUrl = null;
    }
    // every file this spec needs is asked for at once (the numbers need not wait for the
    // shapes to be fetched and built); fetchJSON keeps each promise, so the awaits below
    // take the same requests
    [spec.basemap, spec.geometry, spec.numbers].forEach(function (url) {
      if (url) { fetchJSON(url).catch(function () {}); }
    });
    if (spec.basemap && spec.basemap !== state.basemapUrl) {
      state.basemapUrl = spec.basemap;
      drawBasemap(map, await fetchJSON(spec.basemap));
    }
    var built = false;
    if (spec.geometry !== state.geomUrl) {
      var geom = await fetchJSON(spec.geometry);
      state.geom = geom;
      state.geomUrl = spec.geometry;
      build(map, geom);
      built = true;
    }
    if (spec.numbers && spec.numbers !== state.numbersUrl) {
      state.numbers = await fetchJSON(spec.numbers);
      state.numbersUrl = spec.numbers;
    }
    var own = activeLayer(spec).values;
    if (own && !state.layerValues[own]) {
      state.layerValues[own] = (await fetchJSON(own)).values;
    }
    state.spec = spec;
    var codesChanged = !state.codes || spec.codes !== state.codesText || !!state.stroke;
    state.codes = decodeCodes(spec.codes);
    state.codesText = spec.codes;
    state.units.codes = state.units.edges ? state.codes : null;
    keepPendingStroke(spec);
    if (state.brushing) {  // a spec arriving mid-drag keeps what the drag painted so far
      Object.keys(state.brushing.from).forEach(function (i) {
        state.codes[Number(i)] = state.brushing.target;
      });
    }
    var changed = restyle(spec);
    setDragging(map);
    if (codesChanged && built) {
      drawOutlinesSoon();  // a new map: the units first
    } else if (codesChanged) {
      drawOutlines();
    }
    strokeAnswered(spec);
    drawHomes(map, spec.homes);
    drawLegend(map, spec);
    drawPicker(map, spec);
    if (spec.fit && spec.fit.nonce !== state.fitNonce) {
      state.fitNonce = spec.fit.nonce;
      map.fitBounds(spec.fit.bounds, {padding: [20, 20], maxZoom: 9});
    }
    state.version = spec.version;
    var el = document.getElementById("atlas-status") || document.createElement("div");
    el.id = "atlas-status";
    el.style.display = "none";
    el.setAttribute("data-version", String(spec.version));
    el.setAttribute("data-layer", activeLabel(spec));
    el.setAttribute("data-restyled", String(changed));
    el.setAttribute("data-units", String(state.geom.ids.length));
    el.setAttribute("data-highlighted",
                    spec.dim ? String(spec.dim.split("1").length - 1) : "");
    if (!el.parentNode) { document.body.appendChild(el); }
    if (!el.hasAttribute("data-first-painted")) {
      // when the map first stood on screen (epoch ms, two frames after the first spec was
      // drawn): what `make bench-map` reports as the first usable map
      requestAnimationFrame(function () {
        requestAnimationFrame(function () {
          if (!el.hasAttribute("data-first-painted")) {
            el.setAttribute("data-first-painted", String(Date.now()));
          }
        });
      });
    }
  }

  async function drain() {
    if (state.busy) { return; }
    state.busy = true;
    try {
      while (state.pending) {
        var job = state.pending;
        state.pending = null;
        await apply(job.map, job.spec);
      }
    } catch (err) {
      console.error("atlas unit layer:", err);
    } finally {
      state.busy = false;
    }
  }

  function quietClicksWhileDrawing(map) {
    // leaflet.draw's vertex clicks are also map clicks, which streamlit-folium would send
    // as `last_clicked` (a paint stroke) while the shape is being drawn: take the map's
    // click listeners off from the start of a drawing until just after its end
    var saved = null;
    map.on("draw:drawstart", function () {
      if (saved === null && map._events && map._events.click) {
        saved = map._events.click.slice();
        saved.forEach(function (l) { map.off("click", l.fn, l.ctx); });
      }
    });
    map.on("draw:drawstop", function () {
      setTimeout(function () {  // the click that ends a rectangle comes after drawstop
        if (saved !== null) {
          saved.forEach(function (l) { map.on("click", l.fn, l.ctx); });
          saved = null;
        }
      }, 350);
    });
  }

  function clearDrawings(map) {
    // a drawn shape has been sent to the server: take it off the map once it is read
    map.on("draw:created", function (e) {
      setTimeout(function () {
        map.eachLayer(function (l) {
          if (l instanceof L.FeatureGroup && l.hasLayer(e.layer)) { l.removeLayer(e.layer); }
        });
        if (map.hasLayer(e.layer)) { map.removeLayer(e.layer); }
      }, 400);
    });
  }

  window.atlasUnits = {
    update: function (map, spec) {
      if (!map._atlasDrawHook) {
        map._atlasDrawHook = true;
        clearDrawings(map);
        quietClicksWhileDrawing(map);
        brushHooks(map);
        keyHooks();
      }
      state.pending = {map: map, spec: spec};
      drain();
    },
    state: state,
    activeLayer: function () { return activeLayer(state.spec); },
  };
})();
