import { api } from './api.js';
import { h, table, badge, errorBox } from './dom.js';

const ruleActions = { 1: 'alert', 2: 'block', 3: 'allow' };

function scopes(clusters) {
  return (clusters || []).map((c) => h('div', {}, h('b', {}, c.ClusterId || '*'), ': ',
    (c.Namespaces || c.NamespaceList || []).length ? (c.Namespaces || c.NamespaceList).join(', ') : 'every namespace'));
}

function status(s) {
  return h('span', { class: 'status ' + String(s || 'enabled').toLowerCase() }, s || 'enabled');
}

function section(id, title, denied, body) {
  return h('section', { class: 'card', id }, h('h3', {}, title), denied ? errorBox(new Error(denied)) : body);
}

export async function policies(main) {
  main.replaceChildren(h('h2', {}, 'Policies'), h('p', { class: 'muted' }, 'Loading…'));
  const p = await api('GET', 'policies');
  const d = p.denied || {};
  main.replaceChildren(h('h2', {}, 'Policies'),
    section('attestors', 'Attestors', d.attestors, table(['name', 'description', 'keys', 'keyless', 'transparency log'], p.attestors.map((a) =>
      h('tr', {}, h('td', {}, a.Name), h('td', {}, a.Description || ''), h('td', { class: 'num' }, (a.PublicKeys || []).length),
        h('td', {}, a.Keyless ? (a.Keyless.Identities || []).map((i) => (i.Issuer || '') + ' ' + (i.Subject || i.SubjectRegExp || '')).join('; ') || 'yes' : ''),
        h('td', {}, a.TransparencyLog || ''))), 'No attestors.')),
    section('bsps', 'BinarySecurityPolicies', d.policies, table(['name', 'status', 'mode', 'required attestors', 'images', 'governs'], p.policies.map((b) =>
      h('tr', {}, h('td', {}, b.Name || ''), h('td', {}, status(b.Status)), h('td', {}, (b.Mode || 'enforce') + ' / ' + ((b.Policy || {}).PolicyMode || '')),
        h('td', {}, ((b.Policy || {}).RequiredAttestors || []).join(', ')), h('td', {}, (b.Images || []).join(', ') || 'every image'), h('td', {}, scopes(b.Clusters)))),
    'No BinarySecurityPolicies.')),
    section('strategies', 'OpaStrategies', d.strategies, table(['id', 'name', 'action', 'images', 'cluster', 'governs'], p.strategies.map((s) =>
      h('tr', {}, h('td', { class: 'num' }, s.StrategyId), h('td', {}, s.StrategyName), h('td', {}, badge(ruleActions[s.RuleAction] || String(s.RuleAction))),
        h('td', {}, (s.ImageName || []).join(', ')), h('td', {}, s.ClusterId || ''),
        h('td', {}, (s.Scopes || []).length ? (s.Scopes || []).map((c) => h('div', {}, h('b', {}, c.ClusterId || '*'), ': ', c.AllNamespace === 1 || !(c.NamespaceList || []).length ? 'every namespace' : c.NamespaceList.join(', '))) : scopes([{ ClusterId: s.ClusterId }])))),
    'No OpaStrategies.')));
}
