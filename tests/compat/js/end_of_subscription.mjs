// One HTTP API batch publishes and then ends the subscription (server unsubscribe, or disconnect
// with a reconnect code): the publication must reach the SDK before that end, every round.
import { api, connected, next, run, uniqueChannel } from './sdk.mjs';

const rounds = Number(process.env.ROTARY_ROUNDS || '10');

// The subscription's events of one round, in order, among those the test cares about.
function recorder(sub, names) {
  const order = [];
  for (const name of names) sub.on(name, () => order.push(name));
  return order;
}

async function unsubscribeRounds(client, user) {
  const seen = [];
  for (let n = 0; n < rounds; n++) {
    const channel = uniqueChannel();
    const sub = client.newSubscription(channel);
    const order = recorder(sub, ['publication', 'unsubscribed']);
    sub.subscribe();
    await sub.ready(5000);
    const ended = next(sub, 'unsubscribed');
    await api('batch', {
      commands: [
        { publish: { channel, data: { n } } },
        { unsubscribe: { user, channel } },
      ],
    });
    await ended;
    seen.push(order.slice());
    client.removeSubscription(sub);
  }
  return seen;
}

async function disconnectRounds(client, user) {
  const seen = [];
  const channel = uniqueChannel();
  const sub = client.newSubscription(channel);
  sub.subscribe();
  await sub.ready(5000);
  for (let n = 0; n < rounds; n++) {
    const order = recorder(sub, ['publication', 'subscribing']);
    const again = next(sub, 'subscribed');
    await api('batch', {
      commands: [
        { publish: { channel, data: { n } } },
        { disconnect: { user, disconnect: { code: 4001, reason: 'again' } } },
      ],
    });
    await again;
    seen.push(order.slice(0, 2));
    sub.removeAllListeners('publication');
    sub.removeAllListeners('subscribing');
  }
  return seen;
}

run(async () => {
  const suffix = uniqueChannel().split(':')[1];
  const first = await connected({ sub: `u-${suffix}` });
  const unsubscribe = await unsubscribeRounds(first, `u-${suffix}`);
  const second = await connected({ sub: `d-${suffix}` });
  const disconnect = await disconnectRounds(second, `d-${suffix}`);
  return { unsubscribe, disconnect };
});
