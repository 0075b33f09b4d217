// Mephisto's status page: reads the admin API once a second and shows it. Everything it loads comes from the host
// itself (no network beyond it); the plots are Dygraphs (Debian's libjs-dygraphs, built into the binary). Text from
// the API is set as text, never as HTML: pipeline, agent and plugin names come from the teams that share the host.
'use strict';

const state = {
  token: sessionStorage.getItem('mephisto-token') || '',
  graphs: new Map(),   // pipeline -> Dygraph
  refreshes: 0,        // completed refreshes (the browser test waits on it)
  lastError: null,
};
window.mephistoStatus = state;

class Unauthorized extends Error {}

async function api(path) {
  const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) throw new Error(path + ': HTTP ' + response.status);
  const body = await response.json();
  return body;
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '' : String(text);
  if (className) td.className = className;
  return td;
}

function num(value, field) {
  const td = cell(value === null || value === undefined ? '–' : value, 'num');
  if (field) td.dataset.field = field;
  return td;
}

function fill(tableId, rows) {
  const body = document.querySelector('#' + tableId + ' tbody');
  body.replaceChildren(...rows);
}

function row(cells, key) {
  const tr = document.createElement('tr');
  if (key) tr.dataset.key = key;
  tr.append(...cells);
  return tr;
}

function ago(ms) {
  if (ms === null || ms === undefined) return '';
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
}

function renderPipelines(pipelines) {
  fill('pipelines', pipelines.map((p) => {
    const known = p.partitions.filter((x) => x.lag !== undefined && x.lag !== null);
    const lag = known.length === p.partitions.length ? known.reduce((sum, x) => sum + x.lag, 0) : null;
    const state = cell(p.state, p.state === 'failed' ? 'bad' : p.state === 'running' ? 'good' : '');
    if (p.failure) state.title = p.failure;
    return row([cell(p.app), state, num(p.partitions.length, 'partitions'), num(lag, 'lag'),
                num(p.recovery.length, 'recovering'), num(p.standby.length, 'standbys'),
                num(p.rebalances, 'rebalances'), cell(p.member)], p.app);
  }));
  const partitions = [];
  const recoveries = [];
  for (const p of pipelines) {
    for (const x of p.partitions) {
      const what = x.refused ? 'refused' : x.recovering ? 'recovering' : 'serving';
      partitions.push(row([cell(p.app), cell(x.topic), num(x.partition), num(x.committed, 'committed'),
                           num(x.end, 'end'), num(x.lag, 'lag'), cell(what, x.refused ? 'bad' : '')],
                          p.app + '/' + x.topic + '/' + x.partition));
    }
    for (const r of p.recovery) {  // in progress
      recoveries.push(row([cell(p.app), cell(r.table), num(r.partition), cell(r.remaining + ' record(s) to go'),
                           num(null), num(null), num(null), cell(''), cell('')]));
    }
    for (const r of p.recoveries.slice().reverse()) {  // done, newest first
      recoveries.push(row([cell(p.app), cell(r.table), num(r.partition), cell(r.completed ? 'done' : 'abandoned'),
                           num(r.replayed), num(r.from), num(r.end),
                           cell(r.standby_offset === null ? 'no' : 'yes, at ' + r.standby_offset),
                           cell(r.duration_ms === null ? '' : r.duration_ms + ' ms')]));
    }
  }
  fill('partitions', partitions);
  fill('recoveries', recoveries);
}

function renderAgents(agents) {
  fill('agents', agents.map((a) => row([
    cell(a.pipeline), cell(a.agent), cell(a.plugin), num(a.processed, 'processed'), num(a.outputs, 'outputs'),
    num(a.failures, 'failures'), num(a.restarts, 'restarts'), num(a.quarantined_records, 'quarantined_records'),
    num(a.dead_lettered, 'dead_lettered'), num(a.hung_now.length, 'hung_now'),
  ], a.pipeline + '/' + a.agent)));
}

function renderReloads(reloads) {
  const rows = [];
  for (const r of reloads.slice().reverse()) {  // newest first
    for (const c of r.changes) {
      rows.push(row([cell(r.at), cell(r.trigger), cell(c.pipeline), cell('plugin ' + c.plugin), cell(c.result),
                     cell(c.reason)], 'plugin/' + c.plugin));
    }
    for (const t of r.topology) {
      rows.push(row([cell(r.at), cell(r.trigger), cell(t.pipeline), cell('pipeline file'), cell(t.result),
                     cell(t.reason || (t.changed || []).join('; '))], 'pipeline/' + t.pipeline));
    }
  }
  fill('reloads', rows);
}

