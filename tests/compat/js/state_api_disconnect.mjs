// The API's disconnect with a custom code and reason: 4501 (terminal) reaches the `disconnected`
// event, 4001 (reconnect) the `connecting` event.
import { api, newClient, next, run, token, uniqueChannel } from './sdk.mjs';

async function kicked(code, event) {
  const user = `kicked-${uniqueChannel().split(':')[1]}`;
  const client = newClient({ token: token({ sub: user }), minReconnectDelay: 2000, maxReconnectDelay: 5000 });
  const connected = next(client, 'connected');
  client.connect();
  await connected;
  const told = next(client, event);
  await api('disconnect', { user, disconnect: { code, reason: 'go away' } });
  const ctx = await told;
  return { code: ctx.code, reason: ctx.reason, state: client.state };
}

run(async () => {
  const [terminal, reconnect] = await Promise.all([kicked(4501, 'disconnected'), kicked(4001, 'connecting')]);
  return { terminal, reconnect };
});
