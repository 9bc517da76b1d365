// An expired connection token: the server answers 109 and the SDK gets a new token from getToken.
import { newClient, next, now, run, token } from './sdk.mjs';

run(async () => {
  let refreshed = 0;
  const client = newClient({
    token: token({ sub: '42', exp: now() - 10 }),
    getToken: async () => {
      refreshed += 1;
      return token({ sub: '42', exp: now() + 3600 });
    },
  });
  const errors = [];
  client.on('error', (ctx) => errors.push({ type: ctx.type, code: ctx.error.code }));
  const connected = next(client, 'connected');
  client.connect();
  await connected;
  return { errors, refreshed, state: client.state };
});
