import uPlot from 'uplot';
import { api, query } from './api.js';
import { h, table, errorBox } from './dom.js';

const windows = { '6h': '1h', '24h': '1h', '7d': '1h', '30d': '6h' };
const colors = { block: '#c0392b', alert: '#e67e22', allow: '#27ae60', unsigned: '#8e44ad', error: '#7f8c8d' };
const palette = ['#2c7be5', '#e63757', '#00d97e', '#f6c343', '#6e84a3', '#39afd1', '#a66efa', '#fd7e14', '#20c997', '#6c757d', '#343a40'];

function select(id, value, options, onchange) {
  return h('select', { id, onchange }, options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

export async function overview(main, ctx) {
  const p = ctx.route.params;
  const win = windows[p.get('window')] ? p.get('window') : '24h';
  const by = p.get('by') || 'action';
  const action = p.get('action') || (by === 'action' ? '' : 'block');
  const set = (k, v) => { const q = new URLSearchParams(p); q.set(k, v); if (k === 'by' && v === 'action') q.delete('action'); ctx.go('overview', q); };
  const controls = h('div', { class: 'controls' },
    h('label', {}, 'Window ', select('window', win, Object.keys(windows).map((w) => [w, 'last ' + w]), (e) => set('window', e.target.value))),
    h('label', {}, 'By ', select('by', by, [['action', 'action'], ['cluster', 'cluster'], ['namespace', 'namespace'], ['strategy', 'strategy']], (e) => set('by', e.target.value))),
    by === 'action' ? null : h('label', {}, 'Action ', select('action', action, ['block', 'alert', 'allow', 'unsigned', 'error'].map((a) => [a, a]), (e) => set('action', e.target.value))));
  main.replaceChildren(h('h2', {}, 'Overview'), controls, h('p', { class: 'muted' }, 'Loading…'));
  let st;
  try {
    st = await api('GET', 'stats' + query({ since: win, step: windows[win], by, action: by === 'action' ? '' : action }));
  } catch (err) {
    if (err.status === 401) throw err;
    main.replaceChildren(h('h2', {}, 'Overview'), controls, errorBox(err));
    return;
  }
  const totals = h('div', { class: 'totals' }, ['block', 'alert', 'allow', 'unsigned', 'error'].map((a) =>
    h('a', { class: 'total ' + a, href: '#/events?action=' + a + '&since=' + win }, h('span', { class: 'n' }, String(st.totals[a] || 0)), h('span', {}, a))));
  const chart = h('div', { id: 'chart', class: 'chart' });
  const top = (title, rows, param) => h('section', { class: 'card' }, h('h3', {}, title),
    table([param, 'blocked events'], rows.map((c) => h('tr', {}, h('td', {}, h('a', { href: '#/events?action=block&since=' + win + '&' + param + '=' + encodeURIComponent(c.name) }, c.name)), h('td', { class: 'num' }, c.count))), 'No blocked events in this window.'));
  const counters = Object.entries(st.counters || {}).sort();
  main.replaceChildren(h('h2', {}, 'Overview'), controls, totals, h('section', { class: 'card' },
    h('h3', {}, by === 'action' ? 'Events by action' : 'Events with action ' + action + ' by ' + by), chart),
  h('div', { class: 'grid' }, top('Top blocked images', st.topBlockedImages, 'image'), top('Top blocked namespaces', st.topBlockedNamespaces, 'namespace')),
  h('section', { class: 'card' }, h('h3', {}, 'Audit pipeline'),
    table(['counter', 'value'], counters.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', { class: 'num', 'data-counter': k }, v))), 'No counters.')));
  draw(chart, st, by);
}

function draw(el, st, by) {
  const xs = [];
  for (let i = 0; i < st.buckets; i++) xs.push(Date.parse(st.start) / 1000 + i * st.stepSeconds);
  if (!st.series.length) {
    el.replaceChildren(h('p', { class: 'muted' }, 'No events in this window.'));
    return;
  }
  const series = [{}].concat(st.series.map((s, i) => ({ label: s.name || '(none)', stroke: (by === 'action' && colors[s.name]) || palette[i % palette.length], width: 2 })));
  const width = Math.max(320, el.clientWidth || 800);
  // eslint-disable-next-line no-new
  new uPlot({ width, height: 260, series, axes: [{}, { size: 50 }], legend: { live: false } }, [xs].concat(st.series.map((s) => s.counts)), el);
}

