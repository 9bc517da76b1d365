// Server-side subscriptions, from the token's `channels` claim and from the API's subscribe: the
// client's `subscribed` event, then a publication of that channel.
import { api, newClient, next, run, token, uniqueChannel, unpayload } from './sdk.mjs';

async function observe(client, channel, subscribe) {
  const subscribed = next(client, 'subscribed');
  await subscribe();
  const subscribedCtx = await subscribed;
  const publication = next(client, 'publication');
  await api('publish', { channel, data: { n: 1 } });
  const ctx = await publication;
  return { subscribedTo: subscribedCtx.channel === channel, publishedTo: ctx.channel === channel, data: unpayload(ctx.data) };
}

run(async () => {
  const fromToken = uniqueChannel();
  const viaToken = newClient({ token: token({ sub: '42', channels: [fromToken] }) });
  const tokenSeen = await observe(viaToken, fromToken, async () => viaToken.connect());

  const fromApi = uniqueChannel();
  const user = `api-${fromApi.split(':')[1]}`;
  const viaApi = newClient({ token: token({ sub: user }) });
  const connected = next(viaApi, 'connected');
  viaApi.connect();
  await connected;
  const apiSeen = await observe(viaApi, fromApi, () => api('subscribe', { user, channel: fromApi }));
  return { token: tokenSeen, api: apiSeen };
});
