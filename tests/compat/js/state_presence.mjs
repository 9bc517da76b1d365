// presence and presence_stats of two users; join and leave seen by a subscriber that asked for them.
import { newClient, next, run, token, uniqueChannel } from './sdk.mjs';
import { nth, only, recorder } from './state_events.mjs';

// A connected client of `user` and its client ID.
async function connectedAs(user) {
  const client = newClient({ token: token({ sub: user }) });
  const connected = next(client, 'connected');
  client.connect();
  return [client, (await connected).client];
}

run(async () => {
  const channel = uniqueChannel();
  const [ann, annId] = await connectedAs('ann');
  const [bob, bobId] = await connectedAs('bob');
  const annSub = ann.newSubscription(channel, { joinLeave: true });
  const seen = recorder(annSub, ['join', 'leave']);
  annSub.subscribe();
  await annSub.ready(5000);
  const bobSub = bob.newSubscription(channel);
  bobSub.subscribe();
  await bobSub.ready(5000);
  await nth(seen, 'join', 2);
  const presence = await annSub.presence();
  const stats = await annSub.presenceStats();

  bobSub.unsubscribe();
  await nth(seen, 'leave', 1);
  const statsAfter = await annSub.presenceStats();
  const who = (ctx) => [ctx.info.user, ctx.info.client];
  return {
    ids: { ann: annId, bob: bobId },
    joins: only(seen, 'join').map(who),
    leaves: only(seen, 'leave').map(who),
    presence: Object.fromEntries(Object.entries(presence.clients).map(([id, info]) => [id, info.user])),
    stats: [stats.numClients, stats.numUsers],
    statsAfter: [statsAfter.numClients, statsAfter.numUsers],
  };
});
