// Shared by the state_* scenarios: a record of every event an SDK emitter emits, and a wait for a
// condition on those records. Unlike `next` in sdk.mjs, nothing is missed between two waits.

import { sleep } from './sdk.mjs';

// Records `events` of `emitter` as {event, ...ctx} in arrival order.
export function recorder(emitter, events) {
  const seen = [];
  for (const event of events) {
    emitter.on(event, (ctx) => seen.push({ event, ...ctx }));
  }
  return seen;
}

// The records of one event.
export const only = (seen, event) => seen.filter((record) => record.event === event);

// Resolves once `check()` is truthy (with its value); rejects after `ms`.
export async function until(check, what, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`not within ${ms} ms: ${what}`);
    }
    await sleep(10);
  }
}

// Waits for the `count`-th record of `event` and returns it.
export const nth = (seen, event, count, ms = 5000) =>
  until(() => only(seen, event)[count - 1], `${count} '${event}' events`, ms);
