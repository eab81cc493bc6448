// The device terminal page: xterm.js wired to the page's WebSocket. Binary
// frames carry terminal bytes both ways; the size goes as a JSON text frame
// when the socket opens and whenever the terminal is resized.
(function () {
  "use strict";
  const el = document.getElementById("terminal");
  if (!el || !window.Terminal || !window.FitAddon) {
    return;
  }
  const term = new window.Terminal({ cursorBlink: true });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();

  const url = new URL(el.dataset.ws, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const encoder = new TextEncoder();
  const open = () => ws.readyState === WebSocket.OPEN;
  const sendSize = () => {
    if (open()) {
      ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
    }
  };
  ws.addEventListener("open", () => {
    sendSize();
    term.focus();
    el.dataset.state = "open";
  });
  ws.addEventListener("message", (e) => {
    if (e.data instanceof ArrayBuffer) {
      term.write(new Uint8Array(e.data));
    }
  });
  ws.addEventListener("close", () => {
    el.dataset.state = "closed";
    term.write("\r\n[disconnected]\r\n");
  });
  term.onData((data) => {
    if (open()) {
      ws.send(encoder.encode(data));
    }
  });
  term.onResize(sendSize);
  window.addEventListener("resize", () => fit.fit());
})();
