// Opens a mi-assess report.html in real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) and checks that it renders, works, and loads nothing from outside.
//
//   node tests/report/report_browser_test.mjs <report.html> [screenshot.png] [front-page.png]
//
// Fails (exit 1) on: missing key content, a row that does not open, a severity filter that does
// not filter, any console error, any uncaught page error, any dialog (injected script), and any
// request that is not file:, data: or about: (an external request). Saves a full-page screenshot either way it gets that far.
//
// playwright-core is resolved from PLAYWRIGHT_CORE_DIR (a node_modules folder) when set, so the
// test can run with the copy scripts/test-report-browser.sh installs under .test-env/report.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function fail(message) {
  console.error(`report browser test: FAILED: ${message}`);
  process.exit(1);
}

function loadPlaywright() {
  const require = createRequire(import.meta.url);
  const candidates = [];
  if (process.env.PLAYWRIGHT_CORE_DIR) {
    candidates.push(path.join(process.env.PLAYWRIGHT_CORE_DIR, 'playwright-core'));
  }
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  candidates.push(path.join(repoRoot, '.test-env/report/node_modules/playwright-core'), 'playwright-core');
  for (const candidate of candidates) {
    try {
      return require(candidate);
    } catch {
      // try the next one
    }
  }
  return fail(
    'playwright-core is not installed; run scripts/test-report-browser.sh or ' +
      '`npm install --prefix .test-env/report playwright-core`',
  );
}

const reportArg = process.argv[2];
if (!reportArg) {
  fail('usage: node tests/report/report_browser_test.mjs <report.html> [screenshot.png]');
}
const reportPath = path.resolve(reportArg);
if (!fs.existsSync(reportPath)) {
  fail(`no report at ${reportPath}`);
}
if (!fs.existsSync(CHROMIUM)) {
  fail(`no Chromium at ${CHROMIUM}; install Debian's package: apt-get install -y chromium`);
}
const screenshotPath = path.resolve(process.argv[3] || 'target/report-screenshot.png');
// The README's picture: the top of the report, one window high.
const frontPagePath = process.argv[4] ? path.resolve(process.argv[4]) : null;

const { chromium } = loadPlaywright();
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mi-assess-report-chromium-'));

const consoleErrors = [];
const pageErrors = [];
const externalRequests = [];
const failedRequests = [];
const dialogs = [];
let checks = 0;
const failures = [];

function check(condition, what) {
  checks += 1;
  if (!condition) {
    failures.push(what);
  }
}

let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 },
    deviceScaleFactor: 1,
  });
} catch (error) {
  fs.rmSync(userDataDir, { recursive: true, force: true });
  fail(`could not start Chromium: ${error.message}`);
}

