import { api, setCSRF } from './api.js';
import { h, errorBox } from './dom.js';
import { overview } from './overview.js';
import { events, eventDetail } from './events.js';
import { policies } from './policies.js';
import { checkBox } from './check.js';

// The whole view state is in the URL's hash (#/events?namespace=x), so
// every view can be shared as a link and survives a reload.
const views = {
  overview: { title: 'Overview', render: overview },
  events: { title: 'Events', render: events },
  event: { title: 'Event', render: eventDetail, hidden: true },
  policies: { title: 'Policies', render: policies },
  check: { title: 'What would happen', render: checkBox },
};

const app = document.getElementById('app');
let login = null;
let cleanup = null;

export function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, qs] = hash.split('?');
  const [name, arg] = path.split('/');
  return { name: views[name] ? name : 'overview', arg: arg ? decodeURIComponent(arg) : '', params: new URLSearchParams(qs || '') };
}

export function go(name, params, arg) {
  const qs = params ? params.toString() : '';
  const next = '#/' + name + (arg ? '/' + encodeURIComponent(arg) : '') + (qs ? '?' + qs : '');
  if (location.hash === next) render();
  else location.hash = next;
}

function signInForm(message) {
  const token = h('input', { type: 'password', id: 'token', autocomplete: 'off', placeholder: 'API token', required: true });
  const status = h('div', {}, message ? errorBox(new Error(message)) : null);
  const form = h('form', { id: 'signin', class: 'card signin', onsubmit: async (e) => {
    e.preventDefault();
    status.replaceChildren(h('p', { class: 'muted' }, 'Signing in…'));
    try {
      login = await api('POST', 'login', JSON.stringify({ token: token.value }));
      setCSRF(login.csrf);
      token.value = '';
      render();
    } catch (err) {
      status.replaceChildren(errorBox(err));
    }
  } },
  h('h1', {}, 'imagegate console'),
  h('p', { class: 'muted' }, 'Sign in with a management API token (a token of --api-tokens, or a Kubernetes token when TokenReview is on).'),
  h('label', { for: 'token' }, 'Token'), token,
  h('button', { type: 'submit' }, 'Sign in'), status);
  app.replaceChildren(form);
  token.focus();
}

async function signOut() {
  try {
    await api('DELETE', 'login');
  } catch (_) {
    // Gone already: signed out either way.
  }
  login = null;
  setCSRF('');
  signInForm();
}

async function render() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  if (!login) return signInForm();
  const r = route();
  const nav = h('nav', {}, Object.entries(views).filter(([, v]) => !v.hidden).map(([name, v]) =>
    h('a', { href: '#/' + name, class: name === r.name || (r.name === 'event' && name === 'events') ? 'active' : '' }, v.title)));
  const main = h('main', { id: 'view' });
  app.replaceChildren(h('header', {}, h('span', { class: 'brand' }, 'imagegate'), nav,
    h('span', { class: 'who' }, login.principal, ' ', h('button', { id: 'signout', class: 'link', onclick: signOut }, 'Sign out'))), main);
  document.title = views[r.name].title + ' · imagegate';
  const ctx = { login, route: r, go, onCleanup: (fn) => { cleanup = fn; }, signedOut: () => { login = null; signInForm('The login has ended; sign in again.'); } };
  try {
    await views[r.name].render(main, ctx);
  } catch (err) {
    if (err.status === 401) return ctx.signedOut();
    main.replaceChildren(errorBox(err));
  }
}

async function start() {
  try {
    login = await api('GET', 'login');
    setCSRF(login.csrf);
  } catch (_) {
    login = null;
  }
  window.addEventListener('hashchange', render);
  render();
}

start();
