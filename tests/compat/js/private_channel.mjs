// A private ($) channel: denied (103) without a token, subscribed with one from getToken.
import { api, connected, next, run, subscribed, token, uniqueChannel, unpayload } from './sdk.mjs';

run(async () => {
  const client = await connected({ sub: '42' });
  const channel = `$${uniqueChannel()}`;

  const denied = client.newSubscription(`${channel}-no-token`);
  const unsubscribed = next(denied, 'unsubscribed');
  denied.subscribe();
  const deniedCtx = await unsubscribed;

  const asked = [];
  const sub = await subscribed(client, channel, {
    getToken: async (ctx) => {
      asked.push(ctx.channel);
      return token({ sub: '42', channel: ctx.channel });
    },
  });
  const publication = next(sub, 'publication');
  await api('publish', { channel, data: { secret: true } });
  const ctx = await publication;
  return { deniedCode: deniedCtx.code, asked, expected: channel, data: unpayload(ctx.data) };
});
