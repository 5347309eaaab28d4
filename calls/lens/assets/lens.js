// membrane lens: one page, no external assets, no inline script, no eval.
// Every piece of text from the server goes into the DOM as text, never as
// HTML.
'use strict';

(function () {
  const view = document.getElementById('view');
  const statusEl = document.getElementById('status');
  const nav = document.getElementById('nav');
  const loginSec = document.getElementById('login');
  const SVG = 'http://www.w3.org/2000/svg';

  // h builds an element: h('a', {href: '#'}, 'text', child, ...).
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === undefined || kid === null || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const kid of kids.flat(Infinity)) if (kid) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return el;
  }

  const fmtTime = (t) => t ? new Date(t).toLocaleString() : '';
  const fmtClock = (t) => t ? new Date(t).toLocaleTimeString() : '';
  function fmtMS(ms) {
    if (ms === undefined || ms === null) return '';
    if (ms < 1) return (ms * 1000).toFixed(0) + ' µs';
    if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + ' ms';
    return (ms / 1000).toFixed(2) + ' s';
  }
  function fmtBytes(n) {
    if (!n) return '';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return n.toFixed(i ? 1 : 0) + ' ' + u[i];
  }
  function outcomeClass(o) {
    if (!o) return 'run';
    if (o === 'ok') return 'ok';
    if (o === 'busy' || o === 'cancelled') return 'warn';
    return 'bad';
  }
  const pill = (o) => h('span', {class: 'pill ' + outcomeClass(o), text: o || 'running'});
  const pretty = (raw) => { try { return JSON.stringify(typeof raw === 'string' ? JSON.parse(raw) : raw, null, 2); } catch (e) { return String(raw); } };

  class LoginNeeded extends Error {}

  async function api(path) {
    const r = await fetch('api/' + path, {credentials: 'same-origin', headers: {Accept: 'application/json'}});
    if (r.status === 401) { showLogin(); throw new LoginNeeded('login'); }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  // ---- login ----
  let me = null;
  function showLogin() {
    me = null;
    stopStream();
    nav.hidden = true;
    document.getElementById('logout').hidden = true;
    view.replaceChildren();
    loginSec.hidden = false;
    document.body.dataset.state = 'login';
    document.getElementById('token').focus();
  }
  document.getElementById('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = document.getElementById('login-error');
    err.textContent = '';
    const tok = document.getElementById('token');
    const r = await fetch('api/login', {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({token: tok.value})});
    tok.value = '';
    if (!r.ok) {
      const b = await r.json().catch(() => ({}));
      err.textContent = 'Refused: ' + (b.error || r.statusText);
      document.body.dataset.state = 'login-refused';
      tok.focus();
      return;
    }
    start();
  });
  document.getElementById('logout').addEventListener('click', async () => {
    await fetch('api/logout', {method: 'POST', credentials: 'same-origin'});
    showLogin();
  });

  async function start() {
    try {
      me = await api('me');
    } catch (e) {
      if (!(e instanceof LoginNeeded)) setStatus('cannot reach the server: ' + e.message);
      return;
    }
    loginSec.hidden = true;
    nav.hidden = false;
    document.getElementById('logout').hidden = !!me.open;
    document.body.dataset.state = 'ready';
    startStream();
    route();
  }

  function setStatus(t) { statusEl.textContent = t; }

  // ---- live events ----
  // The stream stays open whatever the view: the lanes keep up, and a
  // change of the tool set refreshes the tools view.
  const live = {
    lanes: new Map(), // session -> {id, client, closed, last, calls: Map(id -> call)}
    seq: 0,
    received: 0,
    resets: 0,
    lastId: '',
  };
  const MAX_LANES = 40, MAX_CARDS = 24;
  let es = null;
  let dirty = new Set();
  let frame = 0;
  let toolsChanged = 0;

  function stopStream() { if (es) { es.close(); es = null; } }
  function startStream() {
    stopStream();
    es = new EventSource('api/events' + (live.lastId ? '?after=' + encodeURIComponent(live.lastId) : ''));
    es.onopen = () => { setStatus('live'); document.body.dataset.stream = 'open'; };
    es.onerror = () => {
      document.body.dataset.stream = 'reconnecting';
      setStatus('reconnecting…');
      if (es && es.readyState === EventSource.CLOSED) {
        // The server refused the stream (a login that ended): ask again.
        api('me').then(() => setTimeout(startStream, 1000)).catch(() => {});
      }
    };
    es.addEventListener('reset', () => {
      // Events were lost while away: start the lanes over from the stream.
      live.resets++;
      document.body.dataset.resets = String(live.resets);
      for (const l of live.lanes.values()) if (l.el) l.el.remove();
      live.lanes.clear();
      schedule('*');
    });
    es.onmessage = (m) => {
      const t0 = performance.now();
      let batch;
      try { batch = JSON.parse(m.data); } catch (e) { return; }
      for (const ev of batch) apply(ev);
      live.received += batch.length;
      if (m.lastEventId) live.lastId = m.lastEventId;
      document.body.dataset.seq = String(live.seq);
      document.body.dataset.received = String(live.received);
      cost.apply += performance.now() - t0;
    };
  }

  function lane(session, client) {
    let l = live.lanes.get(session);
    if (!l) {
      l = {id: session, client: client || '', closed: false, last: 0, calls: new Map(), el: null, cards: new Map()};
      live.lanes.set(session, l);
      if (live.lanes.size > MAX_LANES) {
        // Drop the lane idle longest.
        let old = null;
        for (const x of live.lanes.values()) if (!old || x.last < old.last) old = x;
        live.lanes.delete(old.id);
        if (old.el) old.el.remove();
      }
    }
    if (client) l.client = client;
    return l;
  }

  function apply(ev) {
    if (ev.seq > live.seq) live.seq = ev.seq;
    switch (ev.type) {
      case 'session_opened': lane(ev.session, ev.client).last = ev.seq; schedule(ev.session); break;
      case 'session_closed': { const l = live.lanes.get(ev.session); if (l) { l.closed = true; l.headDirty = true; schedule(ev.session); } break; }
      case 'call_started': case 'call_progress': case 'call_finished': {
        const l = lane(ev.session || '(no session)', ev.client);
        l.last = ev.seq;
        let c = l.calls.get(ev.id);
        if (!c) {
          c = {id: ev.id, store_id: ev.store_id, call: ev.call, kind: ev.kind, started: ev.time, args: ev.args};
          l.calls.set(ev.id, c);
          if (l.calls.size > MAX_CARDS) {
            let gone = null;
            for (const [k, v] of l.calls) { if (v.outcome) { gone = k; break; } }
            if (gone === null) gone = l.calls.keys().next().value;
            l.calls.delete(gone);
          }
        }
        if (ev.type === 'call_progress') { c.progress = ev.progress; c.total = ev.total; c.message = ev.message; }
        if (ev.type === 'call_finished') {
          Object.assign(c, {outcome: ev.outcome, reason: ev.reason, dur_ms: ev.dur_ms, exit_code: ev.exit_code, killed: ev.killed, isolation: ev.isolation, model: ev.model, tokens: ev.tokens, tokens_per_s: ev.tokens_per_s});
        }
        c.dirty = true;
        schedule(l.id);
        break;
      }
      case 'tools_changed':
        toolsChanged++;
        clearTimeout(apply.toolsTimer);
        apply.toolsTimer = setTimeout(() => { if (current.view === 'tools' || current.view === 'overview' || current.view === 'tool') route(true); }, 300);
        break;
    }
  }

  // schedule marks a lane for redraw. Drawing happens at most every
  // DRAW_EVERY ms, in an animation frame, and touches only the cards that
  // changed: a burst of a thousand calls a second is coalesced into a few
  // redraws.
  // The interval grows with what a draw costs (ten times its time, up to
  // two seconds), so that a slow machine under a burst stays responsive.
  const DRAW_EVERY = 150;
  let lastDraw = 0, drawEvery = DRAW_EVERY;
  // cost counts the milliseconds spent reading events and drawing lanes,
  // for the load test (document.body.dataset.cost).
  const cost = {apply: 0, draw: 0, draws: 0};
  function schedule(id) {
    dirty.add(id);
    if (frame) return;
    const wait = Math.max(0, lastDraw + drawEvery - performance.now());
    frame = setTimeout(() => requestAnimationFrame(drawLanes), wait);
  }

  function cardText(c) {
    if (!c.outcome) {
      const el = ((Date.now() - new Date(c.started).getTime()) / 1000).toFixed(1);
      return c.message ? c.message : 'running ' + el + ' s';
    }
    const bits = [fmtMS(c.dur_ms)];
    if (c.exit_code !== undefined && c.exit_code !== null) bits.push('exit ' + c.exit_code);
    if (c.killed) bits.push('killed: ' + c.killed);
    if (c.tokens) bits.push(c.tokens + ' tokens' + (c.tokens_per_s ? ' (' + c.tokens_per_s.toFixed(1) + '/s)' : ''));
    if (c.reason) bits.push(c.reason);
    return bits.join(' · ');
  }

  function callCard(c) {
    const running = !c.outcome;
    const href = c.store_id ? '#/call/' + encodeURIComponent(c.store_id) : null;
    const msg = cardText(c);
    if (!c.clock) c.clock = fmtClock(c.started) + (c.kind ? ' · ' + c.kind : '');
    const card = h(href ? 'a' : 'div', {class: 'callcard' + (running ? ' running' : ''), href, 'data-call': c.call, 'data-id': c.id, 'data-store-id': c.store_id, 'data-outcome': c.outcome || 'running', title: msg},
      h('div', {}, h('span', {class: 'name', text: c.call}), ' ', pill(c.outcome)),
      h('div', {class: 'muted', text: c.clock}),
      h('div', {class: 'msg', text: msg}));
    if (running && c.progress) card.dataset.progress = String(c.progress);
    return card;
  }

  function laneHead(l) {
    return h('div', {class: 'lane-head'},
      h('a', {class: 'sid', href: '#/history?session=' + encodeURIComponent(l.id), text: l.id}),
      h('div', {class: 'muted', text: (l.client || 'unknown client') + (l.closed ? ' · closed' : '')}));
  }

  function drawLane(box, l, all) {
    if (!l.el || all) {
      l.callsEl = h('div', {class: 'lane-calls'});
      l.el = h('div', {class: 'lane', 'data-session': l.id, role: 'group', 'aria-label': 'session ' + l.id}, laneHead(l), l.callsEl);
      l.cards = new Map();
      for (const c of l.calls.values()) c.dirty = true;
    } else if (l.headDirty) {
      l.el.firstChild.replaceWith(laneHead(l));
    }
    l.headDirty = false;
    l.el.classList.toggle('closed', l.closed);
    // Cards of calls that left the lane go; changed ones are redrawn;
    // new ones go first (newest on the left).
    for (const [id, el] of l.cards) if (!l.calls.has(id)) { el.remove(); l.cards.delete(id); }
    for (const c of l.calls.values()) {
      if (!c.dirty) continue;
      c.dirty = false;
      const card = callCard(c);
      const old = l.cards.get(c.id);
      if (old) old.replaceWith(card); else l.callsEl.prepend(card);
      l.cards.set(c.id, card);
    }
  }

  function drawLanes() {
    frame = 0;
    const t0 = performance.now();
    lastDraw = t0;
    if (current.view !== 'live') return;
    const box = document.getElementById('lanes');
    if (!box) return;
    drawLanesIn(box);
    const d = performance.now() - t0;
    drawEvery = Math.min(2000, Math.max(DRAW_EVERY, 10 * d));
    cost.draw += d;
    cost.draws++;
    document.body.dataset.cost = JSON.stringify({apply_ms: Math.round(cost.apply), draw_ms: Math.round(cost.draw), draws: cost.draws, draw_every_ms: Math.round(drawEvery)});
  }

  function drawLanesIn(box) {
    const all = dirty.has('*') || box.dataset.drawn !== '1';
    const ids = all ? [...live.lanes.keys()] : [...dirty];
    dirty.clear();
    if (all) { box.replaceChildren(); box.dataset.drawn = '1'; }
    for (const id of ids) {
      const l = live.lanes.get(id);
      if (l) drawLane(box, l, all);
    }
    // Newest activity on top; move only what is out of place.
    const order = [...live.lanes.values()].sort((a, b) => b.last - a.last);
    let prev = null;
    for (const l of order) {
      if (!l.el) continue;
      if (prev ? prev.nextSibling !== l.el : box.firstChild !== l.el) {
        if (prev) prev.after(l.el); else box.prepend(l.el);
      }
      prev = l.el;
    }
    const empty = document.getElementById('lanes-empty');
    if (empty) empty.hidden = live.lanes.size > 0;
  }

  // Running cards show their elapsed time ticking.
  setInterval(() => {
    if (current.view !== 'live') return;
    for (const l of live.lanes.values()) for (const c of l.calls.values()) if (!c.outcome) { c.dirty = true; schedule(l.id); }
  }, 1000);

  // ---- routing ----
  const current = {view: '', arg: '', params: new URLSearchParams()};
  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const [path, query] = raw.split('?');
    const parts = path.split('/');
    return {view: parts[0] || 'overview', arg: decodeURIComponent(parts.slice(1).join('/')), params: new URLSearchParams(query || '')};
  }
  let routeGen = 0;
  async function route(refresh) {
    if (!me) return;
    const r = parseHash();
    const same = r.view === current.view && r.arg === current.arg && r.params.toString() === current.params.toString();
    Object.assign(current, r);
    for (const a of nav.querySelectorAll('a')) {
      const on = a.dataset.view === r.view || (r.view === 'tool' && a.dataset.view === 'tools') || (r.view === 'call' && a.dataset.view === 'history');
      if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const gen = ++routeGen;
    const views = {overview, tools, tool, live: liveView, history, call, plots, turns};
    const fn = views[r.view] || overview;
    try {
      const node = await fn(r, refresh && same);
      if (gen !== routeGen || !node) return;
      view.replaceChildren(node);
      view.dataset.view = r.view;
      view.dataset.route = location.hash;
      if (r.view === 'live') { dirty.add('*'); clearTimeout(frame); drawLanes(); }
      if (!performance.getEntriesByName('lens-interactive').length) performance.mark('lens-interactive');
    } catch (e) {
      if (e instanceof LoginNeeded) return;
      if (gen === routeGen) view.replaceChildren(h('p', {class: 'error', role: 'alert', text: 'Error: ' + e.message}));
    }
  }
  window.addEventListener('hashchange', () => route());

  // ---- overview ----
  let overviewTimer = 0;
  async function overview() {
    clearTimeout(overviewTimer);
    const ov = await api('overview');
    overviewTimer = setTimeout(() => { if (current.view === 'overview') route(true); }, 3000);
    const card = (k, v, id) => h('div', {class: 'card', 'data-metric': id}, h('div', {class: 'k', text: k}), h('div', {class: 'v', text: v}));
    const hosts = ov.hosts.length ? h('table', {id: 'hosts'},
      h('thead', {}, h('tr', {}, h('th', {text: 'Host'}), h('th', {text: 'State'}), h('th', {text: 'Models'}), h('th', {text: 'Loaded now'}))),
      h('tbody', {}, ov.hosts.map((x) => h('tr', {'data-host': x.url},
        h('td', {}, h('code', {text: x.url})),
        h('td', {}, h('span', {class: 'pill ' + (x.up ? 'ok' : 'bad'), text: x.up ? 'up' : 'down'}), x.error ? h('div', {class: 'muted', text: x.error}) : null),
        h('td', {text: (x.models || []).join(', ') || '—'}),
        h('td', {class: 'loaded', text: (x.loaded || []).join(', ') || (x.up ? 'none reported' : '—')})))))
      : h('p', {class: 'muted', text: 'No model hosts configured.'});
    const flights = Object.entries(ov.in_flight_by_tool || {}).sort((a, b) => b[1] - a[1]);
    const queued = Object.entries(ov.queued_by_model || {}).sort((a, b) => b[1] - a[1]);
    return h('div', {},
      h('h2', {text: 'Overview'}),
      h('div', {class: 'cards'},
        card('Tools', ov.tools, 'tools'),
        card('Sessions open', ov.sessions_open, 'sessions'),
        card('Calls in flight', ov.in_flight, 'in_flight'),
        card('Calls / min', ov.calls_per_min, 'calls_per_min'),
        card('Error rate (1 min)', (ov.error_rate * 100).toFixed(1) + ' %', 'error_rate'),
        card('Stored calls', ov.history ? ov.stored_calls : 'store off', 'stored')),
      h('h3', {text: 'Sandbox'}),
      h('dl', {class: 'kv', id: 'sandbox'}, h('dt', {text: 'mode'}), h('dd', {text: ov.sandbox.mode || 'none'}), h('dt', {text: 'isolation'}), h('dd', {text: ov.sandbox.isolation || '—'})),
      h('h3', {text: 'Model hosts'}), hosts,
      h('h3', {text: 'Queue depth (calls running or waiting, per tool)'}),
      flights.length ? h('table', {}, h('tbody', {}, flights.map(([k, v]) => h('tr', {}, h('td', {}, h('a', {href: '#/tool/' + encodeURIComponent(k), text: k})), h('td', {class: 'num', text: v})))))
        : h('p', {class: 'muted', text: 'Nothing running.'}),
      h('h3', {text: 'Waiting for a model slot, per model'}),
      queued.length ? h('table', {id: 'queued'}, h('tbody', {}, queued.map(([k, v]) => h('tr', {'data-model': k}, h('td', {text: k}), h('td', {class: 'num', text: v})))))
        : h('p', {class: 'muted', text: 'No calls waiting.'}));
  }

  // ---- tools ----
  async function tools(r) {
    const q = r.params.get('q') || '';
    const offset = Math.max(0, parseInt(r.params.get('offset') || '0', 10) || 0);
    const data = await api('tools?' + new URLSearchParams({q, offset, limit: 100}));
    const input = h('input', {type: 'search', id: 'tool-search', value: q, placeholder: 'filter tools (name, group, kind, description)', 'aria-label': 'Filter tools', size: 40});
    let t = 0;
    input.addEventListener('input', () => {
      clearTimeout(t);
      t = setTimeout(() => { location.hash = '#/tools?' + new URLSearchParams({q: input.value}); }, 250);
    });
    const groups = new Map();
    for (const row of data.tools) {
      const key = row.kind + ' · ' + (row.group || 'ungrouped');
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(row);
    }
    const body = [...groups].map(([key, rows]) => h('div', {class: 'toolgroup'}, h('h3', {text: key}),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {text: 'Tool'}), h('th', {text: 'Model'}), h('th', {text: 'Host'}), h('th', {text: 'Capabilities'}), h('th', {text: 'Size'}), h('th', {text: 'Quant.'}), h('th', {class: 'num', text: 'Context'}), h('th', {class: 'num', text: 'Running'}))),
        h('tbody', {}, rows.map((x) => h('tr', {'data-tool': x.name},
          h('td', {}, h('a', {href: '#/tool/' + encodeURIComponent(x.name), text: x.name}), h('div', {class: 'muted', text: (x.description || '').slice(0, 140)})),
          h('td', {text: x.model ? x.model.name : ''}),
          h('td', {text: x.model ? (x.model.hosts || []).join(', ') : ''}),
          h('td', {text: x.model ? (x.model.capabilities || []).join(', ') : ''}),
          h('td', {text: x.model ? (x.model.parameter_size || '') + (x.model.size ? ' (' + fmtBytes(x.model.size) + ')' : '') : ''}),
          h('td', {text: x.model ? x.model.quantization || '' : ''}),
          h('td', {class: 'num', text: x.model && x.model.context_length ? x.model.context_length : ''}),
          h('td', {class: 'num', text: x.in_flight || ''})))))));
    const pageLink = (o, label) => h('a', {href: '#/tools?' + new URLSearchParams({q, offset: o}), text: label});
    const pager = h('div', {class: 'pager'},
      offset > 0 ? pageLink(Math.max(0, offset - 100), '← previous') : null,
      h('span', {class: 'muted', id: 'tool-count', text: (data.total ? (offset + 1) + '–' + (offset + data.tools.length) : '0') + ' of ' + data.total + (q ? ' matching (' + data.all + ' in all)' : '')}),
      offset + data.tools.length < data.total ? pageLink(offset + 100, 'next →') : null);
    const node = h('div', {}, h('h2', {text: 'Tools'}), input, pager, body.length ? body : h('p', {class: 'muted', text: 'No tools match.'}), pager.cloneNode(true));
    if (document.activeElement && document.activeElement.id === 'tool-search') setTimeout(() => { const i = document.getElementById('tool-search'); if (i) { i.focus(); i.setSelectionRange(i.value.length, i.value.length); } });
    return node;
  }

  function schemaTable(schema) {
    let sc = schema;
    if (typeof sc === 'string') { try { sc = JSON.parse(sc); } catch (e) { sc = {}; } }
    const props = (sc && sc.properties) || {};
    const req = new Set((sc && sc.required) || []);
    const names = Object.keys(props);
    if (!names.length) return h('p', {class: 'muted', text: 'No arguments.'});
    const typeOf = (p) => p.type ? (Array.isArray(p.type) ? p.type.join(' | ') : p.type) + (p.items && p.items.type ? ' of ' + p.items.type : '') : (p.enum ? 'one of' : 'any');
    return h('table', {class: 'schema'}, h('thead', {}, h('tr', {}, h('th', {text: 'Argument'}), h('th', {text: 'Type'}), h('th', {text: 'Required'}), h('th', {text: 'Description'}))),
      h('tbody', {}, names.map((n) => {
        const p = props[n] || {};
        const extra = [];
        if (p.enum) extra.push('one of: ' + p.enum.join(', '));
        if (p.default !== undefined) extra.push('default: ' + JSON.stringify(p.default));
        if (p.minimum !== undefined) extra.push('min ' + p.minimum);
        if (p.maximum !== undefined) extra.push('max ' + p.maximum);
        return h('tr', {}, h('td', {text: n}), h('td', {text: typeOf(p)}), h('td', {text: req.has(n) ? 'yes' : ''}), h('td', {text: [p.description || '', extra.join('; ')].filter(Boolean).join(' — ')}));
      })));
  }

  async function tool(r) {
    const d = await api('tool?' + new URLSearchParams({name: r.arg}));
    const t = d.tool;
    const m = t.model;
    const parts = [h('p', {}, h('a', {href: '#/tools', text: '← all tools'})), h('h2', {id: 'tool-name', text: t.name}),
      h('p', {text: t.description}),
      h('dl', {class: 'kv'}, h('dt', {text: 'kind'}), h('dd', {text: t.kind}), h('dt', {text: 'group'}), h('dd', {text: t.group || '—'}),
        m ? [h('dt', {text: 'model'}), h('dd', {text: m.name}), h('dt', {text: 'hosts'}), h('dd', {text: (m.hosts || []).join(', ')}),
          h('dt', {text: 'capabilities'}), h('dd', {text: (m.capabilities || []).join(', ')}), h('dt', {text: 'size'}), h('dd', {text: (m.parameter_size || '') + ' ' + fmtBytes(m.size)}),
          h('dt', {text: 'quantization'}), h('dd', {text: m.quantization || ''}), h('dt', {text: 'context length'}), h('dd', {text: m.context_length || ''})] : null),
      h('h3', {text: 'Input schema'}), schemaTable(d.schema),
      h('details', {}, h('summary', {text: 'raw schema'}), h('pre', {text: pretty(d.schema)}))];
    if (d.latency) {
      parts.push(h('div', {class: 'grid2'},
        h('div', {}, h('h3', {text: 'Latency p50 / p99 (last 24 h)'}), latencyPlot(d.latency)),
        h('div', {}, h('h3', {text: 'Latency histogram (last 24 h)'}), histPlot(d.histogram))));
      parts.push(h('h3', {text: 'Last calls'}), callsTable(d.recent));
      parts.push(h('p', {}, h('a', {href: '#/history?tool=' + encodeURIComponent(t.name), text: 'all calls of ' + t.name + ' →'})));
    } else {
      parts.push(h('p', {class: 'muted', text: 'The trace store is off: no call history or latency.'}));
    }
    return h('div', {}, parts);
  }

  // ---- history ----
  function callsTable(rows) {
    if (!rows || !rows.length) return h('p', {class: 'muted', id: 'no-calls', text: 'No calls.'});
    return h('table', {id: 'calls'},
      h('thead', {}, h('tr', {}, h('th', {text: 'Started'}), h('th', {text: 'Tool'}), h('th', {text: 'Outcome'}), h('th', {class: 'num', text: 'Duration'}), h('th', {text: 'Session'}), h('th', {text: 'Reason'}))),
      h('tbody', {}, rows.map((c) => h('tr', {'data-id': c.id, 'data-call': c.call, 'data-outcome': c.outcome},
        h('td', {}, h('a', {href: '#/call/' + encodeURIComponent(c.id), text: fmtTime(c.started)})),
        h('td', {}, h('a', {href: '#/tool/' + encodeURIComponent(c.call), text: c.call})),
        h('td', {}, pill(c.outcome)),
        h('td', {class: 'num', text: fmtMS(c.dur_ms)}),
        h('td', {}, h('a', {href: '#/history?session=' + encodeURIComponent(c.session), text: c.session ? c.session.slice(0, 12) : ''})),
        h('td', {class: 'muted', text: c.reason || ''})))));
  }

  const toLocalInput = (iso) => { if (!iso) return ''; const d = new Date(iso); if (isNaN(d)) return ''; const p = (n) => String(n).padStart(2, '0'); return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes()); };

  async function history(r) {
    if (!me.history) return h('p', {class: 'muted', text: 'The trace store is off: there is no history to search.'});
    const p = r.params;
    const q = new URLSearchParams();
    for (const k of ['tool', 'outcome', 'session', 'since', 'until']) if (p.get(k)) q.set(k, p.get(k));
    q.set('limit', '100');
    q.set('count', '1');
    const data = await api('calls?' + q);
    const field = (name, label, el) => h('label', {}, label, el);
    const tool = h('input', {name: 'tool', value: p.get('tool') || '', size: 18, id: 'f-tool'});
    const outcome = h('select', {name: 'outcome', id: 'f-outcome'}, h('option', {value: '', text: 'any'}), ['ok', 'tool_error', 'error', 'busy', 'cancelled', 'timeout'].map((o) => h('option', {value: o, text: o, selected: p.get('outcome') === o})));
    const session = h('input', {name: 'session', value: p.get('session') || '', size: 18, id: 'f-session'});
    const since = h('input', {name: 'since', type: 'datetime-local', value: toLocalInput(p.get('since')), id: 'f-since'});
    const until = h('input', {name: 'until', type: 'datetime-local', value: toLocalInput(p.get('until')), id: 'f-until'});
    const form = h('form', {class: 'filters', id: 'history-form', role: 'search'},
      field('tool', 'Tool', tool), field('outcome', 'Outcome', outcome), field('session', 'Session', session),
      field('since', 'From (your time zone)', since), field('until', 'To', until),
      h('button', {type: 'submit', text: 'Search'}));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const n = new URLSearchParams();
      if (tool.value.trim()) n.set('tool', tool.value.trim());
      if (outcome.value) n.set('outcome', outcome.value);
      if (session.value.trim()) n.set('session', session.value.trim());
      if (since.value) n.set('since', new Date(since.value).toISOString());
      if (until.value) n.set('until', new Date(until.value).toISOString());
      const target = '#/history?' + n;
      if (location.hash === target) route(true); else location.hash = target;
    });
    const more = [];
    if (data.next) {
      const n = new URLSearchParams(p);
      n.set('until', data.next);
      more.push(h('a', {href: '#/history?' + n, id: 'older', text: 'older →'}));
    }
    return h('div', {}, h('h2', {text: 'History'}), form,
      h('p', {class: 'muted', id: 'history-count', text: (data.total !== undefined ? data.total + ' calls match' : '') + (data.calls.length < (data.total || 0) ? '; showing the newest ' + data.calls.length : '')}),
      callsTable(data.calls), h('div', {class: 'pager'}, more));
  }

  async function call(r) {
    const d = await api('call?' + new URLSearchParams({id: r.arg}));
    const c = d.call;
    let run = null, model = null;
    try { run = c.run ? (typeof c.run === 'string' ? JSON.parse(c.run) : c.run) : null; } catch (e) { run = null; }
    try { model = c.model ? (typeof c.model === 'string' ? JSON.parse(c.model) : c.model) : null; } catch (e) { model = null; }
    const kv = [['call', h('a', {href: '#/tool/' + encodeURIComponent(c.call), text: c.call})], ['kind', c.kind], ['outcome', pill(c.outcome)], ['reason', c.reason || '—'],
      ['started', fmtTime(c.started)], ['duration', fmtMS(c.dur_ms)], ['session', h('a', {href: '#/history?session=' + encodeURIComponent(c.session), text: c.session})],
      ['client', c.client || '—'], ['arguments', c.args_bytes + ' bytes, sha256 ' + (c.args_sha256 || '—')], ['result', (c.result_bytes || 0) + ' bytes (the store keeps its size, not its content)']];
    if (run) kv.push(['isolation', run.isolation || '—'], ['exit code', String(run.exit_code)], ['signal', run.signal || '—'], ['killed', run.killed || '—'], ['start-up', fmtMS(run.start_ms || 0)], ['output', (run.stdout_bytes || 0) + ' B stdout, ' + (run.stderr_bytes || 0) + ' B stderr']);
    if (model) {
      kv.push(['model', model.model + ' on ' + (model.host || '?')], ['tokens', (model.tokens_in || 0) + ' in, ' + (model.tokens_out || 0) + ' out'], ['first token', fmtMS(model.first_token_ms || 0)], ['queue wait', fmtMS(model.queue_wait_ms || 0)]);
      if (model.generation_ms) kv.push(['tokens / s', (model.tokens_out / (model.generation_ms / 1e3)).toFixed(1)]);
    }
    kv.push(['trace', c.trace_id ? (c.trace_url ? h('a', {href: c.trace_url, text: c.trace_id}) : h('code', {text: c.trace_id})) : 'no trace ID recorded for this call']);
    const images = (d.images || []).map((im) => im.src ? h('img', {class: 'callimg', src: im.src, alt: 'image passed to the call'}) : h('div', {class: 'muted', text: 'image: ' + im.name}));
    return h('div', {id: 'call-detail', 'data-id': c.id},
      h('p', {}, h('a', {href: '#/history', text: '← history'})),
      h('h2', {text: c.call + ' · ' + fmtTime(c.started)}),
      h('dl', {class: 'kv'}, kv.map(([k, v]) => [h('dt', {text: k}), h('dd', {}, v)])),
      h('h3', {text: 'Arguments (scrubbed, capped)'}), h('pre', {id: 'call-args', text: c.args ? pretty(c.args) : '(none)'}),
      images.length ? [h('h3', {text: 'Images'}), h('div', {}, images)] : null,
      h('h3', {text: 'Progress'}),
      c.events && c.events.length ? h('table', {}, h('tbody', {}, c.events.map((e) => h('tr', {}, h('td', {text: fmtClock(e.time)}), h('td', {class: 'num', text: e.progress + (e.total ? ' / ' + e.total : '')}), h('td', {}, h('code', {text: e.message || ''}))))))
        : h('p', {class: 'muted', text: 'No progress reported.'}));
  }

  // ---- live ----
  function liveView() {
    return h('div', {}, h('h2', {text: 'Live calls, one lane per session'}),
      h('p', {class: 'muted', id: 'lanes-empty', text: 'No calls yet. Calls appear here as they start.'}),
      h('div', {class: 'lanes', id: 'lanes'}));
  }

  // ---- plots ----
  function bars(items, opts) {
    const W = 640, H = 200, pad = 34;
    const n = Math.max(items.length, 1);
    const max = Math.max(1, ...items.map((x) => x.v + (x.v2 || 0)));
    const bw = (W - pad * 2) / n;
    const kids = [s('line', {class: 'axis', x1: pad, y1: H - pad, x2: W - pad, y2: H - pad})];
    kids.push(s('text', {x: 2, y: pad}, String(+max.toFixed(2))));
    items.forEach((x, i) => {
      const hh = (x.v / max) * (H - pad * 2);
      const h2 = ((x.v2 || 0) / max) * (H - pad * 2);
      const bx = pad + i * bw + 1;
      kids.push(s('rect', {class: opts.cls || 'bar-ok', x: bx, y: H - pad - hh, width: Math.max(1, bw - 2), height: hh}, s('title', {}, x.label + ': ' + x.v)));
      if (x.v2) kids.push(s('rect', {class: 'bar-bad', x: bx, y: H - pad - hh - h2, width: Math.max(1, bw - 2), height: h2}, s('title', {}, x.label + ': ' + x.v2 + ' failed')));
      if (opts.labels || n <= 12) kids.push(s('text', {x: bx, y: H - pad + 12}, String(x.label).slice(0, 14)));
    });
    return s('svg', {class: 'plot', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': opts.title}, s('title', {}, opts.title), kids);
  }

  function latencyPlot(points) {
    const W = 640, H = 200, pad = 34;
    if (!points.length) return h('p', {class: 'muted', text: 'No calls in the last 24 hours.'});
    const max = Math.max(1, ...points.map((p) => p.p99_ms));
    const x = (i) => pad + (points.length === 1 ? 0 : (i / (points.length - 1)) * (W - pad * 2));
    const y = (v) => H - pad - (v / max) * (H - pad * 2);
    const path = (k) => points.map((p, i) => (i ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(p[k]).toFixed(1)).join(' ');
    return s('svg', {class: 'plot', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'latency p50 and p99', id: 'latency-plot'},
      s('line', {class: 'axis', x1: pad, y1: H - pad, x2: W - pad, y2: H - pad}),
      s('path', {class: 'line50', d: path('p50_ms')}), s('path', {class: 'line99', d: path('p99_ms')}),
      s('text', {x: 2, y: pad}, fmtMS(max)),
      s('text', {x: pad, y: H - 8}, fmtClock(points[0].start)), s('text', {x: W - pad - 60, y: H - 8}, fmtClock(points[points.length - 1].start)),
      s('text', {x: W - 150, y: 14}, 'p50 (blue) · p99 (orange)'));
  }

  function histPlot(bins) {
    if (!bins || !bins.length) return h('p', {class: 'muted', text: 'No calls.'});
    return bars(bins.map((b) => ({label: fmtMS(b.hi_ms), v: b.n})), {title: 'latency histogram', cls: 'bar', labels: true});
  }

  async function plots(r) {
    if (!me.history) return h('p', {class: 'muted', text: 'The trace store is off: nothing to plot.'});
    const win = r.params.get('window') || '1h';
    const d = await api('stats?' + new URLSearchParams({window: win}));
    const wsel = h('select', {id: 'window', 'aria-label': 'time window'}, ['15m', '1h', '6h', '24h', '168h'].map((w) => h('option', {value: w, text: w, selected: w === win})));
    wsel.addEventListener('change', () => { location.hash = '#/plots?window=' + wsel.value; });
    const buckets = d.buckets.map((b) => ({label: fmtClock(b.start), v: b.ok, v2: b.failed}));
    const models = d.models.map((m) => ({label: m.model, v: +(m.tokens_per_s || 0).toFixed(1)}));
    const kills = Object.entries(d.kills || {}).map(([k, v]) => ({label: k, v}));
    const outs = Object.entries(d.outcomes || {}).map(([k, v]) => ({label: k, v}));
    return h('div', {}, h('h2', {text: 'Plots'}), h('label', {}, 'Window ', wsel),
      h('div', {class: 'grid2'},
        h('div', {}, h('h3', {text: 'Calls over time (green ok, red failed)'}), buckets.length ? bars(buckets, {title: 'calls over time'}) : h('p', {class: 'muted', text: 'No calls in this window.'})),
        h('div', {}, h('h3', {text: 'Tokens per second, per model'}), models.length ? bars(models, {title: 'tokens per second per model', cls: 'bar', labels: true}) : h('p', {class: 'muted', text: 'No model calls in this window.'})),
        h('div', {}, h('h3', {text: 'Sandbox kills by reason'}), kills.length ? bars(kills, {title: 'sandbox kills by reason', cls: 'bar-bad', labels: true}) : h('p', {class: 'muted', text: 'No sandbox kills in this window.'})),
        h('div', {}, h('h3', {text: 'Outcomes'}), outs.length ? bars(outs, {title: 'outcomes', cls: 'bar', labels: true}) : h('p', {class: 'muted', text: 'No calls in this window.'}))),
      h('p', {class: 'muted', text: 'Latency histograms are on each tool\'s page.'}));
  }

  // ---- orchestrator turns ----
  async function turns(r) {
    if (!me.history) return h('p', {class: 'muted', text: 'The trace store is off: no orchestrator turns are kept.'});
    if (r.arg) return turn(r.arg);
    const q = new URLSearchParams({limit: 50});
    if (r.params.get('until')) q.set('until', r.params.get('until'));
    if (r.params.get('conversation')) q.set('conversation', r.params.get('conversation'));
    const d = await api('turns?' + q);
    const rows = d.turns.length ? h('table', {id: 'turns'},
      h('thead', {}, h('tr', {}, h('th', {text: 'Started'}), h('th', {text: 'Question'}), h('th', {text: 'Model'}), h('th', {text: 'Outcome'}), h('th', {class: 'num', text: 'Steps'}), h('th', {class: 'num', text: 'Tokens in / out'}), h('th', {class: 'num', text: 'Duration'}))),
      h('tbody', {}, d.turns.map((t) => h('tr', {'data-turn': t.id, 'data-outcome': t.outcome},
        h('td', {}, h('a', {href: '#/turns/' + encodeURIComponent(t.id), text: fmtTime(t.started)})),
        h('td', {text: (t.question || '').slice(0, 160)}),
        h('td', {text: t.model || ''}),
        h('td', {}, pill(t.outcome), t.reason ? h('div', {class: 'muted', text: t.reason}) : null),
        h('td', {class: 'num', text: t.steps}),
        h('td', {class: 'num', text: t.tokens_in + ' / ' + t.tokens_out}),
        h('td', {class: 'num', text: fmtMS(t.dur_ms)})))))
      : h('p', {class: 'muted', id: 'no-turns', text: 'No orchestrator turns recorded. An orchestrator that writes to this trace store shows its turns here.'});
    const more = [];
    if (d.next) {
      const n = new URLSearchParams(r.params);
      n.set('until', d.next);
      more.push(h('a', {href: '#/turns?' + n, id: 'older-turns', text: 'older →'}));
    }
    return h('div', {}, h('h2', {text: 'Orchestrator turns'}), rows, h('div', {class: 'pager'}, more));
  }

  async function turn(id) {
    const t = (await api('turn?' + new URLSearchParams({id}))).turn;
    const kv = [['outcome', pill(t.outcome)], ['reason', t.reason || '—'], ['model', t.model || '—'], ['started', fmtTime(t.started)], ['duration', fmtMS(t.dur_ms)],
      ['model steps', String(t.steps)], ['tokens', t.tokens_in + ' in, ' + t.tokens_out + ' out'],
      ['conversation', t.conversation ? h('a', {href: '#/turns?' + new URLSearchParams({conversation: t.conversation}), text: t.conversation}) : '—'],
      ['trace', t.trace_id ? h('code', {text: t.trace_id}) : 'not traced']];
    const parts = t.parts || [];
    const steps = parts.length ? h('table', {id: 'turn-steps'},
      h('thead', {}, h('tr', {}, h('th', {class: 'num', text: 'Step'}), h('th', {text: 'Kind'}), h('th', {text: 'Name'}), h('th', {text: 'Outcome'}), h('th', {class: 'num', text: 'Duration'}), h('th', {text: 'Detail'}))),
      h('tbody', {}, parts.map((p) => h('tr', {'data-kind': p.kind, 'data-name': p.name},
        h('td', {class: 'num', text: p.step}),
        h('td', {text: p.kind}),
        h('td', {}, p.kind === 'tool' ? h('a', {href: '#/tool/' + encodeURIComponent(p.name), text: p.name}) : p.name),
        h('td', {}, p.outcome ? pill(p.outcome) : null, p.reason ? h('div', {class: 'muted', text: p.reason}) : null),
        h('td', {class: 'num', text: fmtMS(p.dur_ms)}),
        h('td', {}, p.kind === 'model'
          ? (p.tokens_in || 0) + ' in, ' + (p.tokens_out || 0) + ' out' + (p.first_token_ms ? ', first token ' + fmtMS(p.first_token_ms) : '')
          : [p.args ? h('code', {text: JSON.stringify(p.args).slice(0, 300)}) : null, p.result_bytes ? h('div', {class: 'muted', text: p.result_bytes + ' B result'}) : null])))))
      : h('p', {class: 'muted', text: 'No steps recorded.'});
    return h('div', {id: 'turn-detail', 'data-id': t.id},
      h('p', {}, h('a', {href: '#/turns', text: '← turns'})),
      h('h2', {text: 'Turn · ' + fmtTime(t.started)}),
      h('h3', {text: 'Question'}), h('pre', {id: 'turn-question', text: t.question || ''}),
      h('dl', {class: 'kv'}, kv.map(([k, v]) => [h('dt', {text: k}), h('dd', {}, v)])),
      h('h3', {text: 'Steps'}), steps,
      h('h3', {text: 'Answer'}), h('pre', {id: 'turn-answer', text: t.answer || '(no answer)'}));
  }

  // ---- keyboard ----
  // 1–6 switch views (also Alt+1–6); / focuses the view's search; j and k
  // move between the rows or cards of the view; Enter opens one.
  document.addEventListener('keydown', (ev) => {
    const t = ev.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
    if (ev.ctrlKey || ev.metaKey) return;
    const views = ['overview', 'tools', 'live', 'history', 'plots', 'turns'];
    if (ev.key >= '1' && ev.key <= '6') { location.hash = '#/' + views[+ev.key - 1]; ev.preventDefault(); return; }
    if (ev.key === '/') {
      const i = view.querySelector('input');
      if (i) { i.focus(); ev.preventDefault(); }
      return;
    }
    if (ev.key === 'j' || ev.key === 'k') {
      const links = [...view.querySelectorAll('tbody tr a:first-child, a.callcard')];
      if (!links.length) return;
      let i = links.indexOf(document.activeElement);
      i = ev.key === 'j' ? Math.min(links.length - 1, i + 1) : Math.max(0, i - 1);
      links[i].focus();
      ev.preventDefault();
    }
  });

  start();
})();
