// Live updates for the "Sites & agents" page: subscribes to /events and
// re-renders the overview in place. The page is complete without this script;
// it only keeps it current.
//
// Content is inserted with textContent and setAttribute, never innerHTML, so
// names from the database cannot become markup.
(function () {
  "use strict";

  const root = document.getElementById("overview");
  if (!root) {
    return;
  }
  const statusLine = document.getElementById("live-status");
  const RECONNECT_MS = 5000;

  // Ages are measured against the server's clock, which the browser's may not match.
  let serverOffset = Number(root.dataset.generatedMs) - Date.now();
  let lastRendered = null;
  let source = null;
  let retryTimer = null;

  function setStatus(state, text) {
    if (statusLine) {
      statusLine.dataset.state = state;
      statusLine.textContent = text;
    }
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      node.setAttribute(name, String(value));
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function ago(ms) {
    const secs = Math.max(0, Math.round((Date.now() + serverOffset - ms) / 1000));
    if (secs < 60) {
      return secs + " s ago";
    }
    const mins = Math.floor(secs / 60);
    if (mins < 60) {
      return mins + " min ago";
    }
    const hours = Math.floor(mins / 60);
    if (hours < 48) {
      return hours + " h ago";
    }
    return Math.floor(hours / 24) + " d ago";
  }

  function refreshAges() {
    for (const t of root.querySelectorAll("time[data-ms]")) {
      t.textContent = ago(Number(t.dataset.ms));
    }
  }

  function orDash(text) {
    return text ? text : "\u2014";
  }

  function agentRow(a) {
    const state = a.online ? "online" : "offline";
    const seen = el("td", { class: "seen" });
    if (a.last_seen_ms !== null && a.last_seen_ms !== undefined) {
      const utc = a.last_seen_utc || "";
      seen.append(el("time", { datetime: a.last_seen_iso || "", "data-ms": a.last_seen_ms, title: utc }, utc));
    } else {
      seen.append("never");
    }
    return el(
      "tr",
      { "data-agent-id": a.id },
      el("td", { class: "host" }, a.hostname, a.warning ? el("div", { class: "warning" }, a.warning) : ""),
      el("td", { class: "agent-id" }, el("code", { title: a.id }, a.short_id)),
      el("td", {}, orDash(a.version)),
      el("td", {}, orDash(a.os)),
      el("td", { class: "status " + state }, el("span", { class: "badge" }, state)),
      seen,
      el("td", { class: "num" }, a.outbox_depth),
      el("td", { class: "revoked" }, a.revoked ? el("span", { class: "badge revoked" }, "revoked") : "no"),
    );
  }

  function siteBlock(site) {
    const heading = el("h3", {}, site.name);
    if (site.deleted) {
      heading.append(" ", el("span", { class: "badge muted" }, "deleted"));
    }
    const block = el("div", { class: "site", "data-site-id": site.id }, heading);
    if (site.agents.length === 0) {
      block.append(el("p", { class: "empty" }, "No agents enrolled."));
      return block;
    }
    const head = el(
      "tr",
      {},
      ...["Host", "Agent", "Version", "OS", "Status", "Last seen"].map((h) => el("th", {}, h)),
      el("th", { class: "num" }, "Outbox"),
      el("th", {}, "Revoked"),
    );
    block.append(
      el("table", { class: "agents" }, el("thead", {}, head), el("tbody", {}, ...site.agents.map(agentRow))),
    );
    return block;
  }

  function render(data) {
    const sections = data.tenants.map((t) =>
      el("section", { class: "tenant", "data-tenant-id": t.id }, el("h2", {}, t.name), ...t.sites.map(siteBlock)),
    );
    if (sections.length === 0) {
      sections.push(
        el(
          "p",
          { class: "empty" },
          "No sites yet. Create one, with an enrollment token for its first agent, using ",
          el("code", {}, "outpost-collector token create --tenant NAME --site NAME"),
          ".",
        ),
      );
    }
    root.replaceChildren(...sections);
    for (const node of document.querySelectorAll("[data-total]")) {
      const value = data.totals[node.dataset.total];
      if (value !== undefined) {
        node.textContent = String(value);
      }
    }
  }

  function onOverview(event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (_) {
      return;
    }
    serverOffset = data.generated_at_ms - Date.now();
    // Rebuilding only on change keeps text selections and focus intact.
    const key = JSON.stringify([data.tenants, data.totals]);
    if (key !== lastRendered) {
      lastRendered = key;
      render(data);
    }
    refreshAges();
    setStatus("live", "Live");
  }

  function connect() {
    source = new EventSource("/events");
    source.addEventListener("overview", onOverview);
    source.addEventListener("problem", () => {
      setStatus("stale", "Updates paused: the server could not read its database.");
    });
    source.addEventListener("signed-out", () => {
      source.close();
      window.location.assign("/login");
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        setStatus("stale", "Disconnected; retrying\u2026");
        scheduleReconnect();
      } else {
        setStatus("stale", "Reconnecting\u2026");
      }
    });
  }

  // EventSource stops retrying after an HTTP error; a 401 means the session
  // ended, anything else is worth another try.
  function scheduleReconnect() {
    if (retryTimer !== null) {
      return;
    }
    retryTimer = window.setTimeout(async () => {
      retryTimer = null;
      try {
        const res = await fetch("/api/overview", { headers: { Accept: "application/json" } });
        if (res.status === 401) {
          window.location.assign("/login");
          return;
        }
      } catch (_) {
        // Offline: fall through and let EventSource try again.
      }
      connect();
    }, RECONNECT_MS);
  }

  refreshAges();
  window.setInterval(refreshAges, 1000);
  setStatus("connecting", "Connecting\u2026");
  connect();
})();

