// A few DOM builders. Text always goes in as text nodes, never as HTML, so channel names, user
// IDs and publication data from the server cannot inject markup.

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else if (key === 'class') element.className = value;
    else if (key === 'value' || key === 'checked') element[key] = value;
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  element.append(...nodes(children));
  return element;
}

function nodes(children) {
  return children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
}

export function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'label' }, label), input,
    hint ? h('span', { class: 'hint' }, hint) : null);
}

export function input(name, props = {}) {
  return h('input', { name, autocomplete: 'off', spellcheck: 'false', ...props });
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

export function notice(kind, ...children) {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
}

export function table(columns, rows, empty = 'Nothing to show.') {
  if (!rows.length) return notice('muted', empty);
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((row) => h('tr', {}, row.map((cell, i) => h('td', { 'data-label': columns[i] }, cell)))))));
}

export function json(value) {
  if (value === undefined || value === null || value === '') return h('span', { class: 'muted' }, '—');
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

// A form whose submit runs `action(values)` and shows what it returns (nodes) or throws.
export function form(name, fields, submit, action, props = {}) {
  const output = h('div', { class: 'output', 'data-output': name });
  const button = h('button', { type: 'submit', class: props.danger ? 'danger' : 'primary' }, submit);
  const element = h('form', {
    class: 'form', 'data-form': name,
    onsubmit: async (event) => {
      event.preventDefault();
      if (props.confirm && !window.confirm(props.confirm(values(element)))) return;
      button.disabled = true;
      output.replaceChildren(notice('muted', 'Working…'));
      try {
        output.replaceChildren(...nodes([await action(values(element))]));
      } catch (error) {
        output.replaceChildren(notice('error', error.message));
      } finally {
        button.disabled = false;
      }
    },
  }, fields, h('div', { class: 'actions' }, button));
  return h('div', {}, element, output);
}

function values(formElement) {
  const data = {};
  for (const element of formElement.elements) {
    if (!element.name) continue;
    data[element.name] = element.type === 'checkbox' ? element.checked : element.value.trim();
  }
  return data;
}

export function formatUptime(seconds) {
  const units = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts = [];
  let rest = seconds;
  for (const [unit, size] of units) {
    if (rest >= size || (unit === 's' && !parts.length)) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}
