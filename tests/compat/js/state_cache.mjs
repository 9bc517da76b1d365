// Cache recovery mode: an empty `since` makes the first subscribe deliver the latest publication.
import { api, connected, run, sleep, unpayload } from './sdk.mjs';
import { nth, only, recorder } from './state_events.mjs';

run(async () => {
  const channel = `cache:${Math.random().toString(16).slice(2, 14)}`;
  for (const n of [1, 2, 3]) {
    await api('publish', { channel, data: { n } });
  }
  const client = await connected({ sub: '42' });
  const sub = client.newSubscription(channel, { since: {} });
  const seen = recorder(sub, ['publication']);
  sub.subscribe();
  await nth(seen, 'publication', 1);
  await sleep(200);
  return { publications: only(seen, 'publication').map((ctx) => [ctx.offset, unpayload(ctx.data)]) };
});
