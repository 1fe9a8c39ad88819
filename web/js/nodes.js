// nodes.js — the Cluster page's data: nodes (GET /api/v1/cluster/nodes) and, per node, its
// runners through logkit's cluster API (`/logkit/cluster/...?url=<node url>`, seed 000). A node
// without the cluster API (404) is shown as a cluster of one, using its own logkit API
// (`/logkit/status`, `/logkit/configs/...`), so the page works on a single node too.

import { api, logkit, queryString } from './api.js';

/**
 * `{mode: 'cluster'|'single', leader, consistent, readError, nodes: [...]}`. `consistent` is
 * false when this node could not confirm with a quorum that its view is current.
 */
export async function loadNodes() {
  try {
    const body = await api('/api/v1/cluster/nodes');
    const nodes = Array.isArray(body.nodes) ? body.nodes : [];
    return {
      mode: 'cluster',
      leader: body.leader ?? null,
      consistent: body.consistent !== false,
      readError: body.read_error || '',
      nodes: nodes.concat(await logkitSlaves(nodes)),
    };
  } catch (err) {
    if (err.status !== 404) throw err;
  }
  const status = await api('/api/v1/status');
  const runners = Array.isArray(status.runners) ? status.runners.length : 0;
  return {
    mode: 'single',
    leader: null,
    consistent: true,
    readError: '',
    nodes: [
      {
        id: status.node || 'this node',
        url: location.origin,
        tag: '',
        version: status.version || '',
        status: 'ok',
        role: 'single',
        last_heartbeat: null,
        runners,
        ingest_rate: null,
        self: true,
      },
    ],
  };
}

/**
 * logkit slaves registered with this cluster (a fleet moving to lograft), as rows of the node
 * table: role `logkit`, managed through logkit's API on their URL. Lograft nodes are in the
 * list already.
 */
async function logkitSlaves(nodes) {
  let slaves;
  try {
    slaves = await logkit('/logkit/cluster/slaves');
  } catch (err) {
    if (err.unauthorized) throw err;
    return [];
  }
  const known = new Set(nodes.map((node) => node.url));
  return (Array.isArray(slaves) ? slaves : [])
    .filter((slave) => !slave.name && !known.has(slave.url))
    .map((slave) => ({
      id: slave.url,
      url: slave.url,
      tag: slave.tag || '',
      version: 'logkit',
      status: slave.status,
      role: 'logkit',
      last_heartbeat: slave.last_touch || null,
      runners: null,
      ingest_rate: null,
      agent: 'logkit',
    }));
}

const encode = encodeURIComponent;

/** Runner operations on one node, or on every node with a tag (`{tag}`). */
export class NodeTarget {
  /** `mode`: 'cluster' or 'single'; `where`: `{url}` or `{tag}`. */
  constructor(mode, where) {
    this.mode = mode;
    this.where = where;
  }

  get local() {
    return this.mode === 'single';
  }

  path(clusterPath, localPath) {
    return this.local ? localPath : `${clusterPath}${queryString(this.where)}`;
  }

  /** `{runnerName: logkitStatus}`; throws with the node's error when it did not answer. */
  async statuses() {
    if (this.local) return (await logkit('/logkit/status')) || {};
    const data = (await logkit(this.path('/logkit/cluster/status'))) || {};
    const entry = data[this.where.url] || Object.values(data)[0] || {};
    if (entry.error) throw new Error(String(entry.error));
    return entry.status || {};
  }

  /** `start`, `stop` or `reset`. */
  action(name, verb) {
    return logkit(this.path(`/logkit/cluster/configs/${encode(name)}/${verb}`, `/logkit/configs/${encode(name)}/${verb}`), {
      method: 'POST',
    });
  }

  remove(name) {
    return logkit(this.path(`/logkit/cluster/configs/${encode(name)}`, `/logkit/configs/${encode(name)}`), { method: 'DELETE' });
  }

  config(name) {
    return logkit(this.path(`/logkit/cluster/configs/${encode(name)}`, `/logkit/configs/${encode(name)}`));
  }

  /** Create (POST) or replace (PUT) a runner config. */
  save(name, config, replace) {
    return logkit(this.path(`/logkit/cluster/configs/${encode(name)}`, `/logkit/configs/${encode(name)}`), {
      method: replace ? 'PUT' : 'POST',
      body: config,
    });
  }

  setTag(tag) {
    return logkit(`/logkit/cluster/slaves/tag${queryString(this.where)}`, { method: 'POST', body: { tag } });
  }
}

/** Try a parser config on sample lines as a runner would index them (POST /api/v1/parse). */
export async function tryParser(parser, sample) {
  const data = await api('/api/v1/parse', { method: 'POST', body: { ...parser, sampleLog: sample } });
  return (data && data.records) || [];
}
