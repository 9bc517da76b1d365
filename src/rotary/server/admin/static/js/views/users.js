// A user's connections (as far as OSS presence can tell), and disconnect, subscribe, unsubscribe.
import { card, field, form, h, input, json, notice, table } from '../dom.js';

const SCAN_LIMIT = 200;

// Centrifugo OSS has no connections API; presence lists the connections of channels with
// presence on, so the UI scans the active channels' presence for the user.
async function connectionsOf(api, user) {
  const channels = Object.keys((await api.call('channels')).channels ?? {}).sort().slice(0, SCAN_LIMIT);
  const found = new Map();
  const results = await Promise.allSettled(channels.map((channel) => api.call('presence', { channel })));
  results.forEach((outcome, i) => {
    if (outcome.status !== 'fulfilled') return;
    for (const client of Object.values(outcome.value.presence ?? {})) {
      if (client.user !== user) continue;
      const entry = found.get(client.client) ?? { info: client.conn_info, channels: [] };
      entry.channels.push(channels[i]);
      found.set(client.client, entry);
    }
  });
  return { scanned: channels.length, found };
}

export function usersView({ api, params }) {
  const user = params.get('user') ?? '';
  const connections = form('connections', [field('User ID', input('user', { required: true, value: user }))],
    'Find connections', async (values) => {
      const { scanned, found } = await connectionsOf(api, values.user);
      const rows = [...found.entries()].map(([client, entry]) => [client, entry.channels.join(', '), json(entry.info)]);
      return [h('p', { class: 'muted' }, `Scanned the presence of ${scanned} active channel(s).`),
        table(['Client', 'Channels', 'Connection info'], rows, 'No connection of this user found in channels with presence.')];
    });
  const disconnect = form('disconnect', [
    field('User ID', input('user', { required: true, value: user })),
    field('Client ID', input('client'), 'Optional: only this connection.'),
    h('div', { class: 'row' },
      field('Code', input('code', { type: 'number', min: 3000, max: 4999, placeholder: '3000–4999' })),
      field('Reason', input('reason', { maxlength: 123 }))),
  ], 'Disconnect', async (values) => {
    const params = { user: values.user };
    if (values.client) params.client = values.client;
    if (values.code) params.disconnect = { code: Number(values.code), reason: values.reason };
    await api.call('disconnect', params);
    return notice('ok', `Disconnected ${values.client || 'every connection of'} ${values.user}.`);
  }, { danger: true });
  const subscription = (method, label) => form(method, [
    field('User ID', input('user', { required: true, value: user })),
    field('Channel', input('channel', { required: true })),
    field('Client ID', input('client'), 'Optional: only this connection.'),
  ], label, async (values) => {
    const params = { user: values.user, channel: values.channel };
    if (values.client) params.client = values.client;
    await api.call(method, params);
    return notice('ok', `${label}d ${values.user} ${method === 'subscribe' ? 'to' : 'from'} ${values.channel}.`);
  });
  return {
    element: h('div', { class: 'view grid' },
      card('Connections', notice('muted', 'Centrifugo OSS, which rotary follows, has no connections API (it is a PRO feature). ',
        'This search lists the connections presence can see: those subscribed to active channels whose namespace has presence on.'), connections),
      card('Disconnect', disconnect),
      card('Unsubscribe', subscription('unsubscribe', 'Unsubscribe')),
      card('Subscribe', subscription('subscribe', 'Subscribe'))),
  };
}
