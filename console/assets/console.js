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
