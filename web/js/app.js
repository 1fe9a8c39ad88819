// app.js — boots the UI: finds out who is logged in (GET /api/v1/me), routes hash URLs to
// pages (#/login, #/search?q=&from=&to=, #/cluster, #/deploy), runs the top bar, and turns any 401 from
// the API into the login page, which comes back to the same URL afterwards.

import { api, setUnauthorizedHandler } from './api.js';
import { ClusterPage } from './cluster.js';
import { DeployPage } from './deploy.js';
import { h, replace } from './dom.js';
import { renderLogin } from './login.js';
import { SearchPage } from './search.js';

const PAGES = {
  search: { title: 'Search', Page: SearchPage },
  cluster: { title: 'Cluster', Page: ClusterPage },
  deploy: { title: 'Deploy', Page: DeployPage },
};

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');
const whoami = document.getElementById('whoami');

let me = null; // {name, role} once known
let current = null; // {name, page}

function parseHash() {
  const hash = location.hash || '#/search';
  const split = hash.indexOf('?');
  const path = split === -1 ? hash.slice(1) : hash.slice(1, split);
  const query = split === -1 ? '' : hash.slice(split + 1);
  return { name: path.replace(/^\/+/, '') || 'search', params: new URLSearchParams(query) };
}

function leavePage() {
  if (current && current.page.destroy) current.page.destroy();
  current = null;
  // A dialog of the page left behind (context, runner editor) goes with it.
  for (const dialog of document.querySelectorAll('dialog')) dialog.close();
}

setUnauthorizedHandler(() => {
  if (parseHash().name === 'login') return;
  const hadSession = me !== null;
  me = null;
  const next = location.hash || '#/search';
  location.hash = `#/login?${new URLSearchParams({ next, ...(hadSession ? { expired: '1' } : {}) })}`;
});

async function route() {
  const { name, params } = parseHash();
  if (name === 'login') {
    leavePage();
    topbar.hidden = true;
    document.title = 'Log in · lograft';
    renderLogin(main, params, {
      onLoggedIn: (who, next) => {
        me = { name: `user:${who.user}`, role: who.role };
        location.hash = next;
      },
    });
    return;
  }
  const page = PAGES[name];
  if (!page) {
    location.hash = '#/search';
    return;
  }
  if (!me) {
    try {
      me = await api('/api/v1/me');
    } catch (err) {
      if (!err.unauthorized) {
        replace(main, h('p', { class: 'notice', role: 'alert' }, `Cannot reach lograft: ${err.message}`));
      }
      return; // a 401 already went to the login page
    }
    // The hash may have moved on while we asked.
    if (parseHash().name !== name) return;
  }
  topbar.hidden = false;
  whoami.textContent = `${String(me.name).replace(/^user:/, '')} (${me.role})`;
  for (const link of topbar.querySelectorAll('[data-page]')) {
    if (link.dataset.page === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${page.title} · lograft`;
  if (current && current.name === name) {
    current.page.update(params);
    return;
  }
  leavePage();
  current = { name, page: new page.Page(main, params, me) };
}

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api('/api/v1/logout', { method: 'POST' });
  } catch {
    // Logged out either way: the cookie is gone or was already invalid.
  }
  me = null;
  leavePage();
  location.hash = '#/login';
});

document.getElementById('skip-link').addEventListener('click', (event) => {
  event.preventDefault(); // the hash is the router's: focus instead of navigating
  main.focus();
});

window.addEventListener('hashchange', route);
route();
