// The recording replay page: the asciicast v2 file of a terminal session,
// played into xterm.js at its own pace (pauses longer than IDLE_CAP_S are
// shortened), with pause, speed and skip to the end. Output events ("o") are
// drawn and size events ("r", "COLSxROWS") resize the terminal; input events
// ("i") are not drawn, the device echoed what was typed.
(function () {
  "use strict";
  const IDLE_CAP_S = 2;
  const el = document.getElementById("terminal");
  if (!el || !window.Terminal) {
    return;
  }
  const playButton = document.getElementById("replay-play");
  const endButton = document.getElementById("replay-end");
  const speedSelect = document.getElementById("replay-speed");
  const status = document.getElementById("replay-status");
  const setState = (state, text) => {
    el.dataset.state = state;
    status.textContent = text;
  };

  // [{at, code, data}] with the idle cap applied to `at`, and lines refused.
  function parse(text) {
    const lines = text.split("\n").filter((l) => l.trim() !== "");
    const header = JSON.parse(lines.shift() || "null");
    if (!header || header.version !== 2) {
      throw new Error("not an asciicast v2 recording");
    }
    const events = [];
    let refused = 0;
    let last = 0;
    let shift = 0;
    for (const line of lines) {
      let e;
      try {
        e = JSON.parse(line);
      } catch (_) {
        refused += 1;
        continue;
      }
      if (!Array.isArray(e) || typeof e[0] !== "number" || typeof e[1] !== "string" || typeof e[2] !== "string") {
        refused += 1;
        continue;
      }
      const gap = e[0] - last;
      if (gap > IDLE_CAP_S) {
        shift += gap - IDLE_CAP_S;
      }
      last = Math.max(last, e[0]);
      events.push({ at: Math.max(0, e[0] - shift), code: e[1], data: e[2] });
    }
    return { header, events, refused };
  }

  function apply(term, e) {
    if (e.code === "o") {
      term.write(e.data);
    } else if (e.code === "r") {
      const m = /^(\d+)x(\d+)$/.exec(e.data);
      if (m) {
        term.resize(Number(m[1]), Number(m[2]));
      }
    }
  }

  function play(header, events, refused) {
    const term = new window.Terminal({
      cols: Math.max(1, Math.min(500, header.width || 80)),
      rows: Math.max(1, Math.min(200, header.height || 24)),
      disableStdin: true,
      cursorBlink: false,
      scrollback: 10000,
    });
    term.open(el);
    const total = events.length ? events[events.length - 1].at : 0;
    const note = refused ? ` (${refused} damaged lines skipped)` : "";
    let next = 0; // index of the next event
    let clock = 0; // recording seconds already played
    let startedAt = 0; // performance.now() when `clock` was taken
    let timer = null;
    let speed = Number(speedSelect.value) || 1;

    const now = () => clock + ((performance.now() - startedAt) / 1000) * speed;
    const finish = () => {
      timer = null;
      playButton.disabled = true;
      endButton.disabled = true;
      setState("ended", `Ended: ${events.length} events, ${total.toFixed(1)} s${note}`);
    };
    const tick = () => {
      const t = now();
      while (next < events.length && events[next].at <= t) {
        apply(term, events[next]);
        next += 1;
      }
      if (next >= events.length) {
        finish();
        return;
      }
      timer = setTimeout(tick, Math.max(0, ((events[next].at - t) * 1000) / speed));
    };
    const resume = () => {
      startedAt = performance.now();
      playButton.textContent = "Pause";
      setState("playing", `Playing at ${speed}×${note}`);
      tick();
    };
    const pause = () => {
      clock = now();
      clearTimeout(timer);
      timer = null;
      playButton.textContent = "Play";
      setState("paused", `Paused at ${clock.toFixed(1)} s of ${total.toFixed(1)} s`);
    };
    playButton.addEventListener("click", () => (timer === null ? resume() : pause()));
    speedSelect.addEventListener("change", () => {
      const running = timer !== null;
      if (running) {
        pause();
      }
      speed = Number(speedSelect.value) || 1;
      if (running) {
        resume();
      }
    });
    endButton.addEventListener("click", () => {
      clearTimeout(timer);
      while (next < events.length) {
        apply(term, events[next]);
        next += 1;
      }
      finish();
    });
    playButton.disabled = false;
    endButton.disabled = false;
    resume();
  }

  fetch(el.dataset.cast, { credentials: "same-origin", cache: "no-store" })
    .then((res) => {
      if (!res.ok) {
        throw new Error(`the recording could not be read (HTTP ${res.status})`);
      }
      return res.text();
    })
    .then((text) => {
      const { header, events, refused } = parse(text);
      play(header, events, refused);
    })
    .catch((err) => setState("error", String(err.message || err)));
})();
