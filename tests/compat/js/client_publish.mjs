// A publication one client sends reaches another subscriber, with the publisher's info.
import { connected, newClient, next, payload, run, subscribed, token, uniqueChannel, unpayload } from './sdk.mjs';

run(async () => {
  const channel = uniqueChannel();
  const reader = await connected({ sub: 'reader' });
  const writer = newClient({ token: token({ sub: 'writer' }) });
  const writerConnected = next(writer, 'connected');
  writer.connect();
  const writerId = (await writerConnected).client;
  const readerSub = await subscribed(reader, channel);
  const writerSub = await subscribed(writer, channel);
  const publication = next(readerSub, 'publication');
  await writerSub.publish(payload({ text: 'hi' }));
  const ctx = await publication;
  return { data: unpayload(ctx.data), user: ctx.info.user, fromWriter: ctx.info.client === writerId };
});
