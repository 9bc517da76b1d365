// Drives rotary's admin UI in headless Debian Chromium for test_browser_admin.py.
//
// Usage: node drive_admin.mjs <url>
// Protocol: after the page has loaded the script prints {"ok": true}; then it reads one JSON request
// per line on stdin and answers each with one line {"ok": bool, "error"?: string, "text"?: string}:
//   {"goto": url}                               navigate (a hash change included)
//   {"fill": [selector, value]}                 type into an input or textarea
//   {"check": [selector, bool]}                 tick or untick a checkbox
//   {"click": selector}                         click (the first match)
//   {"wait_text": [selector, text], "timeout"}  until the first match contains the text
//   {"text": selector}                          the first match's text
//   {"viewport": [width, height]}               resize the page
//   {"screenshot": path}                        a PNG of the whole page
// Browser console output goes to stderr. The script exits, closing the browser, when stdin ends.
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [url] = process.argv.slice(2);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.on('console', (msg) => process.stderr.write(`console.${msg.type()}: ${msg.text()}\n`));
page.on('pageerror', (err) => process.stderr.write(`pageerror: ${err}\n`));
page.on('dialog', (dialog) => dialog.accept());

const actions = {
  goto: (target) => page.goto(target),
  fill: ([selector, value]) => page.locator(selector).first().fill(value),
  check: ([selector, value]) => page.locator(selector).first().setChecked(value),
  click: (selector) => page.locator(selector).first().click(),
  wait_text: ([selector, text], request) => page.locator(selector).filter({ hasText: text }).first()
    .waitFor({ timeout: request.timeout ?? 10000 }),
  text: (selector) => page.locator(selector).first().innerText({ timeout: 10000 }),
  viewport: ([width, height]) => page.setViewportSize({ width, height }),
  screenshot: (path) => page.screenshot({ path, fullPage: true }),
};

async function answer(request) {
  const [name] = Object.keys(request).filter((key) => key in actions);
  try {
    if (name === undefined) throw new Error(`unknown request: ${JSON.stringify(request)}`);
    const result = await actions[name](request[name], request);
    return { ok: true, ...(typeof result === 'string' && { text: result }) };
  } catch (err) {
    return { ok: false, error: String(err.message ?? err) };
  }
}

function reply(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

try {
  await page.goto(url);
  reply({ ok: true });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim()) reply(await answer(JSON.parse(line)));
  }
} catch (err) {
  reply({ ok: false, error: String(err.message ?? err) });
} finally {
  await browser.close();
}
