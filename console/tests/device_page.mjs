// Browser test of the device pages: a headless Chromium signs in through the
// login form, finds the polled devices on /devices, opens one device page
// (facts, interfaces, stored charts), turns the live traffic view on and sees
// samples arrive, turns it off, turns it on again and leaves the page, and
// finds the devices on /topology.
//
// Driven by tests/tests/console_devices_browser.rs, which starts the
// simulator, the collector and the agent. Protocol, one stdout line each:
//   "LISTED"         /devices shows every device of DEVICES, up
//   "PAGE"           the device page of LIVE_DEVICE shows its facts; then the
//                    script waits for "GO" on stdin, so the driver can check
//                    that nothing streams before the live view is switched on
//   "LIVE <n>"       the live view drew n >= MIN_SAMPLES samples
//   "LIVE-OFF"       the live view was switched off and stopped drawing
//   "LIVE-AGAIN <n>" switched on again, n new samples drawn; the page is left next
//   "DONE"           /topology shows every device
// Diagnostics go to stderr. Exit status 0 on success, 1 on any failure.
//
// Environment:
//   CONSOLE_URL       e.g. https://127.0.0.1:8443 (loopback only)
//   CONSOLE_SPKI      for https: base64 SHA-256 of the console certificate's key (SPKI)
//   CONSOLE_USER      console user name
//   CONSOLE_PASSWORD  its password
//   DEVICES           JSON: [{"id": ..., "identity": ..., "version": ...}]
//   LIVE_DEVICE       id of the device whose page and live view are checked
//   SCREENSHOT        optional: where to save a PNG of the page on failure
//   CHROMIUM          optional: browser executable (default /usr/bin/chromium)
import { checkErrors, env, fail, inlineCode, isLoopback, launchContext, log, named, readLine, runMain, say, sleep } from "./harness.mjs";

const STEP_MS = 30_000; // any single wait in the page
const LIVE_MS = 15_000; // for the first live samples
const MIN_SAMPLES = 3;
const TOTAL_MS = 120_000; // the whole run

named("device_page");

// Opens `path`, expecting a 200 served with a policy that forbids inline script.
async function open(page, base, path) {
  const res = await page.goto(`${base}${path}`);
  if (!res || res.status() !== 200) {
    fail(`GET ${path} answered ${res ? res.status() : "nothing"}`);
  }
  if (new URL(page.url()).pathname !== path) {
    fail(`GET ${path} ended at ${page.url()}`);
  }
  const csp = (await res.allHeaders())["content-security-policy"] || "";
  if (!/(^|;)\s*(default-src|script-src)\s/.test(csp) || /unsafe-inline|unsafe-eval/.test(csp)) {
    fail(`${path}: the Content-Security-Policy does not forbid inline script: ${JSON.stringify(csp)}`);
  }
  const inline = await inlineCode(page);
  if (inline.length > 0) {
    fail(`${path} has inline code the policy would block:\n  ${inline.join("\n  ")}`);
  }
  return res;
}

async function text(page, selector) {
  return page.$eval(selector, (el) => el.textContent.trim()).catch(() => null);
}

// The <dd> after the <dt> named `term` in the facts list.
async function fact(page, term) {
  return page.evaluate((t) => {
    for (const dt of document.querySelectorAll("dl.facts dt")) {
      if (dt.textContent.trim() === t) {
        const dd = dt.nextElementSibling;
        return dd ? dd.textContent.trim() : null;
      }
    }
    return null;
  }, term);
}

async function liveSamples(page) {
  return page.$eval("#live-chart", (el) => Number(el.dataset.liveSamples || 0));
}

async function waitSamples(page, atLeast, ms, what) {
  try {
    await page.waitForFunction(
      (n) => Number(document.getElementById("live-chart").dataset.liveSamples || 0) >= n,
      atLeast,
      { timeout: ms, polling: 100 },
    );
  } catch (_) {
    const seen = await liveSamples(page).catch(() => "?");
    const status = await text(page, "#live-traffic-status");
    fail(`${what}: ${seen} live samples drawn within ${ms / 1000} s, expected ${atLeast} (status: ${JSON.stringify(status)})`);
  }
  return liveSamples(page);
}

