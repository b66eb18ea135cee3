import { api } from './api.js';
import { h, table, badge, errorBox } from './dom.js';

const example = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  template:
    spec:
      containers:
      - {name: web, image: registry.example.com/team/web:1.0}
`;

// The "what would happen" box: a pasted manifest decided by the check
// engine with the policies and facts in force (size-limited server side).
export async function checkBox(main) {
  const text = h('textarea', { id: 'manifest', rows: 14, spellcheck: 'false', placeholder: example });
  const out = h('div', { id: 'results' });
  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren(h('p', { class: 'muted' }, 'Deciding…'));
    try {
      const r = await api('POST', 'check', text.value, 'application/yaml');
      out.replaceChildren(...r.results.map(result));
    } catch (err) {
      if (err.status === 401) throw err;
      out.replaceChildren(errorBox(err));
    }
  } }, h('label', { for: 'manifest' }, 'Paste a manifest (YAML or JSON: Pods, Deployments, … or a List)'), text,
  h('button', { type: 'submit', id: 'decide' }, 'What would happen?'));
  main.replaceChildren(h('h2', {}, 'What would happen'), form, out);
}

function result(r) {
  return h('section', { class: 'card result ' + (r.allowed ? 'allowed' : 'denied') },
    h('h3', {}, r.allowed ? 'Admitted' : 'Denied', ': ', r.kind, ' ', r.namespace, '/', r.name),
    (r.violations || []).length ? h('ul', { class: 'violations' }, r.violations.map((v) => h('li', {}, v))) : null,
    (r.warnings || []).length ? h('ul', { class: 'warnings' }, r.warnings.map((v) => h('li', {}, v))) : null,
    table(['image', 'action', 'strategies', 'missing attestors', 'reasons', 'digest'], (r.images || []).map((i) =>
      h('tr', {}, h('td', {}, i.image), h('td', {}, badge(i.action)), h('td', {}, (i.strategies || []).join(', ')),
        h('td', {}, (i.missingAttestors || []).join(', ')), h('td', {}, (i.reasons || []).join('; ')), h('td', {}, i.digest || i.digestError || '')))));
}