// The device list: re-reads /api/devices every 15 s and updates the cells in
// place; a device added or removed (or a new update badge) reloads the page.
(function () {
  "use strict";

  const root = document.getElementById("device-list");
  if (!root) {
    return;
  }
  const statusLine = document.getElementById("devices-status");
  const EVERY_MS = 15000;

  function shape(devices) {
    return devices.map((d) => d.id + (d.update_available ? "+" : "")).join(",");
  }

  function pageShape() {
    const rows = root.querySelectorAll("tr[data-device-id]");
    return Array.from(rows, (r) => r.dataset.deviceId + (r.querySelector(".badge.warn") ? "+" : "")).join(",");
  }

  function update(data) {
    const devices = data.groups.flatMap((g) => g.devices);
    if (shape(devices) !== pageShape()) {
      window.location.reload();
      return;
    }
    for (const d of devices) {
      const row = root.querySelector('tr[data-device-id="' + CSS.escape(d.id) + '"]');
      for (const cell of row.querySelectorAll("[data-field]")) {
        const field = cell.dataset.field;
        if (field === "state") {
          cell.textContent = d.state_words;
          cell.className = "badge " + d.state_class;
          cell.setAttribute("title", d.state_reason);
        } else if (field in d) {
          cell.textContent = d[field];
        }
      }
    }
  }

  async function refresh() {
    try {
      const res = await fetch("/api/devices", { headers: { Accept: "application/json" } });
      if (res.status === 401) {
        window.location.assign("/login");
        return;
      }
      if (!res.ok) {
        throw new Error(res.status);
      }
      update(await res.json());
      statusLine.dataset.state = "live";
      statusLine.textContent = "Live: refreshed " + new Date().toLocaleTimeString();
    } catch (e) {
      statusLine.dataset.state = "stale";
      statusLine.textContent = "Could not refresh; showing older data.";
    }
  }

  window.setInterval(refresh, EVERY_MS);
})();

