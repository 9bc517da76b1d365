// publish and broadcast, with the data written as JSON.
import { card, field, form, h, input, notice } from '../dom.js';

function checkedJson(text) {
  try {
    JSON.parse(text);
  } catch (error) {
    throw new Error(`Data is not valid JSON: ${error.message}`);
  }
  return text;
}

function dataField() {
  return field('Data (JSON)', h('textarea', { name: 'data', rows: 5, spellcheck: 'false', required: true, value: '{"text": "hello"}' }));
}

function splitChannels(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

export function publishView({ api, params }) {
  const publish = form('publish', [
    field('Channel', input('channel', { required: true, value: params.get('channel') ?? '' })),
    dataField(),
    h('label', { class: 'check' }, input('skip_history', { type: 'checkbox' }), ' Skip history'),
  ], 'Publish', async (values) => {
    const data = checkedJson(values.data);
    const result = await api.call('publish', { channel: values.channel, skip_history: values.skip_history }, { data });
    return notice('ok', 'Published', result.offset ? ` at offset ${result.offset}` : '',
      result.epoch ? ` (epoch ${result.epoch})` : '', '.');
  });
  const broadcast = form('broadcast', [
    field('Channels', h('textarea', { name: 'channels', rows: 2, spellcheck: 'false', required: true }), 'Separated by spaces, commas or new lines.'),
    dataField(),
  ], 'Broadcast', async (values) => {
    const channels = splitChannels(values.channels);
    const data = checkedJson(values.data);
    const result = await api.call('broadcast', { channels }, { data });
    const failed = (result.responses ?? []).map((r, i) => [channels[i], r.error]).filter(([, e]) => e);
    if (!failed.length) return notice('ok', `Broadcast to ${channels.length} channel(s).`);
    return notice('error', `Failed in ${failed.length} of ${channels.length} channel(s): `,
      failed.map(([c, e]) => `${c}: ${e.message} (code ${e.code})`).join('; '));
  });
  return { element: h('div', { class: 'view grid' }, card('Publish', publish), card('Broadcast', broadcast)) };
}
