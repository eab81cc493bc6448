// What the console's browser scripts share: failing with a message, logging
// under the script's name, the checks every page must pass (no inline code,
// no problems seen), and running a script under a watchdog that closes the
// browser and exits non-zero on failure (with a screenshot when SCREENSHOT
// names a file).
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export class TestFailure extends Error {}

let name = "browser";

/// Names the script in its log lines.
export function named(script) {
  name = script;
}

export function fail(message) {
  throw new TestFailure(message);
}

export function log(message) {
  process.stderr.write(`${name}: ${message}\n`);
}

export function say(line) {
  process.stdout.write(`${line}\n`);
}

export function env(name) {
  const value = process.env[name];
  if (!value) {
    fail(`environment variable ${name} is not set`);
  }
  return value;
}

export function isLoopback(url) {
  let host;
  try {
    host = new URL(url).hostname;
  } catch (_) {
    return false;
  }
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
}

// Chromium arguments that make it trust the console at `url`. Over HTTPS the
// console's certificate comes from the collector's own CA, which the browser
// does not know: it trusts exactly that certificate's key (CONSOLE_SPKI, the
// base64 SHA-256 of its SubjectPublicKeyInfo), not certificate errors in general.
export function certificateArgs(url) {
  if (!url.startsWith("https:")) {
    return [];
  }
  return [`--ignore-certificate-errors-spki-list=${env("CONSOLE_SPKI")}`];
}

// Starts headless Chromium for `base` (CHROMIUM, default /usr/bin/chromium)
// with nothing but loopback resolving, and answers a fresh context whose
// waits and navigations give up after `stepMs`. The browser is kept in
// `state` so the watchdog can close it.
export async function launchContext(state, base, stepMs) {
  state.browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: stepMs,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
      ...certificateArgs(base),
    ],
  });
  log(`browser ${state.browser.version()}`);
  const context = await state.browser.newContext({ serviceWorkers: "block" });
  context.setDefaultTimeout(stepMs);
  context.setDefaultNavigationTimeout(stepMs);
  return context;
}

// One line from stdin, or a failure after `ms` or at end of input; `what`
// names the expected line in the failure.
export function readLine(ms, what) {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    const done = (fn, value) => {
      clearTimeout(timer);
      rl.removeAllListeners();
      rl.close();
      fn(value);
    };
    const timer = setTimeout(() => done(reject, new TestFailure(`no ${what} on stdin within ${ms / 1000} s`)), ms);
    rl.once("line", (line) => done(resolve, line.trim()));
    rl.once("close", () => done(reject, new TestFailure(`stdin closed before ${what} arrived`)));
  });
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Markup the console's Content-Security-Policy would refuse.
export async function inlineCode(page) {
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
        } else if ((name === "href" || name === "src" || name === "action") && /^\s*javascript:/i.test(attr.value)) {
          found.push(`<${node.localName} ${name}="javascript:...">`);
        }
      }
    }
    return found;
  });
}

export function checkErrors(state, when) {
  if (state.errors.length > 0) {
    fail(`problems in the page ${when}:\n  ${state.errors.join("\n  ")}`);
  }
}

/// Runs `run(state)` within `totalMs` (`more` adds fields to the state);
/// exits 0 when it returns, 1 otherwise, also with stdin still open.
export async function runMain(run, totalMs, more = {}) {
  const state = { browser: null, page: null, errors: [], ...more };
  let code = 0;
  const watchdog = setTimeout(() => {
    log(`FAILED: the whole run exceeded ${totalMs / 1000} s`);
    setTimeout(() => process.exit(1), 5_000).unref();
    Promise.resolve(state.browser && state.browser.close())
      .catch(() => {})
      .finally(() => process.exit(1));
  }, totalMs);
  try {
    await run(state);
  } catch (err) {
    code = 1;
    log(`FAILED: ${err instanceof TestFailure ? err.message : err.stack || err}`);
    if (state.errors.length > 0) {
      log(`page problems seen:\n  ${state.errors.join("\n  ")}`);
    }
    const shot = process.env.SCREENSHOT;
    if (shot && state.page) {
      try {
        await state.page.screenshot({ path: shot, fullPage: true, timeout: 10_000 });
        log(`screenshot saved to ${shot}`);
      } catch (e) {
        log(`could not save a screenshot: ${e.message}`);
      }
    }
  } finally {
    if (state.browser) {
      await Promise.race([
        state.browser.close().catch(() => {}),
        new Promise((resolve) => setTimeout(resolve, 10_000)),
      ]);
    }
    clearTimeout(watchdog);
  }
  process.exit(code);
}

