// The server cuts the connection (API disconnect with a reconnect code) while publications go on:
// the SDK reconnects and recovers those it missed, once each and in order.
import { api, newClient, next, run, token, uniqueChannel, unpayload } from './sdk.mjs';
import { nth, only, recorder } from './state_events.mjs';

run(async () => {
  const channel = uniqueChannel();
  const user = `cut-${channel.split(':')[1]}`;
  const client = newClient({ token: token({ sub: user }), minReconnectDelay: 300, maxReconnectDelay: 300 });
  const sub = client.newSubscription(channel);
  const seen = recorder(sub, ['subscribed', 'publication']);
  const publish = (n) => api('publish', { channel, data: { n } });
  client.connect();
  sub.subscribe();
  await nth(seen, 'subscribed', 1);
  await publish(1);
  await nth(seen, 'publication', 1);

  const cut = next(client, 'connecting');
  await api('disconnect', { user, disconnect: { code: 4002, reason: 'cut' } });
  const told = await cut;
  for (const n of [2, 3, 4]) {
    await publish(n);
  }
  const resubscribed = await nth(seen, 'subscribed', 2);
  await nth(seen, 'publication', 4);
  await publish(5);
  await nth(seen, 'publication', 5);
  return {
    cut: { code: told.code, reason: told.reason },
    wasRecovering: resubscribed.wasRecovering,
    recovered: resubscribed.recovered,
    publications: only(seen, 'publication').map((ctx) => [ctx.offset, unpayload(ctx.data)]),
  };
});
