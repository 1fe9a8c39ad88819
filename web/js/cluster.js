// cluster.js — the Cluster page: the nodes (status light, Raft role, tag — editable, version,
// last heartbeat, runners, ingest rate), each node's runners with logkit's status fields and
// start/stop/reset/edit/delete, a "new runner" editor that applies to nodes or a tag, and for
// admins the command that joins another node to this cluster.

import { api } from './api.js';
import { h, toast } from './dom.js';
import { NodeTarget, loadNodes } from './nodes.js';
import { formatTime, visibleText } from './render.js';
import { openRunnerEditor } from './runner-editor.js';

const fmt = (value, digits = 0) =>
  typeof value === 'number' && Number.isFinite(value) ? value.toLocaleString(undefined, { maximumFractionDigits: digits }) : '–';

function bytes(value) {
  if (typeof value !== 'number') return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit++;
  }
  return `${size.toLocaleString(undefined, { maximumFractionDigits: unit ? 1 : 0 })} ${units[unit]}`;
}

export class ClusterPage {
  constructor(main, params, me) {
    this.me = me;
    this.state = null;
    this.selected = new Set(); // node URLs chosen for "new runner"
    this.refreshButton = h('button', { type: 'button', class: 'btn', id: 'cluster-refresh' }, 'Refresh');
    this.refreshButton.addEventListener('click', () => this.load());
    this.newRunner = h('button', { type: 'button', class: 'btn btn-primary', id: 'new-runner', disabled: true }, 'New runner');
    this.newRunner.addEventListener('click', () => this.editRunner(null, [...this.selected]));
    this.notice = h('p', { class: 'notice', hidden: true });
    this.nodesBody = h('tbody');
    this.runners = h('div', { class: 'node-runners' });
    this.join = h('section', { class: 'join', hidden: true, 'aria-labelledby': 'join-title' });
    this.element = h(
      'div',
      { class: 'cluster-page' },
      h('div', { class: 'page-head' }, h('h1', null, 'Cluster'), h('span', { class: 'spacer' }), this.refreshButton, this.newRunner),
      this.notice,
      h(
        'table',
        { class: 'nodes', id: 'nodes' },
        h('caption', { class: 'visually-hidden' }, 'Nodes of the cluster'),
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Status', 'Node', 'URL', 'Role', 'Tag', 'Version', 'Last heartbeat', 'Runners', 'Lines/s', 'Select'].map((label) =>
              h('th', { scope: 'col' }, label),
            ),
          ),
        ),
        this.nodesBody,
      ),
      this.runners,
      this.join,
    );
    main.replaceChildren(this.element);
    // The join command names this node's URL, which the node list says.
    this.load().then(() => this.showJoin());
    // Statuses change on their own (a node goes bad, then lost): refresh every 5 s, unless the
    // tab is hidden, a dialog is open or the operator is typing in the page.
    this.timer = setInterval(() => {
      const typing = this.element.contains(document.activeElement) && document.activeElement.matches('input, textarea, select');
      if (!document.hidden && !document.querySelector('dialog[open]') && !typing) this.load();
    }, 5000);
  }

  destroy() {
    clearInterval(this.timer);
  }

  update() {
    this.load();
  }

  async load() {
    this.refreshButton.disabled = true;
    try {
      this.state = await loadNodes();
    } catch (err) {
      if (!err.unauthorized) {
        this.notice.textContent = `Cannot load the cluster: ${err.message}`;
        this.notice.hidden = false;
      }
      return;
    } finally {
      this.refreshButton.disabled = false;
    }
    const { mode, nodes, consistent } = this.state;
    if (mode !== 'cluster') {
      this.notice.textContent = 'This node is not part of a cluster (the cluster API is not available), so it is shown alone.';
      this.notice.hidden = false;
    } else if (!consistent) {
      // Cut off, or the cluster has no quorum: this is the node's own view and may be stale.
      this.notice.textContent = 'This node cannot reach a majority of the voters: what it shows may be out of date, and no leader is known.';
      this.notice.hidden = false;
    } else {
      this.notice.hidden = true;
    }
    this.newRunner.disabled = false;
    this.nodesBody.replaceChildren(...nodes.map((node) => this.nodeRow(node)));
    this.runners.replaceChildren(...nodes.map((node) => this.runnerSection(node)));
  }

  nodeRow(node) {
    const status = ['ok', 'bad', 'lost'].includes(node.status) ? node.status : 'unknown';
    const tagInput = h('input', {
      class: 'tag-input',
      value: node.tag || '',
      'aria-label': `Tag of ${visibleText(node.id)}`,
      disabled: this.state.mode !== 'cluster',
    });
    const saveTag = h('button', { type: 'button', class: 'btn btn-small', disabled: this.state.mode !== 'cluster' }, 'Save');
    const save = async () => {
      try {
        await new NodeTarget(this.state.mode, { url: node.url }).setTag(tagInput.value.trim());
        toast(`Tag of ${node.id} set.`);
        this.load();
      } catch (err) {
        if (!err.unauthorized) toast(`Setting the tag failed: ${err.message}`, 'error');
      }
    };
    saveTag.addEventListener('click', save);
    tagInput.addEventListener('keydown', (event) => event.key === 'Enter' && save());
    const pick = h('input', {
      type: 'checkbox',
      checked: this.selected.has(node.url),
      'aria-label': `Select ${visibleText(node.id)}`,
    });
    pick.addEventListener('change', () => (pick.checked ? this.selected.add(node.url) : this.selected.delete(node.url)));
    return h(
      'tr',
      { dataset: { node: node.id || '' } },
      // The word too, not only the light's colour: bad and lost differ by more than a hue.
      h('td', { class: 'status-cell' }, h('span', { class: `light light-${status}`, 'aria-hidden': 'true' }), ` ${status}`),
      h(
        'td',
        null,
        visibleText(node.id),
        node.self ? h('span', { class: 'badge' }, 'this node') : null,
        node.agent === 'logkit' ? h('span', { class: 'badge badge-logkit', title: 'a logkit slave registered with this cluster' }, 'logkit') : null,
      ),
      h('td', { class: 'mono' }, visibleText(node.url)),
      h('td', null, h('span', { class: `role role-${visibleText(node.role)}` }, visibleText(node.role || '–'))),
      h('td', { class: 'tag-cell' }, tagInput, saveTag),
      h('td', null, visibleText(node.version || '–')),
      h('td', null, node.last_heartbeat ? formatTime(node.last_heartbeat) : '–'),
      h('td', { class: 'num' }, fmt(node.runners)),
      h('td', { class: 'num' }, fmt(node.ingest_rate, 1)),
      h('td', null, pick),
    );
  }

  runnerSection(node) {
    const target = new NodeTarget(this.state.mode, { url: node.url });
    const body = h('tbody', null, h('tr', null, h('td', { colspan: 9, class: 'muted' }, 'Loading…')));
    // Runner configs this node's allowlist refused (`refused`: runner → reason).
    const refused = node.refused && typeof node.refused === 'object' ? Object.entries(node.refused) : [];
    const section = h(
      'section',
      { class: 'node-section' },
      h('h2', null, `Runners on ${visibleText(node.id)}`),
      refused.length
        ? h(
            'div',
            { class: 'banner banner-warn', role: 'status' },
            h('p', null, 'Refused by this node:'),
            h('ul', null, refused.map(([name, reason]) => h('li', null, h('strong', null, visibleText(name)), `: ${visibleText(reason)}`))),
          )
        : null,
      h(
        'table',
        { class: 'runners' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Runner', 'State', 'Log path', 'Lines read', 'Read', 'Lines/s', 'Lag', 'Parse errors', 'Actions'].map((label) => h('th', { scope: 'col' }, label)),
          ),
        ),
        body,
      ),
    );
    target
      .statuses()
      .then((statuses) => {
        const names = Object.keys(statuses).sort();
        if (!names.length) body.replaceChildren(h('tr', null, h('td', { colspan: 9, class: 'muted' }, 'No runners.')));
        else body.replaceChildren(...names.map((name) => this.runnerRow(node, target, name, statuses[name] || {})));
      })
      .catch((err) => {
        if (!err.unauthorized) body.replaceChildren(h('tr', null, h('td', { colspan: 9, class: 'form-error' }, `No answer: ${err.message}`)));
      });
    return section;
  }

  runnerRow(node, target, name, status) {
    const running = status.runningStatus === 'running';
    const act = (verb, label) => {
      const button = h('button', { type: 'button', class: 'btn btn-small', dataset: { action: verb } }, label);
      button.addEventListener('click', async () => {
        if (verb === 'delete' && !window.confirm(`Delete runner ${name} on ${node.id}? Its config is removed.`)) return;
        button.disabled = true;
        try {
          if (verb === 'delete') await target.remove(name);
          else await target.action(name, verb);
          toast(`${name}: ${verb} done.`);
          this.load();
        } catch (err) {
          button.disabled = false;
          if (!err.unauthorized) toast(`${name}: ${verb} failed: ${err.message}`, 'error');
        }
      });
      return button;
    };
    const edit = h('button', { type: 'button', class: 'btn btn-small', dataset: { action: 'edit' } }, 'Edit');
    edit.addEventListener('click', async () => {
      try {
        this.editRunner(await target.config(name), [node.url]);
      } catch (err) {
        if (!err.unauthorized) toast(`Cannot read ${name}'s config: ${err.message}`, 'error');
      }
    });
    const parseErrors = status.parserStats ? status.parserStats.errors : undefined;
    const lag = status.lag ? status.lag.size : undefined;
    return h(
      'tr',
      { dataset: { runner: name } },
      h('th', { scope: 'row' }, visibleText(name)),
      h(
        'td',
        null,
        h('span', { class: `light light-${running ? 'ok' : 'stopped'}`, 'aria-hidden': 'true' }),
        ` ${visibleText(status.state || status.runningStatus || '–')}`,
        status.error ? h('div', { class: 'form-error' }, visibleText(status.error)) : null,
      ),
      h('td', { class: 'mono' }, visibleText(status.logpath || '')),
      h('td', { class: 'num' }, fmt(status.readDataCount)),
      h('td', { class: 'num' }, bytes(status.readDataSize)),
      h('td', { class: 'num' }, fmt(status.readspeed, 1)),
      h('td', { class: 'num' }, bytes(lag)),
      h('td', { class: 'num' }, fmt(parseErrors)),
      h(
        'td',
        { class: 'actions' },
        running ? act('stop', 'Stop') : act('start', 'Start'),
        act('reset', 'Reset'),
        edit,
        act('delete', 'Delete'),
      ),
    );
  }

  editRunner(config, preselected) {
    openRunnerEditor({
      config,
      nodes: this.state ? this.state.nodes : [],
      mode: this.state ? this.state.mode : 'single',
      preselected,
      onDone: () => this.load(),
    });
  }

  /**
   * Admins add a node: a button mints a join token (one node, one hour) and the page shows the
   * config and the command that use it. A join token is not the cluster secret: the new node
   * trades it for the secret once, and it is worth nothing after that.
   */
  async showJoin() {
    if (!this.me || this.me.role !== 'admin') return;
    const self = this.state && this.state.nodes.find((node) => node.self);
    const peer = self && self.url ? self.url : location.origin;
    const configCode = h('code', { id: 'join-config' });
    const code = h('code', { id: 'join-command' });
    const result = h('div', { class: 'join-result', hidden: true },
      h('p', null, 'On the new machine, before lograft first starts, add to /etc/lograft/lograft.toml (and set cluster.advertise_url to the URL the other nodes reach it at):'),
      h('pre', { class: 'command' }, configCode),
      h('p', null, 'Or, on a node that already runs alone (its runner configs are kept; its users and tokens become the cluster\'s):'),
      h('pre', { class: 'command' }, code));
    const expiry = h('p', { class: 'hint', id: 'join-expiry' });
    const mint = h('button', { type: 'button', class: 'btn', id: 'join-mint' }, 'Create a join token');
    const copy = h('button', { type: 'button', class: 'btn', hidden: true }, 'Copy config');
    let config = '';
    mint.addEventListener('click', async () => {
      mint.disabled = true;
      try {
        const minted = await api('/api/v1/cluster/join-tokens', { method: 'POST', body: { ttl: '1h', uses: 1 } });
        config = `[cluster]\njoin = "${peer}"\njoin_token = "${minted.token}"`;
        configCode.textContent = config;
        code.textContent = `LOGRAFT_TOKEN=<its admin token> lograft cluster join --peer ${peer} --token ${minted.token}`;
        expiry.textContent = `Token ${minted.id}: for one node, until ${new Date(minted.expires_at).toLocaleString()}. It is shown once; revoke it with lograft cluster revoke-token ${minted.id}.`;
        result.hidden = false;
        copy.hidden = false;
        mint.textContent = 'Create another';
      } catch (err) {
        toast(err.message || String(err), 'error');
      } finally {
        mint.disabled = false;
      }
    });
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(config);
        toast('Copied.');
      } catch {
        toast('The browser refused the clipboard; select the config and copy it by hand.', 'error');
      }
    });
    this.join.replaceChildren(
      h('h2', { id: 'join-title' }, 'Add a node'),
      h('p', null, 'A join token lets one new node join within an hour. The node trades it for the cluster secret, which is never shown.'),
      h('div', { class: 'button-row' }, mint, copy),
      result,
      expiry,
    );
    this.join.hidden = false;
  }
}