// The device page's charts (uPlot): stored series for 1 h / 24 h / 30 d from
// /api/devices/{id}/metrics, and the live view, which streams
// /devices/{id}/live and keeps the last two minutes of one-second samples.
(function () {
  "use strict";

  const charts = document.getElementById("charts");
  if (!charts || typeof uPlot === "undefined") {
    return;
  }
  const id = charts.dataset.deviceId;
  const area = document.getElementById("chart-area");
  const status = document.getElementById("chart-status");
  const LIVE_POINTS = 120;
  let plots = [];

  function width(el) {
    return Math.max(320, Math.min(el.clientWidth || 800, 1100));
  }

  function bits(v) {
    if (v == null) {
      return "—";
    }
    const units = ["bps", "kbps", "Mbps", "Gbps", "Tbps"];
    let i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
  }

  function bytes(v) {
    if (v == null) {
      return "—";
    }
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return v.toFixed(i === 0 ? 0 : 1) + " " + units[i];
  }

  const COLOURS = ["#2457c5", "#d9480f", "#2b8a3e", "#9c36b5", "#e67700", "#0b7285"];

  function chart(parent, title, names, data, format) {
    const box = document.createElement("div");
    box.className = "chart";
    parent.appendChild(box);
    const series = [{}].concat(
      names.map((name, i) => ({
        label: name,
        stroke: COLOURS[i % COLOURS.length],
        width: 1.5,
        value: (u, v) => format(v),
      }))
    );
    return new uPlot(
      {
        title: title,
        width: width(parent),
        height: 220,
        series: series,
        axes: [{}, { values: (u, vals) => vals.map(format), size: 80 }],
      },
      data,
      box
    );
  }

  async function metric(name, range) {
    const url = "/api/devices/" + encodeURIComponent(id) + "/metrics?metric=" + name + "&range=" + range;
    const res = await fetch(url, { headers: { Accept: "application/json" } });
    if (!res.ok) {
      throw new Error(name + ": " + res.status);
    }
    return res.json();
  }

  // Series with their own timestamps, aligned on the union of those times.
  function align(seriesList) {
    const times = new Set();
    for (const s of seriesList) {
      for (const p of s) {
        times.add(p[0]);
      }
    }
    const xs = Array.from(times).sort((a, b) => a - b);
    const index = new Map(xs.map((t, i) => [t, i]));
    const columns = seriesList.map((s) => {
      const col = new Array(xs.length).fill(null);
      for (const p of s) {
        col[index.get(p[0])] = p[1];
      }
      return col;
    });
    return [xs.map((t) => t / 1000)].concat(columns);
  }

  async function draw(range) {
    for (const p of plots) {
      p.destroy();
    }
    plots = [];
    area.textContent = "";
    status.textContent = "Loading…";
    try {
      const [cpu, mem, rx, tx] = await Promise.all(
        ["cpu_load", "memory_used_bytes", "if_rx_bps", "if_tx_bps"].map((m) => metric(m, range))
      );
      const points = (answer) => (answer.series[0] ? answer.series[0].points : []);
      plots.push(chart(area, "CPU", ["CPU %"], align([points(cpu)]), (v) => (v == null ? "—" : v.toFixed(0) + "%")));
      plots.push(chart(area, "Memory used", ["used"], align([points(mem)]), bytes));
      const txBySubject = new Map(tx.series.map((s) => [s.subject, s.points]));
      for (const s of rx.series) {
        const out = txBySubject.get(s.subject) || [];
        plots.push(chart(area, s.subject, ["rx", "tx"], align([s.points, out]), bits));
      }
      status.textContent = rx.series.length === 0 && points(cpu).length === 0 ? "No data stored for this range yet." : "";
    } catch (e) {
      status.textContent = "Could not load the charts (" + e.message + ").";
    }
  }

  for (const button of charts.querySelectorAll("button[data-range]")) {
    button.addEventListener("click", () => {
      for (const b of charts.querySelectorAll("button[data-range]")) {
        b.setAttribute("aria-pressed", String(b === button));
      }
      draw(button.dataset.range);
    });
  }
  draw("1h");

  // Live view.
  const toggle = document.getElementById("live-toggle");
  const liveArea = document.getElementById("live-chart");
  const liveStatus = document.getElementById("live-traffic-status");
  let source = null;
  let livePlot = null;
  let names = [];
  let rows = [];
  let received = 0;

  function stopLive(text) {
    if (source) {
      source.close();
      source = null;
    }
    toggle.setAttribute("aria-pressed", "false");
    toggle.textContent = "Start live view";
    liveStatus.textContent = text || "";
  }

  function onSample(event) {
    const sample = JSON.parse(event.data);
    const seen = sample.interfaces.map((i) => i.name).join(",");
    if (seen !== names.join(",")) {
      names = sample.interfaces.map((i) => i.name);
      rows = [];
      if (livePlot) {
        livePlot.destroy();
      }
      liveArea.textContent = "";
      const labels = names.flatMap((n) => [n + " rx", n + " tx"]);
      livePlot = chart(liveArea, "Live traffic", labels, [[]].concat(labels.map(() => [])), bits);
    }
    rows.push([sample.at_ms / 1000].concat(sample.interfaces.flatMap((i) => [i.rx_bps, i.tx_bps])));
    if (rows.length > LIVE_POINTS) {
      rows.shift();
    }
    const columns = rows[0].map((_, c) => rows.map((r) => r[c]));
    livePlot.setData(columns);
    received++;
    liveArea.dataset.liveSamples = String(received);
    liveStatus.textContent = "Live: one sample a second.";
  }

  function startLive() {
    toggle.setAttribute("aria-pressed", "true");
    toggle.textContent = "Stop live view";
    liveStatus.textContent = "Starting…";
    source = new EventSource("/devices/" + encodeURIComponent(id) + "/live");
    source.addEventListener("sample", onSample);
    source.addEventListener("unavailable", (event) => {
      stopLive("Live traffic is unavailable: " + JSON.parse(event.data).error);
    });
    source.addEventListener("error", () => {
      stopLive("The live stream ended.");
    });
  }

  toggle.addEventListener("click", () => {
    if (source) {
      stopLive("");
    } else {
      startLive();
    }
  });
})();