function renderWorkers(workers) {
  // A host in one process has none; the supervisor lists its worker processes.
  document.getElementById('workers-section').hidden = workers.length === 0;
  fill('workers', workers.map((w) => row([
    cell(w.pipelines.join(', ')), cell(w.state + (w.reason ? ': ' + w.reason : ''), w.state === 'running' ? 'good' : 'bad'),
    num(w.pid), num(w.restarts, 'restarts'), cell(w.last_exit), cell(ago(Date.now() - w.since_ms)),
  ], w.worker)));
}

function renderCluster(cluster) {
  const hosts = cluster && cluster.hosts ? cluster.hosts : [];
  document.getElementById('cluster-section').hidden = hosts.length === 0;
  const rows = [];
  for (const h of hosts) {
    for (const p of h.pipelines) {
      const active = p.active.map((a) => a.topic + '[' + a.partition + ']' + (a.recovering ? ' (recovering)' : ''));
      const standby = p.standby.map((s) => s.table + '[' + s.partition + '] (' + (s.lag === null ? '?' : s.lag) + ')');
      rows.push(row([cell(h.host + (h.self ? ' (this host)' : '')), cell(h.admin), cell(p.pipeline),
                     cell(active.join(' ')), cell(standby.join(' ')), cell(ago(h.age_ms))], h.host + '/' + p.pipeline));
    }
  }
  fill('cluster', rows);
}

function renderPlots(history) {
  const plots = document.getElementById('plots');
  for (const p of history) {
    const points = p.samples.map(([t, rate, lag]) => [new Date(t), rate, lag < 0 ? null : lag]);
    let graph = state.graphs.get(p.pipeline);
    let box = plots.querySelector('[data-pipeline="' + CSS.escape(p.pipeline) + '"]');
    if (!box) {
      box = document.createElement('div');
      box.className = 'plot';
      box.dataset.pipeline = p.pipeline;
      const title = document.createElement('h3');
      title.textContent = p.pipeline;
      const div = document.createElement('div');
      div.className = 'graph';
      box.append(title, div);
      plots.append(box);
    }
    box.dataset.points = String(points.length);
    if (points.length === 0) continue;
    if (!graph) {
      graph = new Dygraph(box.querySelector('.graph'), points, {
        labels: ['time', 'events/s', 'lag'],
        series: { lag: { axis: 'y2' } },
        axes: { y: { valueRange: [0, null] }, y2: { valueRange: [0, null], independentTicks: true } },
        ylabel: 'events/s', y2label: 'lag (records)', legend: 'always', connectSeparatedPoints: true,
      });
      state.graphs.set(p.pipeline, graph);
    } else {
      graph.updateOptions({ file: points });
    }
  }
}

async function refresh() {
  try {
    const [pipelines, agents, reloads, history, workers, cluster] = await Promise.all(
      ['/pipelines', '/agents', '/reloads', '/history', '/workers', '/cluster'].map(api));
    document.getElementById('token-form').hidden = true;
    document.getElementById('status').hidden = false;
    renderPipelines(pipelines || []);
    renderAgents(agents || []);
    renderReloads(reloads || []);
    renderWorkers(workers || []);
    renderCluster(cluster);
    renderPlots(history || []);
    document.getElementById('host').textContent = location.host;
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    document.getElementById('problem').hidden = true;
    state.lastError = null;
    state.refreshes += 1;
  } catch (e) {
    if (e instanceof Unauthorized) {
      document.getElementById('status').hidden = true;
      document.getElementById('token-form').hidden = false;
      return;
    }
    state.lastError = String(e);
    const problem = document.getElementById('problem');
    problem.textContent = 'the host does not answer: ' + e.message;
    problem.hidden = false;
  }
}

document.getElementById('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  state.token = document.getElementById('token').value.trim();
  sessionStorage.setItem('mephisto-token', state.token);
  refresh();
});

document.getElementById('table-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const table = document.getElementById('table-name').value;
  const key = document.getElementById('table-key').value;
  const stale = document.getElementById('table-stale').checked ? '?stale=ok' : '';
  const out = document.getElementById('table-result');
  try {
    const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
    const response = await fetch('/tables/' + encodeURIComponent(table) + '/' + encodeURIComponent(key) + stale,
                                 { headers, cache: 'no-store' });
    out.textContent = response.status + ' ' + JSON.stringify(await response.json(), null, 2);
  } catch (e) {
    out.textContent = String(e);
  }
});

// One refresh at a time: the next starts a second after the last one ended.
(async function loop() {
  await refresh();
  setTimeout(loop, 1000);
})();
