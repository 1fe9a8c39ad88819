// login.js — the login page: user and password, POST /api/v1/login (which sets the HttpOnly
// session cookie), then back to the page the user came from (`#/login?next=<hash>`).

import { api } from './api.js';
import { h } from './dom.js';

/** Only our own pages may be a `next` target. */
export function safeNext(next) {
  return typeof next === 'string' && /^#\/(search|cluster|deploy)\b/.test(next) ? next : '#/search';
}

export function renderLogin(main, params, { onLoggedIn }) {
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true, value: '' });
  const password = h('input', {
    id: 'login-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const error = h('p', { class: 'form-error', id: 'login-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Log in');
  const expired = params.get('expired') === '1';
  const form = h(
    'form',
    { class: 'login-card', 'aria-labelledby': 'login-title', novalidate: true },
    h('h1', { id: 'login-title' }, 'lograft'),
    expired ? h('p', { class: 'notice' }, 'Your session has ended. Log in again to continue.') : null,
    h('label', { for: 'login-user' }, 'User'),
    user,
    h('label', { for: 'login-password' }, 'Password'),
    password,
    error,
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!user.value || !password.value) {
      error.textContent = 'Enter a user name and a password.';
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      const me = await api('/api/v1/login', {
        method: 'POST',
        body: { user: user.value, password: password.value },
        login: true,
      });
      onLoggedIn(me, safeNext(params.get('next')));
    } catch (err) {
      error.textContent =
        err.status === 401
          ? 'Wrong user name or password.'
          : err.status === 429
            ? 'Too many failed logins from here; wait a minute and try again.'
            : err.message;
      error.hidden = false;
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(h('div', { class: 'login-page' }, form));
  user.focus();
}