// A scan's page: while the scan runs, re-reads /api/scans/{id} every second
// and updates the progress in place; once it has finished, reloads the page,
// which then shows the summary the scans table keeps.
(function () {
  "use strict";

  const root = document.getElementById("scan");
  if (!root || root.dataset.running !== "true") {
    return;
  }
  const id = root.dataset.scanId;
  const bar = document.getElementById("scan-bar");
  const badge = document.getElementById("scan-state");
  const statusLine = document.getElementById("scan-status");
  const EVERY_MS = 1000;
  let timer = null;

  function setStatus(state, text) {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
  }

  function field(name, value) {
    const node = root.querySelector('[data-field="' + name + '"]');
    if (node) {
      node.textContent = String(value);
    }
  }

  function update(data) {
    badge.textContent = data.state;
    const p = data.progress;
    if (p) {
      field("phase", p.phase);
      field("done", p.done);
      field("total", p.total);
      field("hosts_found", p.hosts_found);
      if (p.total > 0) {
        bar.max = p.total;
        bar.value = Math.min(p.done, p.total);
      } else {
        bar.removeAttribute("value");
      }
      root.dataset.progressDone = String(p.done);
    }
  }

  async function refresh() {
    try {
      const res = await fetch("/api/scans/" + encodeURIComponent(id), { headers: { Accept: "application/json" } });
      if (res.status === 401) {
        window.location.assign("/login");
        return;
      }
      if (res.status === 404) {
        window.clearInterval(timer);
        setStatus("stale", "This scan is no longer known.");
        return;
      }
      if (!res.ok) {
        throw new Error(res.status);
      }
      const data = await res.json();
      if (!data.running) {
        window.clearInterval(timer);
        window.location.reload();
        return;
      }
      update(data);
      setStatus("live", "Live: refreshed " + new Date().toLocaleTimeString());
    } catch (e) {
      setStatus("stale", "Could not refresh; showing older progress.");
    }
  }

  timer = window.setInterval(refresh, EVERY_MS);
  refresh();
})();
