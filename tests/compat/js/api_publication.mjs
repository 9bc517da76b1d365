// A publication sent through the server HTTP API reaches a subscriber.
import { api, connected, next, run, subscribed, uniqueChannel, unpayload } from './sdk.mjs';

run(async () => {
  const client = await connected({ sub: '42' });
  const channel = uniqueChannel();
  const sub = await subscribed(client, channel);
  const publication = next(sub, 'publication');
  await api('publish', { channel, data: { text: 'from the API' } });
  const ctx = await publication;
  return { data: unpayload(ctx.data), offset: ctx.offset, channel: ctx.channel === channel };
});
