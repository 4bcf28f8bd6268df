// The live operations dashboard: one EventSource, a Leaflet map, an alert feed, uPlot charts
// and the pipeline-health table. The server pushes; this page never polls. `window.dashboard`
// exposes the live objects to tools and tests (tests/test_dashboard_browser.py).
"use strict";

(function () {
  const SPEED_COLOURS = [[30, "#d7263d"], [60, "#f46036"], [90, "#e2b714"], [113.5, "#2e9e5b"],
                         [Infinity, "#7b2cbf"]];
  const FLAG_STYLE = {
    incident: { color: "#dc2626", weight: 7 },
    fog: { color: "#94a3b8", weight: 7 },
    wet: { color: "#0ea5e9", weight: 6 },
    slow: { color: "#f97316", weight: 6 },
  };
  const BASE_STYLE = { color: "#4b5d70", weight: 4, opacity: 0.9 };
  const MAX_ALERTS = 200;
  const LATENCY_SAMPLES = 600;

  const $ = (id) => document.getElementById(id);
  const fmt = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 1 });
  const fmt0 = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 0 });

  const dash = {
    map: null, renderer: null, markers: new Map(), incidents: new Map(), sections: new Map(),
    alerts: [], conditions: new Map(), flags: {}, health: {}, basemap: null,
    alertShownAt: {}, // alert id -> when the feed first showed it (epoch ms)
    frames: 0, rowsApplied: 0, snapshots: 0,
    // Per positions frame: [event->receive median ms, event->painted median ms, apply ms, rows]
    latency: [],
    connected: false,
  };
  window.dashboard = dash;

  function speedColour(kmh) {
    for (const [limit, colour] of SPEED_COLOURS) if (kmh < limit) return colour;
    return SPEED_COLOURS[SPEED_COLOURS.length - 1][1];
  }

  function esc(text) {
    return String(text ?? "").replace(/[&<>"']/g, (c) => (
      { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function ago(seconds) {
    if (seconds == null || !isFinite(seconds)) return "–";
    const s = Math.max(0, seconds);
    if (s < 90) return fmt0.format(s) + " s";
    if (s < 5400) return fmt0.format(s / 60) + " min";
    if (s < 172800) return fmt.format(s / 3600) + " h";
    return fmt0.format(s / 86400) + " d";
  }

  function clock(ms) {
    return new Date(ms).toISOString().slice(11, 19);
  }

  // --- the map -------------------------------------------------------------------------------

  function buildMap(base) {
    dash.renderer = L.canvas({ padding: 0.2 });
    const map = L.map("map", { preferCanvas: true, zoomSnap: 0.25, attributionControl: false,
                               renderer: dash.renderer });
    dash.map = map;
    if (base.tileUrl) {
      L.tileLayer(base.tileUrl, { maxZoom: 18 }).addTo(map);
    }
    // The base layer is the project's own route data: sections, towns, cameras.
    for (const s of base.sections) {
      const line = L.polyline(s.path, Object.assign({}, BASE_STYLE))
        .bindTooltip(`${esc(s.name)}<br>${esc(s.road)} · limit ${fmt0.format(s.limitKmh)} km/h`,
                     { sticky: true })
        .on("click", () => selectSection(s.id))
        .addTo(map);
      dash.sections.set(s.id, { line, info: s });
    }
    for (const w of base.waypoints) {
      L.circleMarker([w.lat, w.lon], { radius: w.label ? 4 : 2, color: "#23313f",
        weight: 1, fillColor: "#fff", fillOpacity: 1, interactive: true })
        .bindTooltip(`${esc(w.name)} · km ${w.km}`, w.label
          ? { permanent: true, direction: "right", className: "waypoint-label", offset: [6, 0] }
          : {})
        .addTo(map);
    }
    for (const c of base.cameras) {
      L.circleMarker([c.lat, c.lon], { radius: 3, color: "#334155", weight: 1, fillColor: "#cbd5e1",
        fillOpacity: 1 }).bindTooltip(`camera ${esc(c.id)}`).addTo(map);
    }
    map.fitBounds(base.bounds, { padding: [20, 20] });
    L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);
    const views = L.control({ position: "topright" });
    views.onAdd = () => {
      const div = L.DomUtil.create("div", "leaflet-bar views");
      div.innerHTML = '<a href="#" data-view="route" title="the whole route">route</a>' +
        '<a href="#" data-view="fleet" title="every vehicle on the map">fleet</a>';
      L.DomEvent.disableClickPropagation(div);
      div.addEventListener("click", (e) => {
        const view = e.target.dataset.view;
        if (!view) return;
        e.preventDefault();
        if (view === "route") map.fitBounds(base.bounds, { padding: [20, 20] });
        else fitFleet();
      });
      return div;
    };
    views.addTo(map);
    const select = $("section-select");
    for (const s of base.sections) {
      const o = document.createElement("option");
      o.value = s.id; o.textContent = s.name;
      select.appendChild(o);
    }
    select.addEventListener("change", () => drawCharts());
  }

  function fitFleet() {
    const points = [...dash.markers.values()].map((m) => m.layer.getLatLng());
    if (points.length) dash.map.fitBounds(L.latLngBounds(points), { padding: [40, 40], maxZoom: 14 });
  }
  dash.fitFleet = fitFleet;

  function vehiclePopup(id) {
    const m = dash.markers.get(id);
    if (!m) return "";
    return `<b>${esc(id)}</b><br>${fmt.format(m.speed)} km/h · ${clock(m.eventMs)} UTC<br>` +
      `<a href="#" data-track="${esc(id)}">last hour from the lake</a>`;
  }

  function applyRows(t0, rows) {
    const map = dash.map;
    for (const [id, lat, lon, speed, age] of rows) {
      let m = dash.markers.get(id);
      const colour = speedColour(speed);
      if (m === undefined) {
        const layer = L.circleMarker([lat, lon], { radius: 4, weight: 1, color: "#111",
          fillColor: colour, fillOpacity: 0.95, renderer: dash.renderer });
        m = { layer, speed, colour, eventMs: t0 + age };
        layer.on("click", () => layer.bindPopup(vehiclePopup(id)).openPopup());
        layer.addTo(map);
        dash.markers.set(id, m);
      } else {
        m.layer.setLatLng([lat, lon]);
        if (colour !== m.colour) {
          m.layer.setStyle({ fillColor: colour });
          m.colour = colour;
        }
        m.speed = speed;
        m.eventMs = t0 + age;
      }
    }
  }

  function removeVehicles(ids) {
    for (const id of ids) {
      const m = dash.markers.get(id);
      if (m) { m.layer.remove(); dash.markers.delete(id); }
    }
  }

  function median(values) {
    if (!values.length) return null;
    const sorted = Float64Array.from(values).sort();
    return sorted[sorted.length >> 1];
  }

  function onPositions(msg, receivedAt) {
    const started = performance.now();
    applyRows(msg.t0, msg.v);
    removeVehicles(msg.gone || []);
    dash.frames += 1;
    dash.rowsApplied += msg.v.length;
    $("count-vehicles").textContent = fmt0.format(dash.markers.size);
    const applyMs = performance.now() - started;
    if (!msg.v.length) return;
    const events = msg.v.map((r) => msg.t0 + r[4]);
    const received = median(events.map((e) => receivedAt - e));
    // After the frame that draws the markers has been painted.
    requestAnimationFrame(() => setTimeout(() => {
      const painted = Date.now();
      dash.latency.push([received, median(events.map((e) => painted - e)), applyMs,
                         msg.v.length]);
      if (dash.latency.length > LATENCY_SAMPLES) dash.latency.shift();
    }, 0));
  }

  // --- incidents -----------------------------------------------------------------------------

  function onIncident(item) {
    const known = dash.incidents.get(item.incidentId);
    if (item.status === "Resolved") {
      if (known) { known.marker.remove(); dash.incidents.delete(item.incidentId); }
    } else if (!known) {
      const icon = L.divIcon({ className: "incident-icon", html: "!", iconSize: [20, 20] });
      const marker = L.marker([item.lat, item.lon], { icon, zIndexOffset: 1000,
        title: `${item.type}: ${item.description}` })
        .bindPopup(() => incidentPopup(item)).addTo(dash.map);
      marker.getElement()?.setAttribute("data-incident", item.incidentId);
      dash.incidents.set(item.incidentId, { marker, item });
    }
    $("count-incidents").textContent = dash.incidents.size;
  }

  function incidentPopup(item) {
    const div = document.createElement("div");
    div.innerHTML = `<b>${esc(item.type)}</b> · ${esc(item.status)}<br>${esc(item.description)}` +
      `<br>${esc(item.deviceId)} · ${esc(item.timestamp)}<br><i>timeline from the lake…</i>`;
    fetch(`/api/history/incident/${encodeURIComponent(item.incidentId)}`)
      .then((r) => r.ok ? r.json() : r.json().then((e) => Promise.reject(e.detail)))
      .then((doc) => {
        const rows = doc.timeline.map((t) => `<tr><td>${esc(t.timestamp.slice(11, 19))}</td>` +
          `<td>${esc(t.kind)}</td><td>${esc(t.status)}</td>` +
          `<td>${esc(t.message || t.description || "")}</td></tr>`).join("");
        div.querySelector("i").outerHTML = rows
          ? `<table>${rows}</table>` : "<i>not in the lake yet</i>";
      })
      .catch((err) => { div.querySelector("i").textContent = `lake: ${err}`; });
    return div;
  }

  // --- alerts --------------------------------------------------------------------------------

  function alertItem(a) {
    const li = document.createElement("li");
    li.className = `sev-${a.severity}`;
    li.dataset.alertId = a.id;
    li.dataset.severity = a.severity;
    li.dataset.rule = a.rule;
    if (a.incidentId) li.dataset.incidentId = a.incidentId;
    li.innerHTML = `<div class="meta"><span class="sev">${esc(a.severity)}</span>` +
      `<span>${esc(a.rule)}</span><span>${esc(a.status)}</span>` +
      `<span>${esc(a.timestamp.slice(11, 19))} UTC</span>` +
      `<span>${esc(a.section || "")}</span></div><div>${esc(a.message)}</div>`;
    li.addEventListener("click", () => focusAlert(a));
    return li;
  }

  function focusAlert(a) {
    const at = [a.location.latitude, a.location.longitude];
    dash.map.setView(at, Math.max(dash.map.getZoom(), 13));
    const ring = L.circleMarker(at, { radius: 18, color: "#ef4444", weight: 3, fill: false })
      .addTo(dash.map);
    setTimeout(() => ring.remove(), 3000);
    dash.focused = a.id;
  }

  function onAlert(a, fresh) {
    const list = $("alerts");
    const old = list.querySelector(`li[data-alert-id="${CSS.escape(a.id)}"]`);
    if (old) old.remove();
    dash.alerts = dash.alerts.filter((x) => x.id !== a.id);
    // Newest first: insert before the first alert older than this one.
    let index = dash.alerts.findIndex((x) => x.timestampMs < a.timestampMs);
    if (index < 0) index = dash.alerts.length;
    dash.alerts.splice(index, 0, a);
    const li = alertItem(a);
    if (fresh) li.classList.add("fresh");
    if (!(a.id in dash.alertShownAt)) dash.alertShownAt[a.id] = Date.now();
    list.insertBefore(li, list.children[index] || null);
    while (dash.alerts.length > MAX_ALERTS) {
      dash.alerts.pop();
      list.lastElementChild.remove();
    }
    $("alerts-empty").style.display = dash.alerts.length ? "none" : "";
    $("count-alerts").textContent = dash.alerts.length;
  }

  // --- road conditions, section flags, charts --------------------------------------------------

  function onFlags(flags) {
    dash.flags = flags;
    for (const [id, s] of dash.sections) {
      const f = flags[id] || [];
      const top = ["incident", "fog", "wet", "slow"].find((k) => f.includes(k));
      s.line.setStyle(top ? Object.assign({}, BASE_STYLE, FLAG_STYLE[top]) : BASE_STYLE);
      s.line.setTooltipContent(`${esc(s.info.name)}<br>${esc(s.info.road)} · limit ` +
        `${fmt0.format(s.info.limitKmh)} km/h${f.length ? "<br><b>" + f.join(", ") + "</b>" : ""}`);
    }
  }

  function onCondition(c) {
    let list = dash.conditions.get(c.section);
    if (!list) { list = []; dash.conditions.set(c.section, list); }
    const last = list[list.length - 1];
    if (last && last.timestampMs === c.timestampMs) list[list.length - 1] = c;
    else if (!last || last.timestampMs < c.timestampMs) list.push(c);
    const cutoff = c.timestampMs - (dash.basemap.historyMinutes * 60000);
    while (list.length && list[0].timestampMs < cutoff) list.shift();
    scheduleCharts();
  }

  let chartsPending = false;
  function scheduleCharts() {
    if (chartsPending) return;
    chartsPending = true;
    setTimeout(() => { chartsPending = false; drawCharts(); }, 1000);
  }

  function selectSection(id) {
    $("section-select").value = id;
    drawCharts();
  }

  function seriesFor(section) {
    // One point per window: the section's own, or (all sections) vehicle-weighted means.
    const byWindow = new Map();
    const sources = section ? [dash.conditions.get(section) || []] : [...dash.conditions.values()];
    for (const list of sources) {
      for (const c of list) {
        let w = byWindow.get(c.timestampMs);
        if (!w) {
          w = { n: 0, speed: 0, p95: 0, limit: 0, cnt: 0, temp: 0, rain: 0, wind: 0, wcnt: 0 };
          byWindow.set(c.timestampMs, w);
        }
        const n = c.vehicleCount || 0;
        if (c.avgSpeed != null && n) {
          w.n += n; w.speed += c.avgSpeed * n; w.p95 += (c.p95Speed ?? c.avgSpeed) * n;
        }
        w.limit += c.speedLimit; w.cnt += 1;
        if (c.temperature != null) {
          w.temp += c.temperature; w.rain += c.precipitation ?? 0; w.wind += c.windSpeed ?? 0;
          w.wcnt += 1;
        }
      }
    }
    const xs = [...byWindow.keys()].sort((a, b) => a - b);
    const pick = (f) => xs.map((x) => f(byWindow.get(x)));
    return {
      x: xs.map((x) => x / 1000),
      speed: pick((w) => (w.n ? w.speed / w.n : null)),
      p95: pick((w) => (w.n ? w.p95 / w.n : null)),
      limit: pick((w) => w.limit / w.cnt),
      temp: pick((w) => (w.wcnt ? w.temp / w.wcnt : null)),
      rain: pick((w) => (w.wcnt ? w.rain / w.wcnt : null)),
      wind: pick((w) => (w.wcnt ? w.wind / w.wcnt : null)),
    };
  }

  let speedChart = null;
  let weatherChart = null;
  function chartOpts(el, title, series, axes) {
    return {
      title, width: el.clientWidth || 400, height: 190,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), // as the feed: UTC
      scales: {
        // The last historyMinutes up to the newest window, however few points there are.
        x: {
          time: true,
          range: (u, min, max) => {
            const hi = max || Date.now() / 1000;
            return [hi - dash.basemap.historyMinutes * 60, hi + 30];
          },
        },
        y2: { auto: true },
      },
      axes: [{ stroke: "#8aa0b4", grid: { stroke: "#263646" } },
             { stroke: "#8aa0b4", grid: { stroke: "#263646" }, label: axes[0] },
             ...(axes[1] ? [{ side: 1, scale: "y2", stroke: "#8aa0b4", grid: { show: false },
                              label: axes[1] }] : [])],
      series: [{}, ...series],
      legend: { live: false },
    };
  }

  function drawCharts() {
    const s = seriesFor($("section-select").value);
    $("charts-empty").style.display = s.x.length ? "none" : "";
    const speedEl = $("chart-speed");
    const weatherEl = $("chart-weather");
    const speedData = [s.x, s.speed, s.p95, s.limit];
    const weatherData = [s.x, s.temp, s.rain, s.wind];
    if (!speedChart) {
      speedChart = new uPlot(chartOpts(speedEl, "Speed, km/h", [
        { label: "mean", stroke: "#38bdf8", width: 2, spanGaps: true, points: { show: true } },
        { label: "p95", stroke: "#a78bfa", width: 1, spanGaps: true },
        { label: "limit", stroke: "#ef4444", dash: [4, 4], width: 1 },
      ], ["km/h"]), speedData, speedEl);
      weatherChart = new uPlot(chartOpts(weatherEl, "Weather", [
        { label: "temperature °C", stroke: "#f59e0b", width: 2, spanGaps: true,
          points: { show: true } },
        { label: "rain mm/h", stroke: "#0ea5e9", width: 2, scale: "y2", spanGaps: true },
        { label: "wind km/h", stroke: "#94a3b8", width: 1, spanGaps: true },
      ], ["°C, km/h", "mm/h"]), weatherData, weatherEl);
    } else {
      speedChart.setData(speedData);
      weatherChart.setData(weatherData);
    }
  }

  // --- health ----------------------------------------------------------------------------------

  function cell(text, cls) {
    return `<td${cls ? ` class="${cls}"` : ""}>${text}</td>`;
  }

  function pct(v) {
    return v == null ? "–" : (v * 100 < 0.1 && v > 0 ? "<0.1" : fmt.format(v * 100)) + "%";
  }

  function onHealth(h) {
    dash.health = h;
    const rows = [];
    for (const [stream, s] of Object.entries(h.streams || {})) {
      const rate = s.eventsPerSecond;
      const lakeFresh = s.lakeFreshnessS;
      rows.push(`<tr data-stream="${esc(stream)}">` + cell(esc(stream)) +
        cell(rate == null ? "–" : fmt.format(rate)) +
        cell(s.behind == null ? "–" : fmt0.format(s.behind), s.behind > 10000 ? "warn" : "") +
        cell(ago(lakeFresh), lakeFresh > 120 ? "warn" : "") +
        cell(ago(s.liveFreshnessS)) +
        cell(`${pct(s.quarantineRate)} · ${pct(s.quarantineRateRecent)}`,
             s.quarantineRateRecent > 0.05 ? "bad" : "") + "</tr>");
    }
    document.querySelector("#health tbody").innerHTML = rows.join("");
    const job = h.job || {};
    const jobText = job.state === "ok"
      ? `batch <b>${job.batch}</b>, last commit <b>${ago(job.lastCommitS)}</b> ago, ` +
        `behind <b>${job.behind == null ? "–" : fmt0.format(job.behind)}</b>`
      : esc(job.state || "–");
    const others = Object.entries(job.queries || {}).filter(([name]) => name !== "job")
      .map(([name, q]) => `<span title="query ${esc(name)}: batch ${q.batch}">${esc(name)}: ` +
        `<b>${ago(q.lastCommitS)}</b> ago, behind <b>${q.behind == null ? "–" :
          fmt0.format(q.behind)}</b></span>`).join("");
    const lake = (h.lake || {}).state || "–";
    $("health-summary").innerHTML = `<span>broker: <b>${esc(h.broker || "–")}</b></span>` +
      `<span>lake writer: ${jobText}</span>` + others +
      `<span title="${esc(lake)}">lake: <b>${esc(lake.split(":")[0])}</b></span>`;
  }

  // --- the stream ------------------------------------------------------------------------------

  function onSnapshot(snap) {
    dash.snapshots += 1;
    removeVehicles([...dash.markers.keys()]);
    onPositions(snap.positions, Date.now());
    for (const { marker } of dash.incidents.values()) marker.remove();
    dash.incidents.clear();
    for (const item of snap.incidents) onIncident(item);
    $("alerts").innerHTML = "";
    dash.alerts = [];
    for (const a of snap.alerts.slice().reverse()) onAlert(a, false);
    $("alerts-empty").style.display = dash.alerts.length ? "none" : "";
    dash.conditions.clear();
    for (const [section, list] of Object.entries(snap.conditions)) {
      dash.conditions.set(section, list.slice());
    }
    drawCharts();
    onFlags(snap.flags);
    if (snap.health && snap.health.streams) onHealth(snap.health);
  }

  function connect() {
    const source = new EventSource("/api/stream");
    const conn = $("connection");
    const on = (name, fn) => source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
    source.onopen = () => {
      dash.connected = true; conn.textContent = "live"; conn.className = "conn conn-ok";
    };
    source.onerror = () => {
      dash.connected = false; conn.textContent = "reconnecting"; conn.className = "conn conn-wait";
    };
    source.addEventListener("positions", (e) => {
      const receivedAt = Date.now();
      onPositions(JSON.parse(e.data), receivedAt);
    });
    on("snapshot", onSnapshot);
    on("alert", (a) => onAlert(a, true));
    on("incident", onIncident);
    on("condition", onCondition);
    on("flags", onFlags);
    on("health", onHealth);
    dash.source = source;
  }

  document.addEventListener("click", (e) => {
    const link = e.target.closest("a[data-track]");
    if (!link) return;
    e.preventDefault();
    const id = link.dataset.track;
    fetch(`/api/history/vehicle/${encodeURIComponent(id)}?minutes=60`)
      .then((r) => r.ok ? r.json() : r.json().then((e) => Promise.reject(e.detail)))
      .then((doc) => {
        if (dash.track) dash.track.remove();
        const path = doc.readings.map((r) => [r.location.latitude, r.location.longitude]);
        dash.track = L.polyline(path, { color: "#0ea5e9", weight: 3, dashArray: "4 4" })
          .addTo(dash.map);
        link.textContent = `${doc.readings.length} readings from the lake`;
      })
      .catch((err) => { link.textContent = `lake: ${err}`; });
  });

  fetch("/api/basemap").then((r) => r.json()).then((base) => {
    dash.basemap = base;
    $("route-name").textContent = base.name;
    $("charts-window").textContent = `last ${base.historyMinutes} min`;
    buildMap(base);
    drawCharts();
    connect();
  });
})();
