// Meridian dashboard: renders the hub's snapshots from /api/events (SSE).
"use strict";
const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === undefined || n === null) ? "–" : Number(n).toLocaleString("en-US");
const time = (ms) => ms ? new Date(ms).toISOString().substring(11, 19) : "";

function text(cell, s) { const td = document.createElement("td"); td.textContent = s; cell.appendChild(td); return td; }

function rows(tableId, items, cols) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren();
  for (const it of items) {
    const tr = document.createElement("tr");
    for (const c of cols) { const td = text(tr, c.get(it)); if (c.cls) td.className = c.cls(it); }
    body.appendChild(tr);
  }
}

function spark(id, values, color) {
  const c = $(id); if (!c) return;
  const g = c.getContext("2d"), w = c.width, h = c.height;
  g.clearRect(0, 0, w, h);
  if (values.length < 2) return;
  const max = Math.max(1, ...values);
  g.strokeStyle = color; g.lineWidth = 1.5; g.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * (w - 2) + 1, y = h - 2 - (v / max) * (h - 4);
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
}

function render(s) {
  const p = s.pipeline || {}, q = s.cmdqueue || {};
  for (const k of ["frames_ingested", "frames_processed", "emergency_count", "duplicates_dropped", "invalid_dropped"]) $(k).textContent = fmt(p[k]);
  $("cmd_depth").textContent = fmt(q.depth);
  $("cmd_counts").textContent = fmt(q.commands_pushed) + " / " + fmt(q.commands_dispatched);
  $("store_counts").textContent = s.store ? fmt(s.store.objects) + " / " + fmt(s.store.commits) : "–";
  const series = s.series || [];
  spark("chart_ingested", series.map((x) => x.ingested_per_sec), "#4fb3ff");
  spark("chart_processed", series.map((x) => x.processed_per_sec), "#3ccf8e");
  spark("chart_emergency", series.map((x) => x.emergency), "#ff6b5b");
  spark("chart_duplicates", series.map((x) => x.duplicates), "#f0b43c");
  spark("chart_depth", series.map((x) => x.queue_depth), "#b48cff");
  // Stopped sessions leave the table: a station that drops disappears.
  rows("sessions", (s.sessions || []).filter((x) => x.state !== "stopped"), [
    { get: (x) => x.station_id },
    { get: (x) => x.state + (x.attempt ? " #" + x.attempt : ""), cls: (x) => "state-" + x.state },
    { get: (x) => time(x.since_ms || x.updated_at_ms) },
    { get: (x) => x.origin || "" },
  ]);
  rows("emergency", (s.emergency || []).slice().reverse(), [
    { get: (x) => time(x.at_ms) }, { get: (x) => x.station }, { get: (x) => x.satellite_id }, { get: (x) => x.sequence },
  ]);
  rows("dispatches", (s.dispatches || []).slice().reverse(), [
    { get: (x) => time(x.at_ms) }, { get: (x) => x.station }, { get: (x) => x.kind }, { get: (x) => x.priority }, { get: (x) => x.id },
  ]);
  $("updated").textContent = "updated " + time(s.at_ms) + " UTC";
  $("missed").textContent = s.missed ? "dashboard fell behind and skipped " + fmt(s.missed) + " updates" : "";
}

function connect() {
  const es = new EventSource("api/events");
  es.addEventListener("state", (e) => {
    $("conn").textContent = "live"; $("conn").className = "badge ok";
    render(JSON.parse(e.data));
  });
  es.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "badge bad"; };
}
connect();
