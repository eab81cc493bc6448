// Browser test of tenant users, roles and the TOTP second factor: the MSP
// administrator creates a tenant viewer; the viewer signs in, is refused the
// add-device page (403), sets up TOTP (codes computed here, RFC 6238 with
// HMAC-SHA-1, from the secret text the page shows), signs out, signs in with
// password + code, then with a recovery code; the same recovery code is
// refused the second time.
//
// Driven by tests/tests/console_users_browser.rs. Protocol, one stdout line each:
//   "CREATED"   the administrator created the user
//   "DENIED"    the viewer got 403 on /devices/new
//   "ENROLLED"  TOTP set up, recovery codes shown
//   "TOTP"      signed in with password + code
//   "RECOVERY"  signed in with password + recovery code
//   "DONE"      the reused recovery code was refused
// Diagnostics go to stderr. Exit status 0 on success, 1 on any failure.
//
// Environment:
//   CONSOLE_URL       e.g. https://127.0.0.1:8443 (loopback only)
//   CONSOLE_SPKI      base64 SHA-256 of the console certificate's key (HTTPS only)
//   CONSOLE_USER      an MSP administrator's name
//   CONSOLE_PASSWORD  their password
//   TENANT            the tenant the new user joins (by name)
//   NEW_USER          the new user's name
//   NEW_PASSWORD      their password
//   SCREENSHOT        optional: where to save a PNG of the page on failure
//   CHROMIUM          optional: browser executable (default /usr/bin/chromium)
import crypto from "node:crypto";
import { checkErrors, env, fail, inlineCode, isLoopback, launchContext, log, named, runMain, say, sleep } from "./harness.mjs";

const STEP_MS = 30_000;
const TOTAL_MS = 180_000;

named("users");

function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text.replace(/[=\s]/g, "").toUpperCase()) {
    const i = alphabet.indexOf(ch);
    if (i < 0) {
      fail(`the secret ${JSON.stringify(text)} is not base32`);
    }
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// RFC 6238: HOTP (RFC 4226) of the 30-second step, 6 digits, HMAC-SHA-1.
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const h = crypto.createHmac("sha1", secret).update(counter).digest();
  const off = h[h.length - 1] & 0x0f;
  const bin = ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(bin % 1_000_000).padStart(6, "0");
}

function currentStep() {
  return Math.floor(Date.now() / 1000 / 30);
}

// A step later than `used`, waiting for it if need be (a code is good once).
async function freshStep(used) {
  while (currentStep() <= used) {
    await sleep(500);
  }
  return currentStep();
}

async function text(page, selector) {
  return page.$eval(selector, (el) => el.textContent.trim()).catch(() => null);
}

async function checkPage(page, state, what) {
  const inline = await inlineCode(page);
  if (inline.length > 0) {
    fail(`${what} has inline code the policy would block:\n  ${inline.join("\n  ")}`);
  }
  checkErrors(state, what);
}

async function submit(page, form) {
  await Promise.all([page.waitForNavigation(), page.click(`${form} button[type="submit"]`)]);
  await page.waitForLoadState("load");
}

async function signIn(page, base, user, password) {
  await page.goto(`${base}/login`);
  await page.fill("form.login #username", user);
  await page.fill("form.login #password", password);
  await submit(page, "form.login");
}

async function signOut(page) {
  await submit(page, "form.signout");
  if (new URL(page.url()).pathname !== "/login") {
    fail(`signing out ended at ${page.url()}`);
  }
}

function at(page, path, what) {
  const now = new URL(page.url()).pathname;
  if (now !== path) {
    fail(`${what}: at ${page.url()}, expected ${path}`);
  }
}

