import { api, query } from './api.js';
import { h, table, fmtTime, badge, errorBox } from './dom.js';

// Every filter the audit store supports, as the URL carries them.
const filters = ['type', 'cluster', 'namespace', 'action', 'image', 'principal', 'since', 'until', 'limit'];
const actions = ['block', 'alert', 'allow', 'unsigned', 'error'];
const tailEvery = 5000; // ms between live tail polls
const tailKeep = 500; // rows the live tail keeps

function filterForm(p, ctx) {
  const input = (name, placeholder) => h('input', { id: 'f-' + name, name, value: p.get(name) || '', placeholder });
  const checked = p.getAll('action');
  const form = h('form', { id: 'filters', class: 'controls', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const name of filters) {
      if (name === 'action') continue;
      const v = form.elements[name].value.trim();
      if (v) q.set(name, v);
    }
    for (const a of actions) if (form.elements['a-' + a].checked) q.append('action', a);
    ctx.go('events', q);
  } },
  h('label', {}, 'Type ', h('select', { id: 'f-type', name: 'type' }, ['', 'admission', 'api'].map((t) => h('option', { value: t, selected: (p.get('type') || '') === t }, t || 'any')))),
  h('label', {}, 'Cluster ', input('cluster', 'prod')),
  h('label', {}, 'Namespace ', input('namespace', 'team-a')),
  h('label', {}, 'Image ', input('image', 'registry.example.com/team/*')),
  h('label', {}, 'Principal ', input('principal', 'API caller')),
  h('label', {}, 'Since ', input('since', '24h or RFC 3339')),
  h('label', {}, 'Until ', input('until', 'RFC 3339')),
  h('label', {}, 'Limit ', input('limit', '100')),
  h('span', { class: 'actions' }, actions.map((a) => h('label', {}, h('input', { type: 'checkbox', name: 'a-' + a, id: 'a-' + a, checked: checked.includes(a) }), a))),
  h('button', { type: 'submit', id: 'apply' }, 'Apply'));
  return form;
}

function row(ev) {
  const images = (ev.images || []).map((i) => i.image);
  const what = ev.type === 'api' && ev.api ? ev.api.action + ' ' + (ev.api.resource || '') : ev.kind + ' ' + ev.namespace + '/' + ev.name;
  const who = ev.type === 'api' && ev.api ? ev.api.principal : (ev.user && ev.user.username) || '';
  return h('tr', { 'data-id': ev.id }, h('td', { class: 'nowrap' }, h('a', { href: '#/event/' + ev.id }, fmtTime(ev.time))),
    h('td', {}, ev.clusterId || ''), h('td', {}, what), h('td', {}, who), h('td', {}, ev.decision),
    h('td', {}, (ev.actions || []).map(badge)), h('td', { class: 'images' }, images.join(', ')));
}

