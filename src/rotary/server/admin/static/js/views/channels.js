// Active channels (those with at least one subscriber), filtered by a pattern.
import { card, field, form, h, input, table } from '../dom.js';

export function channelsView({ api, go }) {
  const link = (view, channel, label) => h('a', {
    href: `#/${view}?channel=${encodeURIComponent(channel)}`,
    onclick: (event) => { event.preventDefault(); go(view, { channel }); },
  }, label);
  const list = form('channels', [field('Pattern', input('pattern', { placeholder: 'e.g. chat:*' }), 'Empty for every channel; * matches any run of characters.')],
    'List channels', async (values) => {
      const result = await api.call('channels', values.pattern ? { pattern: values.pattern } : {});
      const rows = Object.entries(result.channels ?? {}).sort(([a], [b]) => a.localeCompare(b))
        .map(([name, info]) => [name, String(info.num_clients ?? 0),
          h('span', { class: 'links' }, link('history', name, 'History'), link('presence', name, 'Presence'), link('publish', name, 'Publish'))]);
      return [h('p', { class: 'muted' }, `${rows.length} channel(s).`), table(['Channel', 'Clients', ''], rows, 'No active channels.')];
    });
  queueMicrotask(() => list.querySelector('form').requestSubmit());
  return { element: h('div', { class: 'view' }, card('Channels', list)) };
}