async function run(state) {
  const base = env("CONSOLE_URL").replace(/\/$/, "");
  if (!isLoopback(base)) {
    fail(`CONSOLE_URL must be a loopback address, got ${base}`);
  }
  const admin = env("CONSOLE_USER");
  const adminPassword = env("CONSOLE_PASSWORD");
  const tenant = env("TENANT");
  const user = env("NEW_USER");
  const password = env("NEW_PASSWORD");

  const context = await launchContext(state, base, STEP_MS);
  const page = await context.newPage();
  state.page = page;
  page.on("console", (msg) => {
    // The 403 page is an expected failed load; everything else is a problem.
    if ((msg.type() === "error" || msg.type() === "warning") && !/status of 40[13]/.test(msg.text())) {
      state.errors.push(`console ${msg.type()}: ${msg.text()}`);
    }
  });
  page.on("pageerror", (err) => state.errors.push(`uncaught exception: ${err.message}`));
  page.on("request", (req) => {
    if (!isLoopback(req.url())) {
      state.errors.push(`request to a non-loopback address: ${req.url()}`);
    }
  });

  // The MSP administrator creates a viewer of the tenant.
  await signIn(page, base, admin, adminPassword);
  at(page, "/", "the administrator's sign-in");
  await page.goto(`${base}/admin/users`);
  await checkPage(page, state, "/admin/users");
  await page.fill("#new-user #username", user);
  await page.fill("#new-user #password", password);
  await page.selectOption("#new-user #tenant", { label: tenant });
  await page.selectOption("#new-user #role", "viewer");
  await submit(page, "#new-user");
  const notice = await text(page, '[role="status"]');
  if (notice !== "User created.") {
    fail(`creating the user: ${JSON.stringify(notice)} ${await text(page, "main")}`);
  }
  const row = await text(page, `tr[data-user="${user}"]`);
  if (!row || !row.includes(`${tenant}: viewer`)) {
    fail(`the users list shows ${JSON.stringify(row)}`);
  }
  say("CREATED");
  await signOut(page);

  // The viewer signs in and may not add a device.
  await signIn(page, base, user, password);
  at(page, "/", "the viewer's sign-in");
  const res = await page.goto(`${base}/devices/new`);
  if (!res || res.status() !== 403) {
    fail(`/devices/new answered ${res ? res.status() : "nothing"} to a viewer, expected 403`);
  }
  const heading = await text(page, "h1");
  if (heading !== "Permission denied") {
    fail(`/devices/new shows ${JSON.stringify(heading)}`);
  }
  say("DENIED");

  // TOTP set-up from the account page.
  await page.goto(`${base}/account`);
  await checkPage(page, state, "/account");
  await Promise.all([page.waitForNavigation(), page.click("#totp-setup")]);
  at(page, "/account/totp", "set-up");
  await checkPage(page, state, "/account/totp");
  const qrOk = await page.$eval("img.qr", (img) => img.complete && img.naturalWidth > 0);
  if (!qrOk) {
    fail("the QR code image did not load");
  }
  const secret = base32Decode(await text(page, "#totp-secret"));
  let used = currentStep();
  await page.fill("form.login #code", totp(secret, used));
  await submit(page, "form.login");
  const codes = await page.$$eval("#recovery-codes code", (els) => els.map((e) => e.textContent.trim()));
  if (codes.length !== 10) {
    fail(`expected 10 recovery codes, the page shows ${codes.length}: ${await text(page, "main")}`);
  }
  await checkPage(page, state, "the recovery codes");
  say("ENROLLED");
  await page.goto(`${base}/account`);
  await signOut(page);

  // Password, then a code of a later step.
  await signIn(page, base, user, password);
  at(page, "/login/code", "the second step");
  if ((await context.cookies()).some((c) => c.name === "outpost_session")) {
    fail("a session cookie was set before the second factor");
  }
  const blocked = await page.goto(`${base}/devices`);
  at(page, "/login", "a page before the second factor");
  if (!blocked) {
    fail("no answer for /devices");
  }
  await signIn(page, base, user, password);
  used = await freshStep(used);
  await page.fill("form.login #code", totp(secret, used));
  await submit(page, "form.login");
  at(page, "/", "sign-in with a code");
  say("TOTP");
  await signOut(page);

  // Password, then a recovery code.
  await signIn(page, base, user, password);
  at(page, "/login/code", "the second step");
  await page.fill("form.login #recovery", codes[0]);
  await submit(page, "form.login");
  at(page, "/", "sign-in with a recovery code");
  say("RECOVERY");
  await signOut(page);

  // The same recovery code again: refused.
  await signIn(page, base, user, password);
  at(page, "/login/code", "the second step");
  await page.fill("form.login #recovery", codes[0]);
  await submit(page, "form.login");
  at(page, "/login/code", "a reused recovery code");
  const alert = await text(page, '[role="alert"]');
  if (!alert || !alert.includes("not valid")) {
    fail(`a reused recovery code shows ${JSON.stringify(alert)}`);
  }
  say("DONE");
}

runMain(run, TOTAL_MS);
