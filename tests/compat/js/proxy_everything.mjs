// Without a token: the connect proxy authenticates (with an emulated header), the subscribe proxy
// grants a channel, the publish proxy rewrites a publication, the RPC proxy answers and refuses.
import { newClient, next, payload, run, unpayload } from './sdk.mjs';

run(async () => {
  const client = newClient({ headers: { 'X-Tenant': 'acme' }, data: payload({ hello: 'proxy' }) });
  const connecting = next(client, 'connected');
  client.connect();
  const connected = await connecting;
  const sub = client.newSubscription('px:js');
  const subscribing = next(sub, 'subscribed');
  sub.subscribe();
  const subscribed = await subscribing;
  const publication = next(sub, 'publication');
  await sub.publish(payload({ text: 'hi' }));
  const pub = await publication;
  const reply = await client.rpc('app:answer', payload({ q: 1 }));
  let refused;
  try {
    await client.rpc('app:fail', payload({}));
  } catch (error) {
    refused = { code: error.code, message: error.message };
  }
  return {
    connectData: unpayload(connected.data),
    subscribeData: unpayload(subscribed.data),
    published: unpayload(pub.data),
    user: pub.info.user,
    rpc: unpayload(reply.data),
    refused,
  };
});