export async function events(main, ctx) {
  const p = ctx.route.params;
  const form = filterForm(p, ctx);
  const tail = h('input', { type: 'checkbox', id: 'tail', checked: p.get('tail') === '1' });
  const list = h('div', { id: 'list' }, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(h('h2', {}, 'Events'), form, h('label', { class: 'tail' }, tail, ' live tail (newest page, every ' + tailEvery / 1000 + ' s)'), list);
  const params = {};
  for (const name of filters) params[name] = name === 'action' ? p.getAll('action') : p.get(name);
  let page;
  try {
    page = await api('GET', 'events' + query({ ...params, pageToken: p.get('pageToken') }));
  } catch (err) {
    if (err.status === 401) throw err;
    list.replaceChildren(errorBox(err));
    return;
  }
  const tbody = h('tbody', {}, page.events.map(row));
  const nav = h('p', { class: 'pager' },
    p.get('pageToken') ? h('a', { href: '#/events' + query({ ...params }), id: 'first' }, '« Newest') : null, ' ',
    page.nextPageToken ? h('a', { id: 'next', href: '#/events' + query({ ...params, pageToken: page.nextPageToken }) }, 'Older »') : null);
  list.replaceChildren(page.events.length
    ? h('table', { id: 'events' }, h('thead', {}, h('tr', {}, ['time', 'cluster', 'what', 'who', 'decision', 'actions', 'images'].map((x) => h('th', {}, x)))), tbody)
    : h('p', { class: 'muted', id: 'none' }, 'No events match.'), nav);
  tail.addEventListener('change', () => {
    const q = new URLSearchParams(p);
    q.delete('pageToken');
    if (tail.checked) q.set('tail', '1');
    else q.delete('tail');
    ctx.go('events', q);
  });
  if (!tail.checked || p.get('pageToken')) return;
  // Live tail: poll the newest page and add what is new on top, keeping at
  // most tailKeep rows; stops when the view changes.
  let newest = page.events.length ? page.events[0].id : '';
  const timer = setInterval(async () => {
    try {
      const next = await api('GET', 'events' + query({ ...params, limit: 100 }));
      const fresh = next.events.filter((ev) => ev.id > newest);
      if (!fresh.length) return;
      newest = fresh[0].id;
      if (!tbody.isConnected) list.replaceChildren(h('table', { id: 'events' }, tbody));
      tbody.prepend(...fresh.map(row));
      while (tbody.children.length > tailKeep) tbody.lastChild.remove();
    } catch (err) {
      if (err.status === 401) {
        clearInterval(timer);
        ctx.signedOut();
      }
    }
  }, tailEvery);
  ctx.onCleanup(() => clearInterval(timer));
}

function field(label, value) {
  return value === undefined || value === null || value === '' ? null : h('tr', {}, h('th', {}, label), h('td', {}, value));
}

export async function eventDetail(main, ctx) {
  const id = ctx.route.arg;
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  let ev;
  try {
    ev = await api('GET', 'events/' + encodeURIComponent(id));
  } catch (err) {
    if (err.status === 401) throw err;
    main.replaceChildren(h('h2', {}, 'Event'), errorBox(err));
    return;
  }
  const user = ev.user || {};
  const parts = [h('h2', {}, 'Event ', h('code', {}, ev.id)),
    h('table', { class: 'fields', id: 'event' },
      field('time', fmtTime(ev.time)), field('type', ev.type), field('cluster', ev.clusterId),
      field('workload', ev.kind ? ev.kind + ' ' + ev.namespace + '/' + ev.name : ''), field('operation', ev.operation + (ev.dryRun ? ' (dry run)' : '')),
      field('user', user.username), field('groups', (user.groups || []).join(', ')),
      field('authenticated', ev.authenticated === undefined ? '' : String(ev.authenticated) + (ev.client ? ' (' + ev.client + ')' : '')),
      field('decision', ev.decision), field('actions', (ev.actions || []).map(badge)), field('error', ev.error),
      field('violations', (ev.violations || []).join('; ')), field('warnings', (ev.warnings || []).join('; ')),
      ev.count ? field('count', ev.count + ' calls until ' + fmtTime(ev.until)) : null)];
  if (ev.api) {
    parts.push(h('h3', {}, 'API call'), h('table', { class: 'fields' }, Object.entries(ev.api).map(([k, v]) => field(k, Array.isArray(v) ? v.join(', ') : String(v)))));
  }
  for (const img of ev.images || []) {
    parts.push(h('section', { class: 'card image' }, h('h3', {}, badge(img.action), ' ', h('span', { class: 'ref' }, img.image)),
      h('table', { class: 'fields' }, field('digest', img.digest ? h('code', {}, img.digest) : 'unknown'), field('reasons', (img.reasons || []).join('; '))),
      img.strategies ? h('div', {}, h('h4', {}, 'Strategies hit'), table(['id', 'name', 'action'], img.strategies.map((s) => h('tr', {}, h('td', {}, s.id), h('td', {}, s.name), h('td', {}, badge(s.action)))))) : null,
      img.missingAttestors ? h('div', {}, h('h4', {}, 'Missing attestors'), table(['attestor', 'why'], img.missingAttestors.map((m) => h('tr', {}, h('td', {}, m.attestor), h('td', {}, m.reason))))) : null,
      img.findings ? h('div', {}, h('h4', {}, 'Findings'), table(['category', 'id', 'level'], img.findings.map((f) => h('tr', {}, h('td', {}, f.category), h('td', {}, f.id), h('td', {}, f.level))))) : null));
  }
  if (ev.namespace) parts.push(h('p', {}, h('a', { href: '#/events?namespace=' + encodeURIComponent(ev.namespace) }, 'Events in ' + ev.namespace)));
  main.replaceChildren(...parts);
}
