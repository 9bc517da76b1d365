// Short-lived connection and subscription tokens, renewed through getToken: both outlive their
// first token's expiry plus the server's grace delay (ROTARY_EXPIRY_GRACE seconds).
import { api, newClient, next, now, run, sleep, token, uniqueChannel, unpayload } from './sdk.mjs';
import { nth, only, recorder } from './state_events.mjs';

const lifetime = Number(process.env.ROTARY_TOKEN_LIFETIME);
const grace = Number(process.env.ROTARY_EXPIRY_GRACE);
const margin = Number(process.env.ROTARY_EXPIRY_MARGIN);

run(async () => {
  const channel = `$${uniqueChannel()}`;
  let connectionTokens = 0;
  let subscriptionTokens = 0;
  const firstExp = now() + lifetime;
  const client = newClient({
    token: token({ sub: '42', exp: firstExp }),
    getToken: async () => {
      connectionTokens += 1;
      return token({ sub: '42', exp: now() + lifetime });
    },
  });
  const clientSeen = recorder(client, ['connecting', 'disconnected']);
  const connected = next(client, 'connected');
  client.connect();
  await connected;
  const sub = client.newSubscription(channel, {
    getToken: async (ctx) => {
      subscriptionTokens += 1;
      return token({ sub: '42', channel: ctx.channel, exp: now() + lifetime });
    },
  });
  const seen = recorder(sub, ['subscribing', 'unsubscribed', 'publication']);
  sub.subscribe();
  await sub.ready(5000);

  await sleep((firstExp + grace + margin) * 1000 - Date.now());
  const state = { client: client.state, sub: sub.state };
  await api('publish', { channel, data: { n: 1 } });
  const publication = await nth(seen, 'publication', 1);
  return {
    connectionTokens,
    subscriptionTokens,
    state,
    connecting: only(clientSeen, 'connecting').length,
    disconnected: only(clientSeen, 'disconnected').length,
    subscribing: only(seen, 'subscribing').length,
    unsubscribed: only(seen, 'unsubscribed').length,
    publication: [publication.offset, unpayload(publication.data)],
  };
});
