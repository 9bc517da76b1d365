// Tokens that cannot be renewed (getToken fails): the server closes the connection with 3005 and
// unsubscribes the subscription with 2501, each after its expiry plus the grace delay. `early` is
// how many seconds before that moment each ended (negative: after it).
import { newClient, next, now, run, token, uniqueChannel } from './sdk.mjs';
import { nth, recorder } from './state_events.mjs';

const lifetime = Number(process.env.ROTARY_TOKEN_LIFETIME);
const grace = Number(process.env.ROTARY_EXPIRY_GRACE);
// The server checks a subscription's expiry on the connection's presence tick (500 ms here) once
// the Unix second is past exp plus the grace delay, as Centrifugo does: up to 2.5 s after exp + grace.
const wait = (lifetime + grace + 2.5) * 1000;
const exp = now() + lifetime;
const early = () => exp + grace - Date.now() / 1000;

const backendDown = async () => {
  throw new Error('the application backend is down');
};

async function connectionExpires() {
  const client = newClient({ token: token({ sub: '42', exp }), getToken: backendDown });
  const seen = recorder(client, ['connecting']);
  const connected = next(client, 'connected');
  client.connect();
  await connected;
  const { code, reason } = await nth(seen, 'connecting', 2, wait);
  return { code, reason, early: early() };
}

async function subscriptionExpires() {
  const channel = `$${uniqueChannel()}`;
  const client = newClient({ token: token({ sub: '42' }) });
  const connected = next(client, 'connected');
  client.connect();
  await connected;
  let tokens = 0;
  const sub = client.newSubscription(channel, {
    getToken: async (ctx) => {
      tokens += 1;
      if (tokens > 1) {
        return backendDown();
      }
      return token({ sub: '42', channel: ctx.channel, exp });
    },
  });
  const seen = recorder(sub, ['subscribing']);
  sub.subscribe();
  await sub.ready(5000);
  const { code, reason } = await nth(seen, 'subscribing', 2, wait);
  return { code, reason, client: client.state, early: early() };
}

run(async () => {
  const [connection, subscription] = await Promise.all([connectionExpires(), subscriptionExpires()]);
  return { connection, subscription };
});
