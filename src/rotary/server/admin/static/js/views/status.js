// Status of every node of the cluster from the `info` command, refreshed every few seconds.
import { card, formatUptime, h, notice } from '../dom.js';

const REFRESH_MS = 3000;
const STATS = [
  ['clients', 'num_clients', 'Clients'],
  ['users', 'num_users', 'Users'],
  ['subs', 'num_subs', 'Subscriptions'],
  ['channels', 'num_channels', 'Channels'],
];

function total(nodes, key) {
  return nodes.reduce((sum, node) => sum + (node[key] ?? 0), 0);
}

function stat(name, label, value) {
  return h('div', { class: 'stat', 'data-stat': name }, h('span', { class: 'value' }, value), h('span', { class: 'label' }, label));
}

function nodeCard(node) {
  return h('article', { class: 'node', 'data-node': node.name },
    h('header', {}, h('h3', {}, node.name), h('span', { class: 'badge' }, `v${node.version}`)),
    h('div', { class: 'stats small' }, STATS.map(([name, key, label]) => stat(name, label, node[key] ?? 0))),
    h('p', { class: 'muted' }, `Up ${formatUptime(node.uptime ?? 0)} · ${node.uid}`));
}

export function statusView({ api }) {
  const count = h('span', { class: 'badge', 'data-stat': 'nodes' });
  const totals = h('div', { class: 'stats', 'data-totals': '' });
  const nodes = h('div', { class: 'nodes' });
  const updated = h('p', { class: 'muted updated' }, 'Loading…');
  let timer;
  let stopped = false;

  async function refresh() {
    if (stopped) return;
    if (document.hidden) { // a background tab asks nothing; it refreshes once shown again
      document.addEventListener('visibilitychange', refresh, { once: true });
      return;
    }
    try {
      const result = await api.call('info');
      const list = (result.nodes ?? []).sort((a, b) => a.name.localeCompare(b.name));
      count.replaceChildren(h('span', { class: 'value' }, list.length), list.length === 1 ? ' node' : ' nodes');
      totals.replaceChildren(...STATS.map(([name, key, label]) => stat(name, label, total(list, key))));
      nodes.replaceChildren(...list.map(nodeCard));
      updated.replaceChildren(`Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`);
    } catch (error) {
      if (error instanceof api.Unauthorized) return;
      updated.replaceChildren(notice('error', `Cannot refresh: ${error.message}`));
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  refresh();
  const element = h('div', { class: 'view' },
    card(['Cluster', count], totals, updated),
    h('h2', { class: 'section-title' }, 'Nodes'), nodes);
  return { element, stop: () => { stopped = true; clearTimeout(timer); } };
}