try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') {
      consoleErrors.push(message.text());
    }
  });
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  // A dialog can only come from script the report did not mean to run (e.g. alert() injected
  // through a display name).
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('request', (request) => {
    const url = request.url();
    if (!/^(file|data|about):/i.test(url)) {
      externalRequests.push(url);
    }
  });
  page.on('requestfailed', (request) => {
    failedRequests.push(`${request.url()} (${request.failure()?.errorText ?? 'failed'})`);
  });

  const response = await page.goto(pathToFileURL(reportPath).href, { waitUntil: 'load' });
  check(response === null || response.ok(), 'the report loads');
  // The page's script runs synchronously; give late errors a moment to surface.
  await page.waitForTimeout(200);

  // Key content.
  const tenant = (await page.locator('#tenant-id').textContent())?.trim() ?? '';
  check(/^[0-9a-f-]{36}$/i.test(tenant), `the tenant id is shown (got ${JSON.stringify(tenant)})`);
  const status = (await page.locator('#run-status').textContent())?.trim().toLowerCase() ?? '';
  check(['complete', 'partial', 'failed'].includes(status), `the run status is shown (got ${status})`);
  check(await page.locator('html.js').count() === 1, 'the inline script ran (CSP hash matches)');

  const bars = await page.locator('#severity svg g.bar').evaluateAll((gs) =>
    gs.map((g) => ({
      severity: g.getAttribute('data-severity'),
      count: Number(g.getAttribute('data-count')),
      label: g.querySelector('.bar-value')?.textContent ?? '',
    })),
  );
  check(bars.length === 5, `the severity chart has 5 bars (got ${bars.length})`);
  for (const bar of bars) {
    check(
      bar.label.trim().startsWith(String(bar.count)),
      `the ${bar.severity} bar is labelled with its count ${bar.count} (got ${JSON.stringify(bar.label)})`,
    );
  }
  const totalFindings = bars.reduce((sum, bar) => sum + bar.count, 0);
  check(totalFindings > 0, 'the chart counts some findings');
  const findingArticles = await page.locator('article.finding').count();
  check(findingArticles === totalFindings, `the chart total ${totalFindings} equals the findings listed (${findingArticles})`);

  const identityRows = page.locator('#identities details.subject');
  const identityCount = await identityRows.count();
  check(identityCount > 0, `at least one identity row (got ${identityCount})`);
  for (const selector of ['#filters', 'input[name="severity"][value="critical"]', '#filter-rule', '#filter-kind']) {
    check(await page.locator(selector).isVisible(), `filter control ${selector} is visible`);
  }
  check(await page.locator('#changes').isVisible(), 'the changes section is visible');
  check(
    /changes since the last run/i.test((await page.locator('#changes h2').textContent()) ?? ''),
    'the changes section has its heading',
  );

  // Clicking an identity row reveals its remediation.
  const withFindings = page.locator('#identities details.subject:not([data-findings="0"])').first();
  const remediation = withFindings.locator('pre.remediation').first();
  check(!(await remediation.isVisible()), 'remediation is hidden before the row is clicked');
  await withFindings.locator('summary').click();
  check(await remediation.isVisible(), 'clicking an identity row reveals a remediation');
  const remediationText = ((await remediation.textContent()) ?? '').trim();
  check(remediationText.length > 10, `the remediation has text (got ${JSON.stringify(remediationText.slice(0, 40))})`);
  check(await withFindings.locator('pre.evidence').first().isVisible(), 'the evidence is shown with it');

  // The severity filter: only critical.
  const severities = ['high', 'medium', 'low', 'info'];
  for (const severity of severities) {
    await page.locator(`input[name="severity"][value="${severity}"]`).uncheck();
  }
  const afterFilter = await page.locator('details.subject').evaluateAll((subjects) =>
    subjects.map((s) => ({
      hidden: s.hidden || s.offsetParent === null,
      severities: (s.getAttribute('data-severities') || '').split(' ').filter(Boolean),
      visibleFindingSeverities: Array.from(s.querySelectorAll('article.finding'))
        .filter((f) => !f.hidden)
        .map((f) => f.getAttribute('data-severity')),
    })),
  );
  const visible = afterFilter.filter((s) => !s.hidden);
  const criticalBar = bars.find((b) => b.severity === 'critical');
  if (criticalBar && criticalBar.count > 0) {
    check(visible.length > 0, 'the critical filter leaves some rows visible');
  }
  check(afterFilter.some((s) => s.hidden), 'the critical filter hides some rows');
  check(
    visible.every((s) => s.severities.includes('critical')),
    'every row left visible by the critical filter has a critical finding',
  );
  check(
    afterFilter.filter((s) => !s.severities.includes('critical')).every((s) => s.hidden),
    'every row without a critical finding is hidden',
  );
  check(
    visible.every((s) => s.visibleFindingSeverities.every((sev) => sev === 'critical')),
    'only critical findings stay visible inside the rows',
  );
  const statusText = (await page.locator('#filter-status').textContent()) ?? '';
  check(/Showing \d+ of \d+/.test(statusText), `the filter status says what is shown (got ${JSON.stringify(statusText)})`);

  // Reset and show the whole report, with the first row open, for the screenshot.
  await page.locator('#filters button[type="reset"]').click();
  await page.waitForTimeout(50);
  const allVisible = await page.locator('details.subject').evaluateAll((subjects) => subjects.every((s) => !s.hidden));
  check(allVisible, 'reset shows every row again');

  // A suppressed finding, if the run has one, is marked with its reason and expiry.
  const suppressedSubject = page.locator('details.subject:has(article.finding[data-suppressed="true"])').first();
  if ((await suppressedSubject.count()) > 0) {
    if (!(await suppressedSubject.evaluate((d) => d.open))) {
      await suppressedSubject.locator('summary').click();
    }
    const note = suppressedSubject.locator('article.finding.is-suppressed .suppression').first();
    check(await note.isVisible(), 'a suppressed finding shows its accepted-risk note');
    const noteText = (await note.textContent()) ?? '';
    check(/Reason:/.test(noteText) && /Expires/.test(noteText), `the note gives the reason and expiry (got ${JSON.stringify(noteText)})`);
  }

  fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
  await page.screenshot({ path: screenshotPath, fullPage: true });
  check(fs.existsSync(screenshotPath) && fs.statSync(screenshotPath).size > 10_000, 'the screenshot was saved');
  if (frontPagePath) {
    await page.evaluate(() => window.scrollTo(0, 0));
    fs.mkdirSync(path.dirname(frontPagePath), { recursive: true });
    await page.screenshot({ path: frontPagePath, fullPage: false });
    check(fs.statSync(frontPagePath).size > 10_000, 'the front-page screenshot was saved');
  }

  check(consoleErrors.length === 0, `no console errors (got ${JSON.stringify(consoleErrors)})`);
  check(pageErrors.length === 0, `no page errors (got ${JSON.stringify(pageErrors)})`);
  check(externalRequests.length === 0, `no external requests (got ${JSON.stringify(externalRequests)})`);
  check(dialogs.length === 0, `no dialogs (got ${JSON.stringify(dialogs)})`);
  check(failedRequests.length === 0, `no failed requests (got ${JSON.stringify(failedRequests)})`);
} catch (error) {
  failures.push(`unexpected error: ${error.stack || error}`);
} finally {
  await context.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
}

if (failures.length > 0) {
  console.error(`report browser test: FAILED ${failures.length} of ${checks} checks (${reportPath}):`);
  for (const failure of failures) {
    console.error(`  - ${failure}`);
  }
  process.exit(1);
}
console.log(`report browser test: ok (${checks} checks), screenshot: ${screenshotPath}`);
