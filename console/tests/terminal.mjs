// Browser test of the device terminal: a headless Chromium signs in, opens
// /devices/DEVICE/terminal, waits for the device's prompt in xterm.js, types
// `/system identity print` and sees the identity; then leaves the terminal,
// finds the session among the device's recordings and replays it.
//
// Driven by tests/tests/terminal.rs. Protocol, one stdout line each:
//   "PROMPT"   the terminal shows the device's prompt
//   "IDENTITY" the typed command answered `name: IDENTITY`
//   "REPLAYED" the session's recording played to its end and showed both
// Diagnostics go to stderr. Exit status 0 on success, 1 on any failure.
//
// Environment:
//   CONSOLE_URL, CONSOLE_SPKI, CONSOLE_USER, CONSOLE_PASSWORD (see device_page.mjs)
//   DEVICE      id of the device
//   IDENTITY    its identity
//   SCREENSHOT, CHROMIUM optional
import { checkErrors, env, fail, isLoopback, launchContext, log, named, runMain, say } from "./harness.mjs";

const STEP_MS = 30_000;
const TOTAL_MS = 120_000;

named("terminal");

// What xterm.js shows, row by row.
async function screen(page) {
  return page.$eval("#terminal .xterm-rows", (el) => Array.from(el.children, (r) => r.textContent).join("\n")).catch(() => "");
}

async function waitFor(page, needle) {
  const until = Date.now() + STEP_MS;
  let seen = "";
  while (Date.now() < until) {
    seen = await screen(page);
    if (seen.includes(needle)) {
      return seen;
    }
    await page.waitForTimeout(100);
  }
  fail(`the terminal did not show ${JSON.stringify(needle)}; it shows:\n${seen}`);
}

async function run(state) {
  const base = env("CONSOLE_URL");
  if (!isLoopback(base)) {
    fail(`CONSOLE_URL must be a loopback address, got ${base}`);
  }
  const [user, password, device, identity] = [env("CONSOLE_USER"), env("CONSOLE_PASSWORD"), env("DEVICE"), env("IDENTITY")];
  const context = await launchContext(state, base, STEP_MS);
  const page = await context.newPage();
  state.page = page;
  page.on("console", (msg) => {
    if (msg.type() === "error") {
      state.errors.push(`console error: ${msg.text()}`);
    }
  });
  page.on("pageerror", (err) => state.errors.push(`uncaught exception: ${err.message}`));
  page.on("request", (req) => {
    if (!isLoopback(req.url()) && !req.url().startsWith("data:")) {
      state.errors.push(`request to a non-loopback address: ${req.url()}`);
    }
  });

  await page.goto(`${base}/login`);
  await page.fill("form.login #username", user);
  await page.fill("form.login #password", password);
  await Promise.all([page.waitForURL((u) => u.pathname !== "/login"), page.click('form.login button[type="submit"]')]);

  const res = await page.goto(`${base}/devices/${device}/terminal`);
  if (!res || res.status() !== 200) {
    fail(`the terminal page answered ${res ? res.status() : "nothing"}`);
  }
  const csp = (await res.allHeaders())["content-security-policy"] || "";
  if (!/script-src|default-src/.test(csp) || /script-src[^;]*unsafe-inline/.test(csp)) {
    fail(`the terminal page's policy allows inline script: ${csp}`);
  }
  await page.waitForSelector('#terminal[data-state="open"]');
  await waitFor(page, `[admin@${identity}] >`);
  say("PROMPT");
  await page.click("#terminal");
  await page.keyboard.type("/system identity print");
  await page.keyboard.press("Enter");
  await waitFor(page, `name: ${identity}`);
  checkErrors(state, "in the terminal");
  say("IDENTITY");

  // Leaving the page ends the session; its recording closes and replays.
  await page.goto(`${base}/devices/${device}`);
  await Promise.all([page.waitForURL((u) => u.pathname.endsWith("/recordings")), page.click("#terminal-recordings")]);
  const until = Date.now() + STEP_MS;
  for (;;) {
    const running = await page.$("#recordings tbody tr:first-child .status");
    if (!running) {
      break;
    }
    if (Date.now() > until) {
      fail("the session's recording still runs after the terminal was left");
    }
    await page.waitForTimeout(250);
    await page.reload();
  }
  const [nav] = await Promise.all([page.waitForNavigation(), page.click("#recordings tbody tr:first-child a.replay")]);
  const replayCsp = nav ? (await nav.allHeaders())["content-security-policy"] || "" : "";
  if (!/default-src 'self'/.test(replayCsp) || /script-src[^;]*unsafe-inline/.test(replayCsp)) {
    fail(`the replay page's policy allows inline script: ${replayCsp}`);
  }
  await page.waitForSelector('#terminal[data-state="ended"], #terminal[data-state="error"]', { timeout: STEP_MS });
  const replayStatus = await page.$eval("#replay-status", (el) => el.textContent);
  if ((await page.$eval("#terminal", (el) => el.dataset.state)) !== "ended") {
    fail(`the replay failed: ${replayStatus}`);
  }
  const replayed = await screen(page);
  if (!replayed.includes(`[admin@${identity}] >`) || !replayed.includes(`name: ${identity}`)) {
    fail(`the replay does not show the session; it shows:\n${replayed}`);
  }
  log(`replay: ${replayStatus}`);
  checkErrors(state, "in the replay");
  say("REPLAYED");
}

runMain(run, TOTAL_MS);
