// Browser test of the console's live overview: a headless Chromium signs in
// through the real login form, then sees a newly connected agent appear on the
// "Sites & agents" page through the /events stream, without reloading.
//
// Driven by tests/tests/console_browser.rs, which starts the collector and the
// agents. Protocol, one line each:
//   stdout "READY"    the page shows FIRST_AGENT online and is listening
//   stdin  <agent id> the SECOND agent, now enrolled and running
//   stdout "UPDATED"  its row appeared, online, in the same page
// Diagnostics go to stderr. Exit status 0 on success, 1 on any failure.
//
// Environment:
//   CONSOLE_URL       e.g. https://127.0.0.1:8443 (loopback only)
//   CONSOLE_SPKI      for https: base64 SHA-256 of the console certificate's key (SPKI)
//   CONSOLE_USER      console user name
//   CONSOLE_PASSWORD  its password
//   FIRST_AGENT       id of an agent that is online before the page loads
//   SCREENSHOT        optional: where to save a PNG of the page on failure
//   CHROMIUM          optional: browser executable (default /usr/bin/chromium)
import { env, fail, isLoopback, launchContext, log, named, readLine, runMain } from "./harness.mjs";

const STEP_MS = 30_000; // any single wait in the page
const STDIN_MS = 120_000; // for the driver to start the second agent
const TOTAL_MS = 180_000; // the whole run

named("live_update");

function rowStatus(agentId) {
  return `tr[data-agent-id="${agentId}"] td.status`;
}

// Waits until the agent's row is in the page with status "online".
async function waitOnline(page, agentId, what) {
  const selector = rowStatus(agentId);
  try {
    await page.waitForFunction(
      (sel) => {
        const cell = document.querySelector(sel);
        return cell !== null && cell.classList.contains("online") && cell.textContent.trim() === "online";
      },
      selector,
      { timeout: STEP_MS, polling: 100 },
    );
  } catch (err) {
    const found = await page
      .$eval(selector, (cell) => `${cell.className} "${cell.textContent.trim()}"`)
      .catch(() => "no such row");
    const rows = await page
      .$$eval("tr[data-agent-id]", (trs) => trs.map((tr) => tr.dataset.agentId).join(", "))
      .catch(() => "?");
    fail(
      `${what} ${agentId} not shown online within ${STEP_MS / 1000} s ` +
        `(its status cell: ${found}; rows in the page: [${rows}]): ${err.message.split("\n")[0]}`,
    );
  }
}

// Markup the console's Content-Security-Policy would refuse.
async function inlineCode(page) {
  return page.evaluate(() => {
    const found = [];
    for (const s of document.querySelectorAll("script")) {
      if (!s.src) {
        found.push(`inline <script>: ${s.textContent.trim().slice(0, 60)}`);
      }
    }
    for (const s of document.querySelectorAll("style")) {
      found.push(`inline <style>: ${s.textContent.trim().slice(0, 60)}`);
    }
    for (const node of document.querySelectorAll("*")) {
      for (const attr of node.attributes) {
        const name = attr.name.toLowerCase();
        if (name.startsWith("on")) {
          found.push(`<${node.localName} ${name}=...> event handler`);
        } else if (name === "style") {
          found.push(`<${node.localName} style=...> attribute`);
        } else if ((name === "href" || name === "src" || name === "action") && /^\s*javascript:/i.test(attr.value)) {
          found.push(`<${node.localName} ${name}="javascript:...">`);
        }
      }
    }
    return found;
  });
}

