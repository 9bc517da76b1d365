// The token's `channels` claim subscribes the connection server-side; the SDK reports it on the client.
import { api, newClient, next, run, token, uniqueChannel, unpayload } from './sdk.mjs';

run(async () => {
  const channel = uniqueChannel();
  const client = newClient({ token: token({ sub: '42', channels: [channel] }) });
  const subscribed = next(client, 'subscribed');
  client.connect();
  const subscribedCtx = await subscribed;
  const publication = next(client, 'publication');
  await api('publish', { channel, data: { server: 'side' } });
  const ctx = await publication;
  return { subscribedTo: subscribedCtx.channel, expected: channel, publishedTo: ctx.channel, data: unpayload(ctx.data) };
});
