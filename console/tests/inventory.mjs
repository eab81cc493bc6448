// Browser test of the inventory pages: a headless Chromium signs in through
// the login form, lists the discovered hosts, sorts them by clicking column
// headers, filters them and shows the gone ones, opens a router's page with
// its facts and history, sets the site's credential profile, adopts the
// router (landing on its new device page), asks for a scan now and follows
// its progress live until the summary shows, and reads what changed.
//
// Driven by tests/tests/console_inventory_browser.rs, which starts the
// collector and speaks for the agent. Protocol, one stdout line each:
//   "LISTED"        /inventory lists the live hosts by address, with badges
//   "SORTED"        the Address and Name headers sort (address both ways)
//   "FILTERED"      the filter narrows the list; "show gone hosts" adds the NAS
//   "HOST"          the router's page shows its facts, ports, SNMP, MNDP, history
//   "PROFILE"       the site's credential profile was saved through its form
//   "ADOPTED <id>"  the router was adopted; <id> is its device, whose page opened
//   "SCAN <id>"     "Scan now" led to the page of scan <id>
//   "PROGRESS"      the page shows the progress the agent reported, live
//   "SUMMARY"       once the agent reported the scan finished, its summary shows
//   "DONE"          /inventory/changes lists the changes, linked to their hosts
// Diagnostics go to stderr. Exit status 0 on success, 1 on any failure.
//
// Environment:
//   CONSOLE_URL       e.g. https://127.0.0.1:8443 (loopback only)
//   CONSOLE_SPKI      for https: base64 SHA-256 of the console certificate's key (SPKI)
//   CONSOLE_USER      console user name
//   CONSOLE_PASSWORD  its password
//   HOSTS             JSON: [{"id": ..., "address": ..., "mac": ...}] of every host
//   PROFILE_PASSWORD  the password the credential profile is set with
//   SCREENSHOT        optional: where to save a PNG of the page on failure
//   CHROMIUM          optional: browser executable (default /usr/bin/chromium)
import { checkErrors, env, fail, inlineCode, isLoopback, launchContext, log, named, runMain, say } from "./harness.mjs";

const STEP_MS = 30_000; // any single wait in the page
const TOTAL_MS = 150_000; // the whole run

named("inventory");

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function where(page) {
  const u = new URL(page.url());
  return u.pathname + u.search;
}

// What the page is now must be served with a policy that forbids inline
// script, and hold none.
async function checkPage(page, res, what) {
  const csp = (await res.allHeaders())["content-security-policy"] || "";
  if (!/(^|;)\s*(default-src|script-src)\s/.test(csp) || /unsafe-inline|unsafe-eval/.test(csp)) {
    fail(`${what}: the Content-Security-Policy does not forbid inline script: ${JSON.stringify(csp)}`);
  }
  const inline = await inlineCode(page);
  if (inline.length > 0) {
    fail(`${what} has inline code the policy would block:\n  ${inline.join("\n  ")}`);
  }
}

// Opens `path` (with its query), expecting a 200.
async function open(page, base, path) {
  const res = await page.goto(`${base}${path}`);
  if (!res || res.status() !== 200) {
    fail(`GET ${path} answered ${res ? res.status() : "nothing"}`);
  }
  if (where(page) !== path) {
    fail(`GET ${path} ended at ${page.url()}`);
  }
  await checkPage(page, res, path);
  return res;
}

// Clicks `selector` and waits for the navigation it starts; checks the page.
async function follow(page, selector, what) {
  const [res] = await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
  if (!res || res.status() !== 200) {
    fail(`${what}: ${where(page)} answered ${res ? res.status() : "nothing"}`);
  }
  await checkPage(page, res, where(page));
  return res;
}

async function text(page, selector) {
  return page.$eval(selector, (el) => el.textContent.trim()).catch(() => null);
}

// The <dd> after the <dt> named `term` in the first facts list that has it.
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

