// Delta compression: a subscription with `delta: 'fossil'` and a plain one on the same channel see
// the same publication data, live and after recovering from a reconnect; deltaStats() shows that
// deltas really came. ROTARY_CHANNEL names a channel of a namespace that allows fossil deltas.
// See https://centrifugal.dev/docs/server/delta_compression.
import { api, connected, run, sleep, subscribed, unpayload } from './sdk.mjs';

const channel = process.env.ROTARY_CHANNEL;

function document(version) {
  return { rows: Array.from({ length: 40 }, (_, i) => ({ id: i, name: `row ${i}`, v: i === 7 ? version : i })) };
}

function collect(sub) {
  const seen = [];
  sub.on('publication', (ctx) => seen.push({ offset: ctx.offset, data: unpayload(ctx.data) }));
  return seen;
}

async function publish(from, to) {
  for (let version = from; version < to; version++) {
    await api('publish', { channel, data: document(version), delta: true });
  }
}

async function until(condition, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for publications');
    await sleep(20);
  }
}

run(async () => {
  const plainClient = await connected({ sub: 'plain' });
  const deltaClient = await connected({ sub: 'delta' });
  const plainSub = await subscribed(plainClient, channel);
  const deltaSub = await subscribed(deltaClient, channel, { delta: 'fossil' });
  const plain = collect(plainSub);
  const delta = collect(deltaSub);
  await publish(0, 4);
  await until(() => plain.length === 4 && delta.length === 4);

  deltaClient.disconnect();
  await publish(4, 7);
  deltaClient.connect();
  await deltaClient.ready(5000);
  await until(() => delta.length === 7);
  await publish(7, 9);
  await until(() => plain.length === 9 && delta.length === 9);
  return { plain, delta, stats: deltaSub.deltaStats() };
});
