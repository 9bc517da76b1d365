// Publications sent while the client was disconnected come back once, in order, with `recovered`.
import { api, connected, run, uniqueChannel, unpayload } from './sdk.mjs';
import { nth, only, recorder } from './state_events.mjs';

run(async () => {
  const channel = uniqueChannel();
  const client = await connected({ sub: '42' });
  const sub = client.newSubscription(channel);
  const seen = recorder(sub, ['subscribed', 'publication']);
  sub.subscribe();
  await nth(seen, 'subscribed', 1);
  const publish = (n) => api('publish', { channel, data: { n } });
  await publish(1);
  await nth(seen, 'publication', 1);

  client.disconnect();
  for (const n of [2, 3, 4]) {
    await publish(n);
  }
  client.connect();
  const resubscribed = await nth(seen, 'subscribed', 2);
  await nth(seen, 'publication', 4);
  await publish(5);
  await nth(seen, 'publication', 5);
  return {
    wasRecovering: resubscribed.wasRecovering,
    recovered: resubscribed.recovered,
    publications: only(seen, 'publication').map((ctx) => [ctx.offset, unpayload(ctx.data)]),
  };
});
