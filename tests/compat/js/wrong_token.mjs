// A token signed with another key: the server closes with 3500 and the SDK does not reconnect.
import { newClient, next, run, sleep, token } from './sdk.mjs';

run(async () => {
  const client = newClient({ token: token({ sub: '42' }, 'another-secret-that-is-also-long-enough-x') });
  let connecting = 0;
  client.on('connecting', () => { connecting += 1; });
  const disconnected = next(client, 'disconnected');
  client.connect();
  const ctx = await disconnected;
  await sleep(500);
  return { code: ctx.code, state: client.state, connecting };
});
