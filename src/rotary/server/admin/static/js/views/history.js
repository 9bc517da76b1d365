// A channel's history (newest first by default), and its removal.
import { card, field, form, h, input, json, notice, table } from '../dom.js';

function publications(result) {
  const rows = (result.publications ?? []).map((p) => [
    String(p.offset ?? ''),
    json(p.data),
    p.info ? `${p.info.user || '(anonymous)'} · ${p.info.client}` : h('span', { class: 'muted' }, 'API'),
    p.tags ? json(p.tags) : '',
  ]);
  return [
    h('p', { class: 'muted' }, `Stream top offset ${result.offset ?? 0}, epoch ${result.epoch || '—'}.`),
    table(['Offset', 'Data', 'From', 'Tags'], rows, 'No publications in history.'),
  ];
}

export function historyView({ api, params }) {
  const channel = params.get('channel') ?? '';
  const show = form('history', [
    field('Channel', input('channel', { required: true, value: channel })),
    h('div', { class: 'row' },
      field('Limit', input('limit', { type: 'number', min: 0, value: '20' })),
      h('label', { class: 'check' }, input('reverse', { type: 'checkbox', checked: true }), ' Newest first')),
  ], 'Show history', async (values) => publications(await api.call('history', {
    channel: values.channel, limit: Number(values.limit || 0), reverse: values.reverse,
  })));
  const remove = form('history_remove', [field('Channel', input('channel', { required: true, value: channel }))],
    'Remove history', async (values) => {
      await api.call('history_remove', { channel: values.channel });
      return notice('ok', `History of ${values.channel} removed.`);
    }, { danger: true, confirm: (values) => `Remove the whole history of ${values.channel}?` });
  const view = h('div', { class: 'view' }, card('History', show), card('Remove history', remove));
  if (channel) queueMicrotask(() => show.querySelector('form').requestSubmit());
  return { element: view };
}
