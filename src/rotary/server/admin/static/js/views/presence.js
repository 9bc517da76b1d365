// Who is in a channel: presence_stats and presence (for namespaces with presence on).
import { card, field, form, h, input, json, notice, table } from '../dom.js';

export function presenceView({ api, params }) {
  const channel = params.get('channel') ?? '';
  const show = form('presence', [field('Channel', input('channel', { required: true, value: channel }))],
    'Show presence', async (values) => {
      const [stats, presence] = await Promise.all([
        api.call('presence_stats', { channel: values.channel }),
        api.call('presence', { channel: values.channel }),
      ]);
      const rows = Object.values(presence.presence ?? {}).map((c) => [c.user || '(anonymous)', c.client, json(c.conn_info), json(c.chan_info)]);
      return [
        h('div', { class: 'stats small' },
          h('div', { class: 'stat', 'data-stat': 'presence-clients' }, h('span', { class: 'value' }, stats.num_clients ?? 0), h('span', { class: 'label' }, 'Clients')),
          h('div', { class: 'stat', 'data-stat': 'presence-users' }, h('span', { class: 'value' }, stats.num_users ?? 0), h('span', { class: 'label' }, 'Users'))),
        table(['User', 'Client', 'Connection info', 'Channel info'], rows, 'Nobody is in this channel.'),
      ];
    });
  if (channel) queueMicrotask(() => show.querySelector('form').requestSubmit());
  return { element: h('div', { class: 'view' }, card('Presence',
    notice('muted', 'Presence works in channels whose namespace has presence enabled.'), show)) };
}
