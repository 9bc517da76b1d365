// presence and presence_stats of a channel with two subscribers.
import { connected, run, subscribed, uniqueChannel } from './sdk.mjs';

run(async () => {
  const channel = uniqueChannel();
  const ann = await connected({ sub: 'ann' });
  const bob = await connected({ sub: 'bob' });
  const sub = await subscribed(ann, channel);
  await subscribed(bob, channel);
  const presence = await sub.presence();
  const stats = await sub.presenceStats();
  const users = Object.values(presence.clients).map((info) => info.user).sort();
  const keyedByClient = Object.entries(presence.clients).every(([id, info]) => id === info.client);
  return { users, keyedByClient, numClients: stats.numClients, numUsers: stats.numUsers };
});