async function run(state) {
  const base = env("CONSOLE_URL").replace(/\/+$/, "");
  const user = env("CONSOLE_USER");
  const password = env("CONSOLE_PASSWORD");
  const first = env("FIRST_AGENT");
  if (!isLoopback(base)) {
    fail(`CONSOLE_URL must be a loopback address, got ${base}`);
  }

  const context = await launchContext(state, base, STEP_MS);
  const page = await context.newPage();
  state.page = page;

  page.on("console", (msg) => {
    if (msg.type() === "error") {
      const where = msg.location().url;
      state.errors.push(`console error: ${msg.text()}${where ? ` (${where})` : ""}`);
    }
  });
  page.on("pageerror", (err) => state.errors.push(`uncaught exception: ${err.message}`));
  page.on("request", (req) => {
    if (!isLoopback(req.url()) && !req.url().startsWith("data:")) {
      state.errors.push(`request to a non-loopback address: ${req.url()}`);
    }
  });
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) {
      state.navigations.push(frame.url());
    }
  });

  // Sign in through the form.
  const loginPage = await page.goto(`${base}/login`);
  if (!loginPage || loginPage.status() !== 200) {
    fail(`GET /login answered ${loginPage ? loginPage.status() : "nothing"}`);
  }
  await page.fill("form.login #username", user);
  await page.fill("form.login #password", password);
  const [overviewResponse] = await Promise.all([
    // The page the form leads to, after any redirect: the overview, or the form with an error.
    page.waitForResponse(
      (res) =>
        res.request().isNavigationRequest() &&
        res.request().frame() === page.mainFrame() &&
        (res.status() < 300 || res.status() >= 400),
    ),
    page.click('form.login button[type="submit"]'),
  ]);
  await page.waitForLoadState("load");
  if (new URL(page.url()).pathname !== "/") {
    const alert = await page
      .$eval('[role="alert"]', (el) => el.textContent.trim())
      .catch(() => "no error shown");
    fail(`signing in did not lead to the overview: at ${page.url()} (${alert})`);
  }
  if (overviewResponse.status() !== 200) {
    fail(`the overview answered ${overviewResponse.status()}`);
  }

  // Served as the console's policy says: no inline code, and the policy allows none.
  const csp = (await overviewResponse.allHeaders())["content-security-policy"] || "";
  if (!/(^|;)\s*(default-src|script-src)\s/.test(csp) || /unsafe-inline|unsafe-eval/.test(csp)) {
    fail(`the overview's Content-Security-Policy does not forbid inline script: ${JSON.stringify(csp)}`);
  }
  const inline = await inlineCode(page);
  if (inline.length > 0) {
    fail(`the overview has inline code the policy would block:\n  ${inline.join("\n  ")}`);
  }

  await waitOnline(page, first, "the first agent");
  // The script is subscribed to /events before anything is changed.
  try {
    await page.waitForSelector('#live-status[data-state="live"]', { timeout: STEP_MS });
  } catch (_) {
    const live = await page.$eval("#live-status", (el) => `${el.dataset.state}: ${el.textContent}`).catch(() => "?");
    fail(`the page did not go live within ${STEP_MS / 1000} s (status line ${live})`);
  }

  const marker = `no-reload-${Date.now()}-${Math.random()}`;
  await page.evaluate((m) => {
    window.__outpostNoReload = m;
  }, marker);
  const before = await page.evaluate(() => ({
    url: location.href,
    navigations: performance.getEntriesByType("navigation").length,
    timeOrigin: performance.timeOrigin,
  }));
  const navigationsBefore = state.navigations.length;
  if (state.errors.length > 0) {
    fail(`problems before the update:\n  ${state.errors.join("\n  ")}`);
  }

  process.stdout.write("READY\n");
  const second = await readLine(STDIN_MS, "an agent id");
  if (!/^[0-9a-f-]{36}$/i.test(second)) {
    fail(`expected an agent id on stdin, got ${JSON.stringify(second)}`);
  }
  if (second === first) {
    fail("the second agent id is the first one");
  }
  log(`waiting for ${second} to appear`);

  await waitOnline(page, second, "the second agent");

  const after = await page.evaluate(() => ({
    url: location.href,
    navigations: performance.getEntriesByType("navigation").length,
    timeOrigin: performance.timeOrigin,
    marker: window.__outpostNoReload,
  }));
  if (after.marker !== marker || after.timeOrigin !== before.timeOrigin) {
    fail("the page was reloaded: the marker set on window is gone");
  }
  if (after.url !== before.url || after.navigations !== before.navigations) {
    fail(`the page navigated: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
  }
  if (state.navigations.length !== navigationsBefore) {
    fail(`the page navigated to ${state.navigations.slice(navigationsBefore).join(", ")}`);
  }
  // The first agent is still listed, and the totals followed.
  await waitOnline(page, first, "the first agent, after the update,");
  const totals = await page.$eval('[data-total="online"]', (el) => el.textContent.trim());
  if (Number(totals) < 2) {
    fail(`the "Online" total shows ${totals}, expected at least 2`);
  }
  const inlineAfter = await inlineCode(page);
  if (inlineAfter.length > 0) {
    fail(`the re-rendered overview has inline code:\n  ${inlineAfter.join("\n  ")}`);
  }
  if (state.errors.length > 0) {
    fail(`problems in the page:\n  ${state.errors.join("\n  ")}`);
  }
  process.stdout.write("UPDATED\n");
}

runMain(run, TOTAL_MS, { navigations: [] });
