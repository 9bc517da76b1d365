// Opens one page in headless Debian Chromium and answers the test's requests about it.
//
// Usage: node drive_page.mjs <url> <empty user data dir> [quic [chromium flag...]]
// QUIC stays off (every other test's traffic is TCP) unless "quic" is given, for WebTransport and
// HTTP/3; flags after it go to Chromium as they are (to force QUIC on an origin, for instance).
// Protocol: one JSON object per line. After the page has loaded the script prints {"ok": true};
// then it reads requests from stdin and answers each with one line on stdout:
//   {"wait_event": [source, name], "timeout": ms}  until the page has recorded that event
//   {"wait_text": text, "timeout": ms}             until #counter shows that text
//   {"screenshot": path}                           writes a PNG of the page
//   {"events": true}                               just report
//   {"fill": [selector, text]}                     types text into a form field, as a user does
//   {"click": selector}                            clicks an element
//   {"wait_function": expression, "timeout": ms}   until the JS expression is truthy in the page
//   {"evaluate": expression}                       the expression's value, in the answer's "value"
// Every answer is {"ok": bool, "error"?: string, "counter": string, "events": [...], "value"?: any},
// where counter is #counter's text ("" for a page without one) and events are those the page
// recorded in window.events. Browser console output goes to stderr.
// The script exits, closing the browser, when stdin ends.
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [url, userDataDir, quic, ...flags] = process.argv.slice(2);

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ...(quic === 'quic' ? flags : ['--disable-quic']),
  ],
});
const page = context.pages()[0] ?? await context.newPage();
page.on('console', (msg) => process.stderr.write(`console.${msg.type()}: ${msg.text()}\n`));
page.on('pageerror', (err) => process.stderr.write(`pageerror: ${err}\n`));

async function snapshot() {
  return page.evaluate(() => ({
    counter: document.getElementById('counter')?.textContent ?? '',
    events: window.events ?? [],
  }));
}

const actions = {
  wait_event: ([source, name], request) => page.waitForFunction(
    ([s, n]) => (window.events ?? []).some((e) => e.source === s && e.name === n),
    [source, name], { timeout: request.timeout ?? 10000 }),
  wait_text: (text, request) => page.waitForFunction(
    (t) => document.getElementById('counter').textContent === t,
    text, { timeout: request.timeout ?? 10000 }),
  screenshot: (path) => page.screenshot({ path, fullPage: true }),
  events: () => undefined,
  fill: ([selector, text]) => page.fill(selector, text),
  click: (selector) => page.click(selector),
  wait_function: (expression, request) => page.waitForFunction(
    expression, undefined, { timeout: request.timeout ?? 10000 }),
  evaluate: (expression) => page.evaluate(expression),
};

async function answer(request) {
  const [name] = Object.keys(request).filter((key) => key in actions);
  let error;
  let value;
  try {
    if (name === undefined) throw new Error(`unknown request: ${JSON.stringify(request)}`);
    value = await actions[name](request[name], request);
  } catch (err) {
    error = String(err.message ?? err);
  }
  const result = { ok: error === undefined, ...(error && { error }), ...(await snapshot()) };
  if (name === 'evaluate') result.value = value;
  return result;
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
  await context.close();
}