async function listed(page) {
  return page.$$eval("tr[data-host-id] a[data-field='address']", (as) => as.map((a) => a.textContent.trim()));
}

async function expectListed(page, want, what) {
  const got = await listed(page);
  if (!same(got, want)) {
    fail(`${what}: ${where(page)} lists ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
}

async function badges(page, hostId) {
  return page.$$eval(`tr[data-host-id="${hostId}"] [data-badge]`, (els) => els.map((e) => e.dataset.badge));
}

async function kinds(page) {
  return page.$$eval("table.changes [data-kind]", (els) => els.map((e) => e.dataset.kind));
}

async function waitText(page, selector, want, what) {
  try {
    await page.waitForFunction(
      ([s, w]) => {
        const el = document.querySelector(s);
        return el !== null && el.textContent.trim() === w;
      },
      [selector, want],
      { timeout: STEP_MS, polling: 100 },
    );
  } catch (_) {
    fail(`${what}: ${selector} shows ${JSON.stringify(await text(page, selector))}, expected ${JSON.stringify(want)}`);
  }
}

async function run(state) {
  const base = env("CONSOLE_URL").replace(/\/+$/, "");
  const user = env("CONSOLE_USER");
  const password = env("CONSOLE_PASSWORD");
  const profilePassword = env("PROFILE_PASSWORD");
  const hosts = JSON.parse(env("HOSTS"));
  if (!isLoopback(base)) {
    fail(`CONSOLE_URL must be a loopback address, got ${base}`);
  }
  const byMac = (mac) => hosts.find((h) => h.mac === mac) || fail(`no host with MAC ${mac} in HOSTS`);
  const router = byMac("02:00:00:00:00:01");
  const pc = byMac("02:00:00:00:00:03");
  const printer = byMac("02:00:00:00:00:14");
  const nas = byMac("02:00:00:00:00:64");

  const context = await launchContext(state, base, STEP_MS);
  // Playwright's init scripts run outside the page's policy: this one only
  // reports what the policy blocked.
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline code"}`);
    });
  });
  const page = await context.newPage();
  state.page = page;

  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") {
      const at = msg.location().url;
      state.errors.push(`console ${msg.type()}: ${msg.text()}${at ? ` (${at})` : ""}`);
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
    fail(`signing in did not lead to the overview: at ${page.url()} (${(await text(page, '[role="alert"]')) || "no error shown"})`);
  }

  // The list, reached from the navigation: live hosts by address, numerically.
  await follow(page, 'nav.nav a[href="/inventory"]', "the Inventory link");
  await expectListed(page, ["192.0.2.1", "192.0.2.3", "192.0.2.3", "192.0.2.20"], "by address");
  if (!same(await badges(page, router.id), ["adopt"])) {
    fail(`/inventory: the router's badges are ${JSON.stringify(await badges(page, router.id))}, expected the adopt badge`);
  }
  if (!same(await badges(page, pc.id), ["conflict"])) {
    fail(`/inventory: the PC's badges are ${JSON.stringify(await badges(page, pc.id))}, expected the conflict badge`);
  }
  if (await page.$(`tr[data-host-id="${nas.id}"]`)) {
    fail("/inventory lists the gone NAS without being asked to");
  }
  checkErrors(state, "on /inventory");
  say("LISTED");

  // Sorting by clicking the headers.
  await follow(page, "th a[data-sort='address']", "sorting by address");
  await expectListed(page, ["192.0.2.20", "192.0.2.3", "192.0.2.3", "192.0.2.1"], "by address, descending");
  const addressSort = await page.$eval("th a[data-sort='address']", (a) => a.parentElement.getAttribute("aria-sort"));
  if (addressSort !== "descending" || !where(page).includes("order=desc")) {
    fail(`after the second click on Address: aria-sort ${addressSort}, at ${where(page)}`);
  }
  await follow(page, "th a[data-sort='name']", "sorting by name");
  await expectListed(page, ["192.0.2.1", "192.0.2.3", "192.0.2.20", "192.0.2.3"], "by name (unnamed last)");
  checkErrors(state, "while sorting");
  say("SORTED");

  // Filtering, then the gone hosts too; the sort is kept.
  await page.fill("form.filters input[name='q']", "192.0.2.2");
  await follow(page, "form.filters button[type='submit']", "filtering");
  await expectListed(page, ["192.0.2.20"], "filtered by address prefix");
  if ((await page.inputValue("form.filters input[name='q']")) !== "192.0.2.2") {
    fail("the filter did not keep its text");
  }
  await page.fill("form.filters input[name='q']", "");
  await page.check("form.filters input[name='gone']");
  await follow(page, "form.filters button[type='submit']", "showing gone hosts");
  await expectListed(page, ["192.0.2.1", "192.0.2.100", "192.0.2.3", "192.0.2.20", "192.0.2.3"], "with gone hosts, by name");
  if (!same(await badges(page, nas.id), ["gone"])) {
    fail(`the NAS's badges are ${JSON.stringify(await badges(page, nas.id))}, expected gone`);
  }
  checkErrors(state, "while filtering");
  say("FILTERED");

  // The router's page, reached from the list.
  await follow(page, `tr[data-host-id="${router.id}"] a[data-field='address']`, "the router's link");
  const hostPath = `/inventory/hosts/${router.id}`;
  if (where(page) !== hostPath) {
    fail(`the router's link led to ${where(page)}`);
  }
  for (const [term, want] of [
    ["MAC", "02:00:00:00:00:01"],
    ["Vendor", "Routerboard.com"],
    ["Names", "hq-gw"],
    ["Open ports", "22,80,8728-8729"],
    ["OS guess", "MikroTik RouterOS 7 (96% accuracy)"],
    ["sysObjectID", "1.3.6.1.4.1.14988.1"],
    ["Board", "RB5009UG+S+"],
  ]) {
    const got = await fact(page, term);
    if (got !== want) {
      fail(`${hostPath}: ${term} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    }
  }
  const snmp = await text(page, "#snmp");
  if (!snmp || !snmp.includes("hq-switch") || !snmp.includes("ether1")) {
    fail(`${hostPath}: the SNMP section lacks the interface or the LLDP neighbour: ${JSON.stringify(snmp)}`);
  }
  const banner = await text(page, "#ports");
  if (!banner || !banner.includes("SSH-2.0-ROSSSH")) {
    fail(`${hostPath}: the ports table lacks the SSH banner`);
  }
  const history = await kinds(page);
  if (!history.includes("new_host") || !history.includes("port_opened")) {
    fail(`${hostPath}: the history is ${JSON.stringify(history)}, expected new_host and port_opened`);
  }
  if (!(await page.$("#no-profile a"))) {
    fail(`${hostPath}: no word that the site needs a credential profile first`);
  }
  checkErrors(state, `on ${hostPath}`);
  say("HOST");

  // The profile, through the link that says it is missing.
  await follow(page, "#no-profile a", "the profile link");
  const sitePath = new URL(page.url()).pathname;
  if (!/^\/inventory\/sites\/[0-9a-f-]+$/.test(sitePath)) {
    fail(`the profile link led to ${page.url()}`);
  }
  await page.fill("#profile input[name='username']", "outpost");
  await page.fill("#profile input[name='password']", profilePassword);
  await follow(page, "#profile button[type='submit']", "saving the profile");
  if (!where(page).includes("done=profile-saved")) {
    fail(`saving the profile led to ${where(page)}: ${await text(page, "#profile [role='alert']")}`);
  }
  const current = await text(page, "#profile-current");
  if (!current || !current.includes("outpost")) {
    fail(`the site page says ${JSON.stringify(current)} about the profile`);
  }
  if ((await page.content()).includes(profilePassword)) {
    fail("the site page shows the profile's password");
  }
  checkErrors(state, `on ${sitePath}`);
  say("PROFILE");

  // Adopt: the new device's page opens; the host links to it.
  await open(page, base, hostPath);
  await follow(page, "#adopt button[type='submit']", "adopting");
  const device = new URL(page.url()).pathname.match(/^\/devices\/([0-9a-f-]+)$/);
  if (!device) {
    fail(`adopting led to ${page.url()}: ${await text(page, "main")}`);
  }
  await open(page, base, hostPath);
  const link = await page.$eval("#device-link", (a) => a.getAttribute("href")).catch(() => null);
  if (link !== `/devices/${device[1]}`) {
    fail(`${hostPath} links the device as ${JSON.stringify(link)}`);
  }
  if (await page.$("#adopt")) {
    fail(`${hostPath} still offers adoption`);
  }
  checkErrors(state, "after adopting");
  say(`ADOPTED ${device[1]}`);

  // Scan now, from the site page: progress live, then the summary.
  await open(page, base, sitePath);
  await page.selectOption("#scan-now select[name='job']", "");
  await follow(page, "#scan-now button[type='submit']", "Scan now");
  const scan = new URL(page.url()).pathname.match(/^\/inventory\/scans\/(.+)$/);
  if (!scan) {
    fail(`"Scan now" led to ${page.url()}: ${await text(page, "main")}`);
  }
  say(`SCAN ${decodeURIComponent(scan[1])}`);
  await waitText(page, "#scan [data-field='phase']", "tcp", "the live progress");
  await waitText(page, "#scan [data-field='done']", "100", "the live progress");
  await waitText(page, "#scan [data-field='total']", "254", "the live progress");
  await waitText(page, "#scan [data-field='hosts_found']", "2", "the live progress");
  const bar = await page.$eval("#scan-bar", (b) => [b.value, b.max]);
  if (!same(bar, [100, 254])) {
    fail(`the progress bar is at ${JSON.stringify(bar)}`);
  }
  const live = await page.$eval("#scan-status", (p) => p.dataset.state);
  if (live !== "live") {
    fail(`the scan page's status is ${live}: ${await text(page, "#scan-status")}`);
  }
  checkErrors(state, "while the scan runs");
  say("PROGRESS");
  try {
    await page.waitForSelector("#scan-summary", { timeout: STEP_MS });
  } catch (_) {
    fail(`no summary after the scan finished (state ${JSON.stringify(await text(page, "#scan-state"))})`);
  }
  await page.waitForLoadState("load");
  const summary = [
    await text(page, "#scan-state"),
    await text(page, "#scan-summary [data-field='hosts_found']"),
    await text(page, "#warnings"),
  ];
  if (!same(summary, ["finished", "2", "ICMP not permitted: TCP probes only"])) {
    fail(`the scan's summary shows ${JSON.stringify(summary)}`);
  }
  checkErrors(state, "with the scan's summary");
  say("SUMMARY");

  // What changed in the last hour, each change linking to its host.
  await open(page, base, "/inventory/changes?since=1h");
  const changed = await kinds(page);
  for (const want of ["new_host", "port_opened", "mac_conflict", "host_gone", "adopted"]) {
    if (!changed.includes(want)) {
      fail(`/inventory/changes?since=1h lists ${JSON.stringify(changed)}, expected ${want} among them`);
    }
  }
  await follow(page, "nav.ranges a[href='/inventory/changes?since=24h']", "the 24 h preset");
  const pressed = await text(page, "nav.ranges a[aria-current='true']");
  if (pressed !== "24 h") {
    fail(`after the 24 h preset the current preset is ${JSON.stringify(pressed)}`);
  }
  await follow(page, `#changes a[href='/inventory/hosts/${printer.id}']`, "a change's host link");
  if (where(page) !== `/inventory/hosts/${printer.id}`) {
    fail(`the change's host link led to ${where(page)}`);
  }
  checkErrors(state, "on /inventory/changes");
  say("DONE");
}

runMain(run, TOTAL_MS);
