// deploy.js — the Deploy page (seed 002): the deployments on the left (a green light on a
// started one, and whether each is deployed and started), the editor on the right. A new
// deployment joins the list only when saved; Create while editing another with unsaved
// changes asks whether to save or discard; deploy/start/stop are enabled only once saved and
// as the state machine allows; deploy shows the plan (the files each node matches now, what
// changes) and asks to confirm; while an execution runs its log scrolls as it grows and every
// other action waits; delete asks twice. Every name, remark and log line is shown as text.

import { api } from './api.js';
import { h, modal, replace, toast } from './dom.js';
import { openRunnerEditor } from './runner-editor.js';

// Seed 002's permission lists (状态权限解释), with cancel also from deploysuccess (its flow).
const ALLOWS = {
  prepare: ['deploy', 'delete'],
  cancel: ['edit'],
  deploysuccess: ['start', 'stop', 'delete', 'cancel'],
  deployfailure: ['deploy', 'edit', 'delete'],
  startsuccess: ['stop'],
  startfailure: ['start', 'delete'],
  stopsuccess: ['edit', 'deploy', 'delete'],
  stopfailure: ['stop'],
};
const EXECUTE = { start: 0, stop: 1, deploy: 2 };
const POLL_MS = 1000;

const split = (text) =>
  String(text || '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

export class DeployPage {
  constructor(main, params, me) {
    this.me = me;
    this.deployments = [];
    this.current = null; // the deployment in the editor (unsaved: no id)
    this.dirty = false;
    this.running = null; // the id whose execution is being followed
    this.templates = [];
    this.list = h('ul', { class: 'deploy-list', id: 'deploy-list', 'aria-label': 'Deployments' });
    this.createButton = h('button', { type: 'button', class: 'btn btn-primary', id: 'deploy-create' }, 'Create');
    this.createButton.addEventListener('click', () => this.create());
    this.editor = h('section', { class: 'deploy-editor', id: 'deploy-editor', 'aria-label': 'Deployment' });
    this.element = h(
      'div',
      { class: 'deploy-page' },
      h('div', { class: 'page-head' }, h('h1', null, 'Deploy'), h('span', { class: 'spacer' }), this.createButton),
      h('div', { class: 'deploy-columns' }, h('nav', { class: 'deploy-side' }, this.list), this.editor),
    );
    main.replaceChildren(this.element);
    this.load(true);
    api('/api/v1/runners')
      .then((runners) => {
        this.templates = runners || [];
      })
      .catch(() => {});
  }

  destroy() {
    clearTimeout(this.timer);
  }

  update() {}

  async load(first = false) {
    const all = [];
    for (let page = 1; page < 100; page++) {
      const answer = await api('/api/v1/deployments', { params: { page } });
      all.push(...answer.deployments);
      if (all.length >= answer.total || !answer.deployments.length) break;
    }
    this.deployments = all;
    this.drawList();
    if (first) {
      const started = all.find((d) => d.workStatus);
      if (started) this.open(started);
      else this.drawEmpty();
      // An execution that runs now (from another tab or node) is followed.
      const signal = await api('/api/v1/executeResultSignal').catch(() => null);
      if (signal && signal.result && signal.result.over === false && this.current && this.current.id) this.follow(this.current.id);
    } else if (this.current && this.current.id && !this.dirty) {
      const fresh = all.find((d) => d.id === this.current.id);
      if (fresh) this.open(fresh);
    }
  }

  drawList() {
    replace(
      this.list,
      this.deployments.map((d) =>
        h(
          'li',
          { class: this.current && this.current.id === d.id ? 'deploy-item is-current' : 'deploy-item', dataset: { id: d.id } },
          h(
            'button',
            { type: 'button', class: 'deploy-pick', onclick: () => this.pick(d) },
            h('span', { class: d.workStatus ? 'light light-ok' : 'light light-off', 'aria-label': d.workStatus ? 'started' : 'not started' }),
            h('span', { class: 'deploy-name' }, d.name),
            h('span', { class: 'deploy-state' }, d.status),
            h('span', { class: 'deploy-flags' }, d.deployStatus ? 'deployed' : 'not deployed', ' · ', d.workStatus ? 'started' : 'not started'),
          ),
        ),
      ),
    );
    if (!this.deployments.length) this.list.append(h('li', { class: 'deploy-none' }, 'No deployment yet.'));
  }

  drawEmpty() {
    this.current = null;
    this.dirty = false;
    replace(this.editor, h('p', { class: 'notice' }, 'Create a deployment, or pick one on the left.'));
  }

  /** Leave the editor, asking first when it holds unsaved changes. Resolves to true to go on. */
  async leave() {
    if (!this.dirty || !this.current) return true;
    return new Promise((resolve) => {
      let answered = false;
      const answer = (value) => {
        answered = true;
        dialog.close();
        resolve(value);
      };
      const save = h('button', { type: 'button', class: 'btn btn-primary', id: 'unsaved-save' }, 'Save');
      const discard = h('button', { type: 'button', class: 'btn', id: 'unsaved-discard' }, 'Discard');
      const stay = h('button', { type: 'button', class: 'btn btn-quiet', id: 'unsaved-stay' }, 'Keep editing');
      save.addEventListener('click', async () => answer(await this.save()));
      discard.addEventListener('click', () => {
        // Back to what is stored (or to nothing, for a new one never saved).
        const stored = this.current.id && this.deployments.find((d) => d.id === this.current.id);
        if (stored) this.open(stored);
        else this.drawEmpty();
        answer(true);
      });
      stay.addEventListener('click', () => answer(false));
      const dialog = modal(
        'Unsaved changes',
        h(
          'div',
          { id: 'unsaved-dialog' },
          h('p', null, 'The deployment ', h('strong', null, this.current.name || '(new)'), ' has changes that are not saved.'),
          h('div', { class: 'dialog-actions' }, save, discard, stay),
        ),
        { onClose: () => !answered && resolve(false) },
      );
    });
  }

  async pick(deployment) {
    if (this.current && this.current.id === deployment.id) return;
    if (!(await this.leave())) return;
    this.open(deployment);
  }

  create() {
    this.leave().then((go) => {
      if (!go) return;
      const name = h('input', { type: 'text', id: 'create-name', required: true, maxlength: 128, autocomplete: 'off' });
      const remark = h('input', { type: 'text', id: 'create-remark', maxlength: 4096, autocomplete: 'off' });
      const ok = h('button', { type: 'submit', class: 'btn btn-primary', id: 'create-ok' }, 'OK');
      const form = h(
        'form',
        { class: 'form', id: 'create-form' },
        h('label', null, 'Name', name),
        h('label', null, 'Remark', remark),
        h('div', { class: 'dialog-actions' }, ok),
      );
      const dialog = modal('Create a deployment', form);
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        if (!name.value.trim()) return;
        dialog.close();
        this.open({ id: '', name: name.value.trim(), remark: remark.value, status: null, hosts: [], base: { version: '' }, roles: [] });
        this.dirty = true;
        this.drawButtons();
      });
      name.focus();
    });
  }

  open(deployment) {
    // Reopening the same deployment (after a reload of the list) keeps the log and result on
    // screen until the fresh log arrives, so they never blink empty.
    const same = this.current && this.current.id && this.current.id === deployment.id;
    const keptLog = same && this.logBox ? [...this.logBox.childNodes] : [];
    const keptResult = same && this.result ? { text: this.result.textContent, className: this.result.className } : null;
    this.current = structuredClone(deployment);
    this.dirty = false;
    this.drawList();
    const d = this.current;
    const field = (label, input) => h('label', null, label, input);
    const input = (id, value, props = {}) => {
      const element = h('input', { type: 'text', id, value: value ?? '', autocomplete: 'off', ...props });
      element.addEventListener('input', () => this.changed());
      return element;
    };
    this.inputs = {
      name: input('deploy-name', d.name, { maxlength: 128 }),
      remark: input('deploy-remark', d.remark),
      hosts: input('deploy-hosts', (d.hosts || []).join(', '), { placeholder: 'node names, IPs or tag:web' }),
      version: input('deploy-version', (d.base && d.base.version) || '', { placeholder: 'lowest lograft version, e.g. 0.1.0' }),
    };
    this.roles = h('div', { class: 'deploy-roles', id: 'deploy-roles' });
    for (const role of d.roles || []) this.roles.append(this.roleEditor(role));
    const addRole = h('button', { type: 'button', class: 'btn', id: 'deploy-add-role' }, 'Add role');
    addRole.addEventListener('click', () => {
      this.roles.append(this.roleEditor({ roleName: '', roleBody: { reader: { mode: 'file', log_path: '' }, parser: { type: 'raw' } }, roleDependHost: [] }));
      this.changed();
    });
    this.buttons = {};
    const button = (key, label, handler, primary = false) => {
      const element = h('button', { type: 'button', class: primary ? 'btn btn-primary' : 'btn', id: `deploy-${key}` }, label);
      element.addEventListener('click', handler);
      this.buttons[key] = element;
      return element;
    };
    this.stateLine = h('p', { class: 'deploy-statusline', id: 'deploy-status' });
    this.logBox = h('ol', { class: 'deploy-log', id: 'deploy-log', 'aria-live': 'polite' });
    this.result = h('p', { class: 'deploy-result', id: 'deploy-result', role: 'status' });
    this.logBox.append(...keptLog);
    if (keptResult) {
      this.result.textContent = keptResult.text;
      this.result.className = keptResult.className;
    }
    replace(
      this.editor,
      h('h2', { class: 'deploy-title', id: 'deploy-title' }, d.name || '(new deployment)'),
      this.stateLine,
      h('div', { class: 'form deploy-form' }, field('Name', this.inputs.name), field('Remark', this.inputs.remark), field('Hosts', this.inputs.hosts), field('Minimum version', this.inputs.version)),
      h('h3', null, 'Roles (one runner each)'),
      this.roles,
      addRole,
      h(
        'div',
        { class: 'deploy-actions' },
        button('save', 'Save', () => this.save(), true),
        button('deploy', 'Deploy…', () => this.deploy()),
        button('start', 'Start', () => this.execute('start')),
        button('stop', 'Stop', () => this.execute('stop')),
        button('cancel', 'Cancel deployment', () => this.cancel()),
        button('delete', 'Delete…', () => this.remove()),
      ),
      h('h3', null, 'Last execution'),
      this.result,
      this.logBox,
    );
    this.drawButtons();
    if (d.id) this.showLog(d.id);
  }

  roleEditor(role) {
    const name = h('input', { type: 'text', class: 'role-name', value: role.roleName || '', placeholder: 'runner name', autocomplete: 'off' });
    const hosts = h('input', { type: 'text', class: 'role-hosts', value: (role.roleDependHost || []).join(', '), placeholder: 'node names, IPs or tag:web', autocomplete: 'off' });
    const body = h('textarea', { class: 'role-body', rows: 6, spellcheck: 'false' });
    body.value = JSON.stringify(role.roleBody ?? {}, null, 2);
    const template = h('select', { class: 'role-template', 'aria-label': 'Fill from a runner config' }, h('option', { value: '' }, 'Fill from a runner config…'), this.templates.map((r) => h('option', { value: r.name }, r.name)));
    template.addEventListener('change', () => {
      const chosen = this.templates.find((r) => r.name === template.value);
      if (!chosen) return;
      const config = structuredClone(chosen.config);
      delete config.name;
      delete config.stopped;
      body.value = JSON.stringify(config, null, 2);
      if (!name.value) name.value = chosen.name;
      template.value = '';
      this.changed();
    });
    const edit = h('button', { type: 'button', class: 'btn role-edit' }, 'Edit in the runner editor…');
    edit.addEventListener('click', () => {
      let config;
      try {
        config = JSON.parse(body.value || '{}');
      } catch (err) {
        toast(`The runner config is not JSON (${err.message})`, 'error');
        return;
      }
      openRunnerEditor({
        config: { ...config, name: name.value.trim() || 'role' },
        nodes: [],
        mode: 'single',
        onUse: (next) => {
          const used = structuredClone(next);
          delete used.name;
          body.value = JSON.stringify(used, null, 2);
          this.changed();
        },
      });
    });
    const remove = h('button', { type: 'button', class: 'btn btn-quiet role-remove', 'aria-label': 'Remove this role' }, 'Remove');
    const element = h(
      'fieldset',
      { class: 'role' },
      h('legend', null, 'Role'),
      h('label', null, 'Runner name', name),
      h('label', null, 'On', hosts),
      h('label', null, 'Runner config (JSON)', body),
      h('div', { class: 'role-tools' }, template, edit, remove),
    );
    remove.addEventListener('click', () => {
      element.remove();
      this.changed();
    });
    for (const control of [name, hosts, body]) control.addEventListener('input', () => this.changed());
    return element;
  }

  changed() {
    this.dirty = true;
    this.drawButtons();
  }

  /** The editor's content in seed 002's shape, or throws naming the bad field. */
  collect() {
    const roles = [...this.roles.querySelectorAll('fieldset.role')].map((element, i) => {
      let roleBody;
      try {
        roleBody = JSON.parse(element.querySelector('.role-body').value || 'null');
      } catch (err) {
        throw new Error(`role ${i + 1}: the runner config is not JSON (${err.message})`);
      }
      return { roleName: element.querySelector('.role-name').value.trim(), roleBody, roleDependHost: split(element.querySelector('.role-hosts').value) };
    });
    const base = { ...(this.current.base || {}), version: this.inputs.version.value.trim() };
    return { name: this.inputs.name.value.trim(), remark: this.inputs.remark.value, hosts: split(this.inputs.hosts.value), base, roles };
  }

  async save() {
    let body;
    try {
      body = this.collect();
    } catch (err) {
      toast(err.message, 'error');
      return false;
    }
    try {
      const saved = this.current.id
        ? await api(`/api/v1/deployments/${encodeURIComponent(this.current.id)}`, { method: 'PUT', body: { ...body, id: this.current.id, status: this.current.status } })
        : await api('/api/v1/deployments', { method: 'POST', body });
      toast(`Saved ${saved.name}`);
      this.dirty = false;
      await this.load();
      this.open(saved);
      return true;
    } catch (err) {
      toast(err.message, 'error');
      return false;
    }
  }

  drawButtons() {
    const d = this.current;
    if (!d || !this.buttons) return;
    const allowed = d.id && !this.dirty ? ALLOWS[d.status] || [] : [];
    const busy = Boolean(this.running);
    for (const key of ['deploy', 'start', 'stop', 'cancel', 'delete']) {
      this.buttons[key].disabled = busy || !allowed.includes(key);
    }
    // Saving is an edit: allowed for a new deployment, and where the state allows edit.
    const editable = !d.id || (ALLOWS[d.status] || []).includes('edit');
    this.buttons.save.disabled = busy || !this.dirty || !editable;
    this.createButton.disabled = busy;
    this.stateLine.replaceChildren(
      d.id ? `State: ${d.status} · ${d.deployStatus ? 'deployed' : 'not deployed'} · ${d.workStatus ? 'started' : 'not started'}` : 'Not saved yet',
      this.dirty ? ' · unsaved changes' : '',
    );
    if (d.id && !editable && this.dirty) this.stateLine.append(` · ${d.status} does not allow edits (stop or cancel first)`);
  }

  async deploy() {
    const d = this.current;
    let plan;
    try {
      plan = await api(`/api/v1/deployments/${encodeURIComponent(d.id)}/plan`);
    } catch (err) {
      toast(err.message, 'error');
      return;
    }
    const rows = [];
    for (const [node, answer] of Object.entries(plan.nodes || {})) {
      const files = Object.entries(answer.files || {}).map(([runner, list]) => h('li', null, `${runner}: ${list.length ? list.join(', ') : 'no file matches now'}`));
      const refused = Object.entries(answer.refused || {}).map(([runner, why]) => h('li', { class: 'plan-refused' }, `${runner}: refused: ${why}`));
      rows.push(h('li', { class: 'plan-node', dataset: { node } }, h('strong', null, node), answer.error ? ` (${answer.error})` : '', h('ul', null, files, refused)));
    }
    const diffRows = [];
    for (const kind of ['added', 'changed', 'removed', 'unchanged']) {
      for (const [node, runners] of Object.entries((plan.diff || {})[kind] || {})) {
        diffRows.push(h('li', { class: `plan-${kind}` }, `${node}: ${runners.join(', ')} ${kind}`));
      }
    }
    const confirm = h('button', { type: 'button', class: 'btn btn-primary', id: 'plan-confirm' }, 'Deploy');
    const dialog = modal(
      `Deploy ${d.name}?`,
      h(
        'div',
        { id: 'plan-dialog' },
        h('h3', null, 'Files each node matches now'),
        h('ul', { class: 'plan-nodes' }, rows),
        h('h3', null, `Changes against ${plan.deployedRevision ? `revision ${plan.deployedRevision}` : 'nothing deployed'}`),
        h('ul', { class: 'plan-diff' }, diffRows.length ? diffRows : h('li', null, 'nothing changes')),
        h('div', { class: 'dialog-actions' }, confirm),
      ),
      { wide: true },
    );
    confirm.addEventListener('click', () => {
      dialog.close();
      this.execute('deploy');
    });
  }

  async execute(kind) {
    const id = this.current.id;
    try {
      await api(`/api/v1/deployments/${encodeURIComponent(id)}/execute`, { method: 'POST', body: { executeType: EXECUTE[kind] } });
    } catch (err) {
      toast(err.message, 'error');
      return;
    }
    this.follow(id);
  }

  async cancel() {
    try {
      await api(`/api/v1/deployments/${encodeURIComponent(this.current.id)}`, { method: 'PUT', body: { ...this.current, status: 'cancel' } });
      await this.load();
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  remove() {
    const d = this.current;
    const first = h('button', { type: 'button', class: 'btn btn-danger', id: 'delete-confirm' }, 'Delete');
    const dialog = modal('Delete this deployment?', h('div', { id: 'delete-dialog' }, h('p', null, 'Delete ', h('strong', null, d.name), '? The runners it wrote are removed from their nodes.'), h('div', { class: 'dialog-actions' }, first)));
    first.addEventListener('click', () => {
      dialog.close();
      const sure = h('button', { type: 'button', class: 'btn btn-danger', id: 'delete-really' }, 'Yes, delete it');
      const second = modal('Really delete?', h('div', { id: 'delete-dialog-2' }, h('p', null, `This cannot be undone: ${d.name}`), h('div', { class: 'dialog-actions' }, sure)));
      sure.addEventListener('click', async () => {
        second.close();
        try {
          await api(`/api/v1/deployments/${encodeURIComponent(d.id)}`, { method: 'DELETE' });
          toast(`Deleted ${d.name}`);
          this.drawEmpty();
          await this.load();
        } catch (err) {
          toast(err.message, 'error');
        }
      });
    });
  }

  /** Poll the execution of `id` until it is over, drawing its log as it grows. */
  follow(id) {
    this.running = id;
    this.drawButtons();
    this.result.textContent = 'Running…';
    this.result.className = 'deploy-result is-running';
    const tick = async () => {
      try {
        const signal = await api(`/api/v1/deployments/${encodeURIComponent(id)}/signal`);
        await this.showLog(id);
        if (signal.over) {
          this.running = null;
          await this.load();
          this.showResult(signal);
          return;
        }
      } catch (err) {
        if (err.unauthorized) return;
      }
      this.timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  showResult(signal) {
    if (!this.result) return;
    this.result.textContent = `${signal.singnalType}: ${signal.success ? 'succeeded' : 'failed'}`;
    this.result.className = signal.success ? 'deploy-result is-ok' : 'deploy-result is-failed';
  }

  async showLog(id) {
    const lines = [];
    for (let page = 1; page < 1000; page++) {
      const answer = await api(`/api/v1/deployments/${encodeURIComponent(id)}/log`, { params: { page } }).catch(() => null);
      if (!answer || !answer.data.length) break;
      lines.push(...answer.data);
      if (lines.length >= answer.rows) break;
    }
    if (!this.logBox || !this.current || this.current.id !== id) return;
    const stick = this.logBox.scrollTop + this.logBox.clientHeight >= this.logBox.scrollHeight - 4;
    replace(this.logBox, lines.map((line) => h('li', null, line)));
    if (stick) this.logBox.scrollTop = this.logBox.scrollHeight;
    if (!this.running && lines.length) {
      const signal = await api(`/api/v1/deployments/${encodeURIComponent(id)}/signal`).catch(() => null);
      if (signal && signal.over) this.showResult(signal);
    }
  }
}