async function run(state) {
  const base = env("CONSOLE_URL").replace(/\/+$/, "");
  const user = env("CONSOLE_USER");
  const password = env("CONSOLE_PASSWORD");
  const devices = JSON.parse(env("DEVICES"));
  const liveId = env("LIVE_DEVICE");
  const live = devices.find((d) => d.id === liveId) || fail(`LIVE_DEVICE ${liveId} is not in DEVICES`);
  if (!isLoopback(base)) {
    fail(`CONSOLE_URL must be a loopback address, got ${base}`);
  }

  const context = await launchContext(state, base, STEP_MS);
  const page = await context.newPage();
  state.page = page;

  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") {
      const where = msg.location().url;
      state.errors.push(`console ${msg.type()}: ${msg.text()}${where ? ` (${where})` : ""}`);
    }
  });
  page.on("pageerror", (err) => state.errors.push(`uncaught exception: ${err.message}`));
  page.on("request", (req) => {
    if (!isLoopback(req.url()) && !req.url().startsWith("data:")) {
      state.errors.push(`request to a non-loopback address: ${req.url()}`);
    }
  });

  // Sign in through the form.
  await open(page, base, "/login");
  await page.fill("form.login #username", user);
  await page.fill("form.login #password", password);
  await Promise.all([page.waitForURL((u) => u.pathname !== "/login"), page.click('form.login button[type="submit"]')]);
  await page.waitForLoadState("load");
  if (new URL(page.url()).pathname !== "/") {
    const alert = await text(page, '[role="alert"]');
    fail(`signing in did not lead to the overview: at ${page.url()} (${alert || "no error shown"})`);
  }

  // The list: every device, by identity, up.
  await open(page, base, "/devices");
  for (const d of devices) {
    const row = `tr[data-device-id="${d.id}"]`;
    const name = await text(page, `${row} a[data-field="name"]`);
    if (name !== d.identity) {
      const rows = await page.$$eval("tr[data-device-id]", (trs) => trs.map((tr) => tr.dataset.deviceId).join(", "));
      fail(`/devices: device ${d.id} is named ${JSON.stringify(name)}, expected ${d.identity} (rows: [${rows}])`);
    }
    const href = await page.$eval(`${row} a[data-field="name"]`, (a) => a.getAttribute("href"));
    if (href !== `/devices/${d.id}`) {
      fail(`/devices: ${d.identity} links to ${href}`);
    }
    const badge = await page.$eval(`${row} [data-field="state"]`, (el) => `${el.className}|${el.textContent.trim()}`);
    if (badge !== "badge ok|up") {
      fail(`/devices: ${d.identity} is shown as ${JSON.stringify(badge)}, expected up`);
    }
    const version = await text(page, `${row} [data-field="version"]`);
    if (!version || !version.startsWith(d.version)) {
      fail(`/devices: ${d.identity} shows version ${JSON.stringify(version)}, expected ${d.version}`);
    }
  }
  checkErrors(state, "on /devices");
  say("LISTED");

  // The device page, reached from the list.
  await Promise.all([
    page.waitForURL((u) => u.pathname === `/devices/${live.id}`),
    page.click(`tr[data-device-id="${live.id}"] a[data-field="name"]`),
  ]);
  await page.waitForLoadState("load");
  const path = `/devices/${live.id}`;
  const heading = await text(page, "h1");
  if (heading !== live.identity) {
    fail(`${path}: the heading is ${JSON.stringify(heading)}, expected ${live.identity}`);
  }
  const identity = await fact(page, "Identity");
  if (identity !== live.identity) {
    fail(`${path}: Identity is ${JSON.stringify(identity)}, expected ${live.identity}`);
  }
  const ros = await fact(page, "RouterOS");
  if (!ros || !ros.startsWith(live.version)) {
    fail(`${path}: RouterOS is ${JSON.stringify(ros)}, expected ${live.version}`);
  }
  const interfaces = await page.evaluate(() => {
    for (const h of document.querySelectorAll("section > h2")) {
      if (h.textContent.trim() === "Interfaces") {
        return Array.from(h.parentElement.querySelectorAll("table tbody tr td:first-child"), (td) => td.textContent.trim());
      }
    }
    return null;
  });
  if (!interfaces || !interfaces.includes("ether1")) {
    fail(`${path}: the interfaces table lists ${JSON.stringify(interfaces)}, expected ether1 among them`);
  }
  // The stored charts (CPU, memory, then one per interface) are drawn.
  try {
    await page.waitForFunction(() => document.querySelectorAll("#chart-area .uplot canvas").length >= 2, null, {
      timeout: STEP_MS,
      polling: 100,
    });
  } catch (_) {
    fail(`${path}: no charts drawn (status: ${JSON.stringify(await text(page, "#chart-status"))})`);
  }
  const chartStatus = await text(page, "#chart-status");
  if (chartStatus && chartStatus.startsWith("Could not")) {
    fail(`${path}: ${chartStatus}`);
  }
  const toggle = "#live-toggle";
  if ((await page.$eval(toggle, (b) => b.getAttribute("aria-pressed"))) !== "false") {
    fail(`${path}: the live view is on before it was switched on`);
  }
  checkErrors(state, `on ${path}`);
  say("PAGE");
  const go = await readLine(STEP_MS, '"GO"');
  if (go !== "GO") {
    fail(`expected "GO" on stdin, got ${JSON.stringify(go)}`);
  }

  // Live view on: samples arrive, one a second.
  const started = Date.now();
  await page.click(toggle);
  const first = await waitSamples(page, MIN_SAMPLES, LIVE_MS, "live view");
  log(`${first} live samples in ${Date.now() - started} ms`);
  const labels = await page.$$eval("#live-chart .u-legend .u-series .u-label", (els) => els.map((e) => e.textContent.trim()));
  if (!labels.includes("ether1 rx") || !labels.includes("ether1 tx")) {
    fail(`the live chart's series are ${JSON.stringify(labels)}, expected ether1 rx and tx among them`);
  }
  const liveStatus = await text(page, "#live-traffic-status");
  if (liveStatus !== "Live: one sample a second.") {
    fail(`the live status says ${JSON.stringify(liveStatus)}`);
  }
  checkErrors(state, "with the live view on");
  say(`LIVE ${first}`);

  // Off: nothing more is drawn.
  await page.click(toggle);
  if ((await page.$eval(toggle, (b) => b.getAttribute("aria-pressed"))) !== "false") {
    fail("the live toggle is still pressed after switching it off");
  }
  const atStop = await liveSamples(page);
  await sleep(2_500);
  const afterStop = await liveSamples(page);
  if (afterStop !== atStop) {
    fail(`live samples kept arriving after the view was switched off (${atStop} -> ${afterStop})`);
  }
  const offStatus = await text(page, "#live-traffic-status");
  if (offStatus !== "") {
    fail(`after switching the live view off the status says ${JSON.stringify(offStatus)}`);
  }
  say("LIVE-OFF");

  // On again, then leave the page with the view on.
  await page.click(toggle);
  const again = await waitSamples(page, afterStop + 2, LIVE_MS, "live view switched on again");
  checkErrors(state, "with the live view on again");
  say(`LIVE-AGAIN ${again - afterStop}`);

  // The topology: a node per device, linked to its page.
  await open(page, base, "/topology");
  const svg = await page.$("svg.topology");
  if (!svg) {
    fail("/topology has no svg.topology");
  }
  for (const d of devices) {
    const node = `svg.topology a.node-link[href="/devices/${d.id}"]`;
    const circles = await page.$$(`${node} circle.node`);
    const label = await text(page, `${node} text`);
    if (circles.length !== 1 || label !== d.identity) {
      fail(`/topology: device ${d.id} has ${circles.length} nodes labelled ${JSON.stringify(label)}, expected one labelled ${d.identity}`);
    }
  }
  checkErrors(state, "on /topology");
  say("DONE");
}

runMain(run, TOTAL_MS);
