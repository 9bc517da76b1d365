// rotary's admin UI: login, then one view per task, chosen by the URL hash (#/status, ...).
import * as api from './api.js';
import { card, h, notice } from './dom.js';
import { channelsView } from './views/channels.js';
import { historyView } from './views/history.js';
import { presenceView } from './views/presence.js';
import { publishView } from './views/publish.js';
import { statusView } from './views/status.js';
import { usersView } from './views/users.js';

const VIEWS = {
  status: ['Status', statusView],
  publish: ['Publish', publishView],
  channels: ['Channels', channelsView],
  presence: ['Presence', presenceView],
  history: ['History', historyView],
  users: ['Users', usersView],
};

const root = document.getElementById('app');
let current = null;
let settings = { insecure: false };

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  return { name: path in VIEWS ? path : 'status', params: new URLSearchParams(query ?? '') };
}

function go(name, params = {}) {
  const query = new URLSearchParams(params).toString();
  location.hash = `#/${name}${query ? `?${query}` : ''}`;
}

// A 401 anywhere (an expired token, another secret) sends the user back to the login form.
window.addEventListener('admin-unauthorized', () => showLogin('Your session has ended; log in again.'));

function stopView() {
  current?.stop?.();
  current = null;
}

function showLogin(message) {
  stopView();
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true, autofocus: true });
  const output = h('div', { class: 'output' }, message ? notice('muted', message) : null);
  const button = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const loginForm = h('form', {
    class: 'form', 'data-form': 'login',
    onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        if (await api.login(password.value)) showShell();
        else output.replaceChildren(notice('error', 'Wrong password.'));
      } catch (error) {
        output.replaceChildren(notice('error', error.message));
      } finally {
        button.disabled = false;
      }
    },
  }, h('label', { class: 'field' }, h('span', { class: 'label' }, 'Password'), password), h('div', { class: 'actions' }, button));
  root.replaceChildren(h('main', { class: 'login' },
    h('div', { class: 'brand big' }, h('img', { src: 'icon.svg', alt: '' }), 'rotary'),
    card('Admin login', loginForm, output)));
  password.focus();
}

function showShell() {
  const nav = h('nav', { class: 'tabs', 'aria-label': 'Views' },
    Object.entries(VIEWS).map(([name, [label]]) => h('a', { href: `#/${name}`, 'data-view': name }, label)));
  const logout = settings.insecure
    ? h('span', { class: 'badge warn', title: 'admin.insecure is on: no login needed' }, 'insecure')
    : h('button', { type: 'button', class: 'link', onclick: () => { api.logout(); showLogin('Logged out.'); } }, 'Log out');
  const main = h('main', { class: 'content' });
  root.replaceChildren(
    h('header', { class: 'top' }, h('div', { class: 'brand' }, h('img', { src: 'icon.svg', alt: '' }), 'rotary', h('span', { class: 'muted' }, ' admin')), logout),
    nav, main);
  const render = () => {
    if (!main.isConnected) return;
    stopView();
    const { name, params } = route();
    for (const link of nav.querySelectorAll('a')) link.toggleAttribute('aria-current', link.dataset.view === name);
    const [label, view] = VIEWS[name];
    document.title = `${label} · rotary admin`;
    current = view({ api, params, go });
    main.replaceChildren(h('h1', { class: 'sr-only' }, label), current.element);
  };
  window.onhashchange = render;
  render();
}

async function start() {
  try {
    settings = await api.settings();
  } catch (error) {
    root.replaceChildren(h('main', { class: 'login' }, card('rotary admin', notice('error', `Cannot reach the server: ${error.message}`))));
    return;
  }
  if (settings.authenticated) showShell();
  else showLogin();
}

start();
