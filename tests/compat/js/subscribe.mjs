// Subscribe to a namespace channel that allows subscribing for any authenticated client.
import { connected, next, run, uniqueChannel } from './sdk.mjs';

run(async () => {
  const client = await connected({ sub: '42' });
  const channel = uniqueChannel();
  const sub = client.newSubscription(channel);
  const event = next(sub, 'subscribed');
  sub.subscribe();
  const ctx = await event;
  return { channel, subscribedTo: ctx.channel, recoverable: ctx.recoverable, positioned: ctx.positioned, state: sub.state };
});
