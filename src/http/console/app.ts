// The console's client code: plain ES2019 run by the browser as one inline script (allowed by
// its hash in the Content-Security-Policy). It is a template string so that the package ships
// it without a front-end build; hence no backticks and no dollar-brace in it. Every value from
// the server reaches the DOM through textContent, attributes set by name, or SVG text nodes:
// never innerHTML, never a string evaluated as code.
export const APP_SCRIPT = String.raw`(function () {
  'use strict';
  var BASE = document.documentElement.getAttribute('data-base') || '';
  var KEY_NAME = 'taskctl.key:' + BASE;
  var STATES = ['pending', 'queued', 'running', 'pausing', 'paused', 'stopping', 'stopped', 'succeeded', 'failed', 'skipped'];
  var TERMINAL = { stopped: 1, succeeded: 1, failed: 1, skipped: 1 };
  var ACTIONS = ['pause', 'resume', 'stop', 'rerun'];
  var main = document.getElementById('main');
  var session = null;
  var current = null;
  var knownTasks = {};

  // ---------------------------------------------------------------- DOM helpers
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { for (var i = 0; i < child.length; i++) append(node, child[i]); return; }
    if (typeof child === 'object' && child.nodeType) { node.appendChild(child); return; }
    node.appendChild(document.createTextNode(String(child)));
  }
  var PROPS = { value: 1, checked: 1, disabled: 1, selected: 1, hidden: 1, open: 1 };
  function setProps(node, props) {
    if (!props) return;
    Object.keys(props).forEach(function (k) {
      var v = props[k];
      if (v === null || v === undefined) return;
      if (k === 'text') node.textContent = String(v);
      else if (k === 'class') node.setAttribute('class', v);
      else if (k.slice(0, 2) === 'on' && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else if (PROPS[k]) node[k] = v;
      else if (v === false) return;
      else node.setAttribute(k, v === true ? '' : String(v));
    });
  }
  function el(tag, props) {
    var node = document.createElement(tag);
    setProps(node, props);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  var SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var node = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function safeClass(s) { return String(s).replace(/[^a-z_-]/gi, ''); }
  function badge(state) { return el('span', { class: 'badge s-' + safeClass(state), 'data-state': state, text: state }); }
  function pill(kind, text) { return el('span', { class: 'badge b-' + safeClass(kind), 'data-state': kind, text: text || kind }); }
  function shortId(id) { return id ? String(id).slice(-8) : ''; }
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function fmtTime(iso) {
    if (!iso) return '';
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function fmtDate(iso) {
    if (!iso) return '';
    var m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(String(iso));
    if (!m) return String(iso);
    var zone = m[5] === 'Z' ? ' UTC' : m[5] ? ' ' + m[5] : '';
    return m[1] + (m[2] === '00:00' && (!m[3] || m[3] === ':00') ? '' : ' ' + m[2]) + zone;
  }
  function pretty(v) { try { return JSON.stringify(v, null, 2); } catch (e) { return String(v); } }
  function cap(s) { return s.charAt(0).toUpperCase() + s.slice(1); }
  function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }
  function td(content, props) { return el('td', props || null, content); }
  function th(text, props) { return el('th', props || null, text); }
  function instLink(id) { return el('a', { href: '#/instance/' + encodeURIComponent(id), class: 'mono', title: id, text: shortId(id) }); }
  function field(label, input, cls) { return el('label', { class: 'field' + (cls ? ' ' + cls : '') }, label, input); }
  function select(options, value, props) {
    var s = el('select', props || null);
    options.forEach(function (o) {
      var v = Array.isArray(o) ? o[0] : o;
      var label = Array.isArray(o) ? o[1] : o;
      s.appendChild(el('option', { value: v, text: label }));
    });
    s.value = value;
    return s;
  }
  function describeTarget(t) {
    if (!t || typeof t !== 'object') return String(t);
    if (t.instanceId) return 'instance ' + shortId(t.instanceId);
    if (t.instanceIds) return plural(t.instanceIds.length, 'instance', 'instances');
    if (t.taskId) return 'task ' + t.taskId;
    if (t.group) return 'group ' + t.group;
    if (t.backfillId) return 'backfill ' + shortId(t.backfillId);
    if (t.all) return 'everything';
    return pretty(t);
  }
  function rememberTask(taskId) {
    if (!taskId || knownTasks[taskId]) return;
    knownTasks[taskId] = true;
    document.getElementById('dl-tasks').appendChild(el('option', { value: taskId }));
  }
  function debounce(fn, ms) {
    var t = null;
    return function () { if (t) return; t = setTimeout(function () { t = null; fn(); }, ms); };
  }

  // ---------------------------------------------------------------- API
  function key() { try { return sessionStorage.getItem(KEY_NAME) || ''; } catch (e) { return ''; } }
  function headers(extra) {
    var h = extra || {};
    var k = key();
    if (k) h.Authorization = 'Bearer ' + k;
    return h;
  }
  function api(method, path, body) {
    var init = { method: method, headers: headers({ Accept: 'application/json' }), credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(BASE + '/api' + path, init).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (res.status === 401) signedOut();
        if (!res.ok) {
          var err = new Error((data && data.message) || ('HTTP ' + res.status));
          err.status = res.status;
          err.code = data && data.code;
          throw err;
        }
        return data;
      });
    });
  }
  function errText(err) { return (err && err.code ? err.code + ': ' : '') + (err && err.message ? err.message : String(err)); }

  // ---------------------------------------------------------------- chrome
  function toast(text, bad) {
    var t = el('div', { class: 'toast' + (bad ? ' bad' : ''), role: 'status', text: text });
    document.getElementById('toasts').appendChild(t);
    setTimeout(function () { t.remove(); }, bad ? 8000 : 4500);
  }
  function banner(text) {
    var b = document.getElementById('banner');
    b.textContent = text || '';
    b.hidden = !text;
  }
  var isSignedOut = false;
  function signedOut() {
    if (isSignedOut) return;
    isSignedOut = true;
    stopEvents();
    banner('You are signed out (the server refused the credentials). Use Sign out, then sign in again.');
  }
  document.getElementById('signout').addEventListener('click', function () {
    try { sessionStorage.removeItem(KEY_NAME); } catch (e) { /* storage disabled */ }
    stopEvents();
    location.replace(BASE + '/');
  });

  // ---------------------------------------------------------------- live events (SSE over fetch)
  var ev = { ctrl: null, retryMs: 1000, last: 0, watchdog: null, timer: null, connected: false, stopped: false };
  function setLive(on) {
    ev.connected = on;
    var l = document.getElementById('live');
    l.className = 'live ' + (on ? 'on' : 'off');
    l.textContent = on ? 'live' : 'offline';
  }
  function stopEvents() {
    ev.stopped = true;
    if (ev.ctrl) ev.ctrl.abort();
    clearTimeout(ev.timer);
    clearInterval(ev.watchdog);
    setLive(false);
  }
  function connectEvents(isRetry) {
    if (ev.stopped) return;
    var ctrl = new AbortController();
    ev.ctrl = ctrl;
    ev.last = Date.now();
    fetch(BASE + '/api/events', { headers: headers({ Accept: 'text/event-stream' }), credentials: 'same-origin', cache: 'no-store', signal: ctrl.signal })
      .then(function (res) {
        if (res.status === 401) { signedOut(); throw new Error('unauthenticated'); }
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        setLive(true);
        ev.retryMs = 1000;
        if (isRetry && current && current.refresh) current.refresh();
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buf = '';
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) throw new Error('stream ended');
            ev.last = Date.now();
            buf += decoder.decode(r.value, { stream: true });
            var idx;
            while ((idx = buf.indexOf('\n\n')) >= 0) {
              var frame = buf.slice(0, idx);
              buf = buf.slice(idx + 2);
              onFrame(frame);
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        if (ev.ctrl !== ctrl) return;
        setLive(false);
        if (ev.stopped) return;
        ev.timer = setTimeout(function () { connectEvents(true); }, ev.retryMs);
        ev.retryMs = Math.min(ev.retryMs * 2, 15000);
      });
  }
  function onFrame(frame) {
    var type = 'message';
    var data = [];
    frame.split('\n').forEach(function (line) {
      if (!line || line.charAt(0) === ':') return;
      var i = line.indexOf(':');
      var name = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (name === 'event') type = value;
      else if (name === 'data') data.push(value);
    });
    if (!data.length) return;
    var payload;
    try { payload = JSON.parse(data.join('\n')); } catch (e) { return; }
    if (type === 'transition' || type === 'backfill') rememberTask(payload.taskId);
    if (current && current.onEvent) {
      try { current.onEvent(type, payload); } catch (e) { /* a view's bug must not stop the stream */ }
    }
  }
  function startWatchdog() {
    var hb = (session && session.heartbeatMs) || 15000;
    ev.watchdog = setInterval(function () {
      if (ev.connected && Date.now() - ev.last > hb * 2 + 5000 && ev.ctrl) ev.ctrl.abort();
    }, Math.min(hb, 10000));
  }

  // ---------------------------------------------------------------- router
  function parseHash() {
    var h = location.hash.replace(/^#\/?/, '');
    var q = h.indexOf('?');
    var path = q >= 0 ? h.slice(0, q) : h;
    var parts = path.split('/').filter(Boolean).map(function (p) { try { return decodeURIComponent(p); } catch (e) { return p; } });
    return { parts: parts, params: new URLSearchParams(q >= 0 ? h.slice(q + 1) : '') };
  }
  function route() {
    if (current && current.dispose) current.dispose();
    var r = parseHash();
    var name = r.parts[0] || 'instances';
    var view;
    if (name === 'instance' && r.parts[1]) view = instanceView(r.parts[1]);
    else if (name === 'backfills') view = backfillsView();
    else if (name === 'audit') view = auditView(r.params);
    else if (name === 'approvals') view = approvalsView(r.params);
    else if (name === 'metrics') view = metricsView();
    else { name = 'instances'; view = instancesView(r.params); }
    var tab = name === 'instance' ? 'instances' : name;
    Array.prototype.forEach.call(document.querySelectorAll('#nav a'), function (a) {
      a.classList.toggle('active', a.getAttribute('data-tab') === tab);
    });
    current = view;
    clear(main);
    main.appendChild(view.node);
    document.title = cap(tab) + ' · taskctl';
  }
  window.addEventListener('hashchange', route);

  // ---------------------------------------------------------------- confirmation dialog with dry run
  function dialog(title) {
    var body = el('div', { class: 'dlg' });
    var d = el('dialog', { 'aria-label': title }, body);
    document.body.appendChild(d);
    d.addEventListener('close', function () { d.remove(); });
    return { node: d, body: body };
  }
  function confirmCommand(action, target, opts) {
    opts = opts || {};
    var what = describeTarget(target);
    var dlg = dialog(cap(action) + ' ' + what);
    dlg.node.classList.add('confirm');
    dlg.node.setAttribute('data-action', action);
    var o = {};
    var optBox = el('div', { class: 'opts' });
    function onOpt(name, value) { o[name] = value; preview(); }
    if (action === 'pause') {
      optBox.appendChild(field('Mode', select([['graceful', 'graceful (wait for a pause point)'], ['force', 'force (abort the work now)']], 'graceful', { name: 'mode', onchange: function (e) { onOpt('mode', e.target.value === 'force' ? 'force' : undefined); } })));
    } else if (action === 'resume') {
      optBox.appendChild(field('Strategy', select([['continue', 'continue from the checkpoint'], ['restart', 'restart (drop the checkpoint)'], ['skip', 'skip (end as skipped)']], 'continue', { name: 'strategy', onchange: function (e) { onOpt('strategy', e.target.value === 'continue' ? undefined : e.target.value); } })));
    } else if (action === 'stop') {
      optBox.appendChild(el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'force', onchange: function (e) { onOpt('force', e.target.checked || undefined); } }), 'force (no grace period)'));
    } else if (action === 'rerun') {
      optBox.appendChild(el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'downstream', onchange: function (e) { onOpt('downstream', e.target.checked || undefined); } }), 'downstream too (dependent tasks, same logical date)'));
      if (!target.instanceId) optBox.appendChild(el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'onlyFailed', onchange: function (e) { onOpt('onlyFailed', e.target.checked || undefined); } }), 'only failed / stopped'));
    }
    var impact = el('div', { class: 'impact', 'aria-live': 'polite' }, el('p', { class: 'muted', text: 'Computing the impact (dry run)…' }));
    var reason = el('input', { type: 'text', name: 'reason', maxlength: '10000', placeholder: 'why — recorded in the audit trail' });
    var error = el('p', { class: 'error', role: 'alert' });
    var ok = el('button', { type: 'button', class: action === 'stop' ? 'danger' : 'primary', 'data-confirm': action, disabled: true, text: cap(action) });
    var cancel = el('button', { type: 'button', text: 'Cancel', onclick: function () { dlg.node.close(); } });
    append(dlg.body, [
      el('h2', { text: cap(action) + ' ' + what + '?' }),
      optBox,
      el('h3', { text: 'Impact (dry run — nothing changed yet)' }),
      impact,
      field('Reason', reason, 'wide'),
      error,
      el('div', { class: 'buttons' }, cancel, ok),
    ]);
    var seq = 0;
    function body(dry) {
      var b = { target: target };
      Object.keys(o).forEach(function (k) { if (o[k] !== undefined) b[k] = o[k]; });
      if (dry) b.dryRun = true;
      else if (reason.value.trim()) b.reason = reason.value.trim();
      return b;
    }
    function preview() {
      var mine = ++seq;
      ok.disabled = true;
      error.textContent = '';
      api('POST', '/commands/' + action, body(true)).then(function (res) {
        if (mine !== seq) return;
        renderImpact(impact, res, target, opts.known || {});
        ok.disabled = false;
      }, function (err) {
        if (mine !== seq) return;
        clear(impact);
        error.textContent = errText(err);
      });
    }
    ok.addEventListener('click', function () {
      ok.disabled = true;
      api('POST', '/commands/' + action, body(false)).then(function (res) {
        dlg.node.close();
        if (res.status === 'awaiting_approval') toast(cap(action) + ' is awaiting approval by a second person (command ' + shortId(res.commandId) + ').');
        else if (res.status === 'scheduled') toast(cap(action) + ' scheduled (command ' + shortId(res.commandId) + ').');
        else toast(cap(action) + ': ' + res.applied.filter(function (a) { return a.changed; }).length + ' changed, ' + res.rejected.length + ' rejected.');
        if (opts.onDone) opts.onDone(res);
      }, function (err) {
        ok.disabled = false;
        error.textContent = errText(err);
      });
    });
    dlg.node.showModal();
    preview();
  }
  function renderImpact(box, res, target, known) {
    clear(box);
    var changed = res.applied.filter(function (a) { return a.changed; });
    var same = res.applied.filter(function (a) { return !a.changed; });
    var explicit = {};
    (target.instanceIds || (target.instanceId ? [target.instanceId] : [])).forEach(function (id) { explicit[id] = true; });
    var explicitTarget = !!(target.instanceIds || target.instanceId);
    var moves = {};
    changed.forEach(function (a) { var k = a.from + ' → ' + a.to; moves[k] = (moves[k] || 0) + 1; });
    var summary = el('div', { class: 'summary' },
      el('span', { class: 'stat changes', 'data-stat': 'changes' }, el('b', { text: String(changed.length) }), changed.length === 1 ? 'instance changes' : 'instances change'),
      same.length ? el('span', { class: 'stat' }, el('b', { text: String(same.length) }), 'already there') : null,
      res.rejected.length ? el('span', { class: 'stat bad' }, el('b', { text: String(res.rejected.length) }), 'rejected') : null,
      Object.keys(moves).map(function (k) { return el('span', { class: 'stat' }, el('b', { text: String(moves[k]) }), k); }));
    box.appendChild(summary);
    if (!res.applied.length && !res.rejected.length) { box.appendChild(el('p', { class: 'muted', text: 'Nothing would change.' })); return; }
    var info = res.instances || {};
    var tbody = el('tbody');
    var rows = 0;
    function addRow(id, from, to, note, cls) {
      if (rows++ >= 200) return;
      var i = info[id] || known[id] || {};
      tbody.appendChild(el('tr', { class: cls || '', 'data-id': id },
        td(instLink(id)), td(i.taskId || ''), td(fmtDate(i.logicalDate)),
        td([badge(from), to ? el('span', { class: 'arrow', text: '→' }) : null, to ? badge(to) : null]),
        td(note)));
    }
    res.applied.forEach(function (a) {
      var notes = [];
      if (!a.changed) notes.push(el('span', { class: 'tag', text: 'unchanged' }));
      if (explicitTarget && !explicit[a.instanceId]) notes.push(el('span', { class: 'tag down', text: 'downstream' }));
      addRow(a.instanceId, a.from, a.to, notes, a.changed ? 'change' : 'same');
    });
    res.rejected.forEach(function (r) {
      var i = info[r.instanceId] || {};
      addRow(r.instanceId, i.state || '?', null, el('span', { class: 'error', text: r.code + ': ' + r.message }), 'rejected');
    });
    box.appendChild(el('div', { class: 'scroll' }, el('table', { class: 'grid' },
      el('thead', null, el('tr', null, th('Instance'), th('Task'), th('Logical date'), th('From → to'), th(''))), tbody)));
    if (rows > 200) box.appendChild(el('p', { class: 'muted', text: '… and ' + (rows - 200) + ' more' }));
  }
  function simpleConfirm(title, text, okLabel, danger) {
    return new Promise(function (resolve) {
      var dlg = dialog(title);
      var reason = el('input', { type: 'text', name: 'reason', maxlength: '10000', placeholder: 'why — recorded in the audit trail' });
      var done = false;
      var ok = el('button', { type: 'button', class: danger ? 'danger' : 'primary', 'data-confirm': 'ok', text: okLabel, onclick: function () { done = true; dlg.node.close(); resolve({ reason: reason.value.trim() }); } });
      append(dlg.body, [el('h2', { text: title }), el('p', { text: text }), field('Reason', reason, 'wide'),
        el('div', { class: 'buttons' }, el('button', { type: 'button', text: 'Cancel', onclick: function () { dlg.node.close(); } }), ok)]);
      dlg.node.addEventListener('close', function () { if (!done) resolve(null); });
      dlg.node.showModal();
    });
  }

  // ---------------------------------------------------------------- instances
  function instancesView(params) {
    var filter = {
      taskId: params.get('taskId') || '', group: params.get('group') || '', backfillId: params.get('backfillId') || '',
      state: (params.get('state') || '').split(',').filter(function (s) { return STATES.indexOf(s) >= 0; }),
      limit: Number(params.get('limit')) || 50,
    };
    var cursors = [''];
    var next = null;
    var rows = {};
    var selected = {};
    var fresh = 0;

    var taskIn = el('input', { name: 'taskId', value: filter.taskId, list: 'dl-tasks', placeholder: 'any task', size: '16' });
    var groupIn = el('input', { name: 'group', value: filter.group, placeholder: 'any group', size: '12' });
    var bfIn = el('input', { name: 'backfillId', value: filter.backfillId, placeholder: 'any backfill', size: '14' });
    var sizeSel = select(['25', '50', '100', '200'], String(filter.limit), { name: 'limit' });
    var stateBoxes = STATES.map(function (s) {
      return el('label', { class: 'chip' }, el('input', { type: 'checkbox', name: 'state', value: s, checked: filter.state.indexOf(s) >= 0 }), badge(s));
    });
    var form = el('form', { class: 'filters', onsubmit: function (e) { e.preventDefault(); apply(); } },
      field('Task', taskIn), field('Group', groupIn), field('Backfill', bfIn),
      el('fieldset', { class: 'states' }, el('legend', { text: 'State' }), stateBoxes),
      field('Page size', sizeSel),
      el('button', { type: 'submit', class: 'primary', text: 'Apply' }),
      el('button', { type: 'button', text: 'Clear', onclick: function () { location.hash = '#/instances'; } }));
    function apply() {
      var q = new URLSearchParams();
      if (taskIn.value.trim()) q.set('taskId', taskIn.value.trim());
      if (groupIn.value.trim()) q.set('group', groupIn.value.trim());
      if (bfIn.value.trim()) q.set('backfillId', bfIn.value.trim());
      var st = stateBoxes.map(function (l) { return l.querySelector('input'); }).filter(function (c) { return c.checked; }).map(function (c) { return c.value; });
      if (st.length) q.set('state', st.join(','));
      if (sizeSel.value !== '50') q.set('limit', sizeSel.value);
      var h = '#/instances' + (q.toString() ? '?' + q.toString() : '');
      if (location.hash === h) load(); else location.hash = h;
    }

    var selCount = el('span', { class: 'sel-count', text: '0 selected' });
    var buttons = ACTIONS.map(function (a) {
      return el('button', { type: 'button', class: 'act', 'data-action': a, disabled: true, text: cap(a) + '…', onclick: function () {
        var ids = Object.keys(selected);
        if (!ids.length) return;
        var known = {};
        ids.forEach(function (id) { if (rows[id]) known[id] = rows[id].instance; });
        confirmCommand(a, { instanceIds: ids }, { known: known, onDone: function () { selected = {}; syncSelection(); } });
      } });
    });
    var noticeText = el('span');
    var notice = el('span', { class: 'notice', hidden: true }, noticeText, ' ', el('button', { type: 'button', class: 'small', text: 'Reload', onclick: function () { load(); } }));
    var batch = el('div', { class: 'batch' }, selCount, buttons, el('span', { class: 'spacer' }), notice);

    var allBox = el('input', { type: 'checkbox', 'aria-label': 'select every instance on this page', onchange: function () {
      Object.keys(rows).forEach(function (id) { if (allBox.checked) selected[id] = true; else delete selected[id]; });
      syncSelection();
    } });
    var tbody = el('tbody');
    var table = el('table', { class: 'grid instances' },
      el('thead', null, el('tr', null, el('th', { class: 'sel' }, allBox), th('Instance'), th('Task'), th('Group'), th('Logical date'), th('State'), th('Attempt', { class: 'num' }), th('Progress'), th('Updated'))),
      tbody);
    var pageLabel = el('span', { class: 'muted' });
    var prevBtn = el('button', { type: 'button', text: '‹ Previous', onclick: function () { if (cursors.length > 1) { cursors.pop(); load(); } } });
    var nextBtn = el('button', { type: 'button', text: 'Next ›', onclick: function () { if (next) { cursors.push(next); load(); } } });
    var pager = el('div', { class: 'pager' }, pageLabel, prevBtn, nextBtn);
    var counts = el('div', { class: 'row muted counts-all' });

    function syncSelection() {
      var n = Object.keys(selected).length;
      selCount.textContent = n + ' selected';
      buttons.forEach(function (b) { b.disabled = n === 0; });
      Object.keys(rows).forEach(function (id) {
        var r = rows[id];
        r.box.checked = !!selected[id];
        r.tr.classList.toggle('selected', !!selected[id]);
      });
      var ids = Object.keys(rows);
      allBox.checked = ids.length > 0 && ids.every(function (id) { return selected[id]; });
    }
    function progressText(p) {
      if (!p) return '';
      return p.total ? p.done + ' / ' + p.total : String(p.done);
    }
    function addRow(i) {
      rememberTask(i.taskId);
      var box = el('input', { type: 'checkbox', 'aria-label': 'select instance ' + i.id, checked: !!selected[i.id], onchange: function () {
        if (box.checked) selected[i.id] = true; else delete selected[i.id];
        syncSelection();
      } });
      var stateCell = el('td', { class: 'state-cell' }, badge(i.state));
      var attemptCell = td(String(i.attempt), { class: 'num' });
      var updatedCell = td(fmtTime(i.updatedAt));
      var progressCell = td(progressText(i.progress));
      var tr = el('tr', { 'data-id': i.id, 'data-task': i.taskId },
        el('td', { class: 'sel' }, box), td(instLink(i.id)), td(i.taskId), td(i.group || ''), td(fmtDate(i.logicalDate)),
        stateCell, attemptCell, progressCell, updatedCell);
      rows[i.id] = { tr: tr, box: box, instance: i, stateCell: stateCell, attemptCell: attemptCell, updatedCell: updatedCell };
      tbody.appendChild(tr);
    }
    function load() {
      var q = new URLSearchParams();
      if (filter.taskId) q.set('taskId', filter.taskId);
      if (filter.group) q.set('group', filter.group);
      if (filter.backfillId) q.set('backfillId', filter.backfillId);
      if (filter.state.length) q.set('state', filter.state.join(','));
      q.set('limit', String(filter.limit));
      var cursor = cursors[cursors.length - 1];
      if (cursor) q.set('cursor', cursor);
      fresh = 0;
      notice.hidden = true;
      return api('GET', '/instances?' + q.toString()).then(function (page) {
        rows = {};
        clear(tbody);
        page.items.forEach(addRow);
        if (!page.items.length) tbody.appendChild(el('tr', null, el('td', { colspan: '9', class: 'empty', text: 'No instances match these filters.' })));
        next = page.cursor || null;
        pageLabel.textContent = 'Page ' + cursors.length + ' · ' + plural(page.items.length, 'instance', 'instances') + (next ? '' : ' · last page');
        prevBtn.disabled = cursors.length <= 1;
        nextBtn.disabled = !next;
        syncSelection();
      }, function (err) {
        clear(tbody);
        tbody.appendChild(el('tr', null, el('td', { colspan: '9', class: 'empty error', text: errText(err) })));
      });
    }
    function loadCounts() {
      if (!session.features.metrics) return;
      api('GET', '/metrics').then(function (m) {
        clear(counts);
        if (!m || !m.instances) return;
        counts.appendChild(el('span', { text: 'All instances:' }));
        STATES.forEach(function (s) {
          if (!m.instances[s]) return;
          counts.appendChild(el('a', { href: '#/instances?state=' + s, title: 'show ' + s }, badge(s), ' ' + m.instances[s]));
        });
      }, function () { /* counts are optional */ });
    }
    var recount = debounce(loadCounts, 2000);
    function matches(e) {
      if (filter.taskId && e.taskId !== filter.taskId) return false;
      if (filter.backfillId && e.backfillId !== filter.backfillId) return false;
      if (filter.state.length && filter.state.indexOf(e.to) < 0) return false;
      return true;
    }
    function onTransition(e) {
      var r = rows[e.instanceId];
      recount();
      if (!r) {
        if (e.from === 'none' && matches(e) && !filter.group) {
          fresh++;
          notice.hidden = false;
          noticeText.textContent = plural(fresh, 'new instance', 'new instances') + ' since this page loaded';
        }
        return;
      }
      r.instance.state = e.to;
      r.instance.attempt = e.attempt;
      clear(r.stateCell);
      r.stateCell.appendChild(badge(e.to));
      r.attemptCell.textContent = String(e.attempt);
      r.updatedCell.textContent = fmtTime(e.at);
      r.tr.classList.remove('flash');
      void r.tr.offsetWidth;
      r.tr.classList.add('flash');
      r.tr.classList.toggle('stale', filter.state.length > 0 && filter.state.indexOf(e.to) < 0);
    }
    load();
    loadCounts();
    var node = el('section', { class: 'view', 'data-view': 'instances' },
      el('div', { class: 'panel' }, form), counts, batch, table, pager);
    return { node: node, refresh: function () { load(); loadCounts(); }, onEvent: function (type, data) { if (type === 'transition') onTransition(data); } };
  }

  // ---------------------------------------------------------------- instance page
  function instanceView(id) {
    var node = el('section', { class: 'view', 'data-view': 'instance' }, el('p', { class: 'muted', text: 'Loading…' }));
    var reload = debounce(load, 150);
    function load() {
      api('GET', '/instances/' + encodeURIComponent(id)).then(render, function (err) {
        clear(node);
        node.appendChild(el('div', { class: 'panel' }, el('h2', { text: 'Instance ' + id }), el('p', { class: 'error', text: errText(err) }), el('a', { href: '#/instances', text: '← all instances' })));
      });
    }
    function render(d) {
      var i = d.instance;
      rememberTask(i.taskId);
      clear(node);
      var known = {};
      known[i.id] = i;
      var actions = el('div', { class: 'row' }, ACTIONS.map(function (a) {
        return el('button', { type: 'button', 'data-action': a, text: cap(a) + '…', onclick: function () { confirmCommand(a, { instanceId: i.id }, { known: known, onDone: load }); } });
      }));
      var kv = el('dl', { class: 'kv' });
      function row(k, v) { if (v === undefined || v === null || v === '') return; kv.appendChild(el('dt', { text: k })); kv.appendChild(el('dd', null, v)); }
      row('Instance', el('span', { class: 'mono', text: i.id }));
      row('Task', i.taskId);
      row('Group', i.group);
      row('Logical date', i.logicalDate);
      row('State', badge(i.state));
      row('Attempt', String(i.attempt));
      if (i.backfillId) row('Backfill', el('a', { href: '#/instances?backfillId=' + encodeURIComponent(i.backfillId), class: 'mono', text: i.backfillId }));
      if (i.progress) row('Progress', i.progress.total ? i.progress.done + ' / ' + i.progress.total : String(i.progress.done));
      row('Created', fmtTime(i.createdAt));
      row('Updated', fmtTime(i.updatedAt));
      row('Started', fmtTime(i.startedAt));
      row('Ended', fmtTime(i.endedAt));
      if (i.lease) row('Running on', i.lease.owner);
      var left = el('div', null,
        el('div', { class: 'panel' }, kv),
        el('div', { class: 'panel' }, el('h3', { text: 'Attempts' }), attemptsTable(d.audit, i)));
      var right = el('div', null,
        el('div', { class: 'panel' }, el('h3', { text: 'Params' }), el('pre', { class: 'json', 'data-field': 'params', text: pretty(i.params) }),
          i.error ? [el('h3', { text: 'Error' }), el('pre', { class: 'json', 'data-field': 'error', text: i.error.code + ': ' + i.error.message })] : null,
          i.result !== undefined ? [el('h3', { text: 'Result' }), el('pre', { class: 'json', text: pretty(i.result) })] : null,
          i.checkpoint !== undefined ? [el('h3', { text: 'Checkpoint' }), el('pre', { class: 'json', text: pretty(i.checkpoint) })] : null));
      append(node, [
        el('div', { class: 'row between' }, el('h2', null, 'Instance ', el('span', { class: 'mono', text: i.id }), ' ', badge(i.state)), actions),
        el('div', { class: 'panel diagram-panel' }, el('h3', { text: 'State machine — current state highlighted' }), el('div', { class: 'diagram' }, drawDiagram(d.diagram))),
        el('div', { class: 'detail' }, left, right),
        el('div', { class: 'panel' }, el('h3', { text: 'Timeline' }), timelineTable(d.audit),
          el('details', null, el('summary', { text: 'as text' }), el('pre', { class: 'text', text: d.timeline })))
      ]);
    }
    function attemptsTable(audit, inst) {
      var byAttempt = {};
      var order = [];
      audit.forEach(function (e) {
        if (e.kind !== 'transition') return;
        var n = e.attempt || 1;
        var a = byAttempt[n];
        if (!a) { a = byAttempt[n] = { n: n, first: e.at, start: null, end: null, final: e.to, path: [] }; order.push(n); }
        a.final = e.to;
        if (e.to === 'running' && !a.start) a.start = e.at;
        if (TERMINAL[e.to]) a.end = e.at;
        a.path.push(e.to);
      });
      var tbody = el('tbody');
      order.forEach(function (n) {
        var a = byAttempt[n];
        tbody.appendChild(el('tr', { 'data-attempt': String(n) }, td(String(n), { class: 'num' }), td(fmtTime(a.start || a.first)), td(fmtTime(a.end)), td(badge(a.final)),
          td(a.path.join(' → '), { class: 'muted' }),
          td(n === inst.attempt && inst.error ? inst.error.code : '')));
      });
      if (!order.length) tbody.appendChild(el('tr', null, el('td', { colspan: '6', class: 'empty', text: 'No attempts recorded.' })));
      return el('table', { class: 'grid' }, el('thead', null, el('tr', null, th('#'), th('Started'), th('Ended'), th('Outcome'), th('Path'), th('Error'))), tbody);
    }
    load();
    return { node: node, refresh: load, onEvent: function (type, e) {
      if (type === 'transition' && e.instanceId === id) reload();
      else if (type === 'command' && (e.applied.some(function (a) { return a.instanceId === id; }) || e.rejected.some(function (r) { return r.instanceId === id; }))) reload();
    } };
  }
  function auditWhat(e) {
    if (e.kind === 'transition') return [badge(e.from === 'none' ? 'new' : e.from), el('span', { class: 'arrow', text: '→' }), badge(e.to), el('span', { class: 'muted', text: '  ' + (e.event || '') })];
    if (e.kind === 'command') {
      var r = e.result || {};
      if (r.denied) return [el('b', { text: e.action || '' }), el('span', { class: 'error', text: ' denied: ' + (r.message || '') })];
      var parts = [el('b', { text: e.action || '' }), ' ', e.target ? describeTarget(e.target) : ''];
      if (r.status && r.status !== 'completed') parts.push(' ', pill(r.status === 'awaiting_approval' ? 'awaiting' : r.status, r.status));
      if (r.applied) parts.push(el('span', { class: 'muted', text: ' — ' + r.applied.filter(function (a) { return a.changed; }).length + ' changed' + (r.rejected && r.rejected.length ? ', ' + r.rejected.length + ' rejected' : '') }));
      return parts;
    }
    return [el('b', { text: 'late result' }), el('span', { class: 'muted', text: ' ignored: ' + pretty(e.result) })];
  }
  function timelineTable(entries, showInstance) {
    var tbody = el('tbody');
    entries.forEach(function (e) {
      tbody.appendChild(el('tr', { 'data-kind': e.kind },
        td(fmtTime(e.at), { class: 'mono' }), td(e.actor), td(e.kind),
        showInstance ? td(e.instanceId ? instLink(e.instanceId) : (e.instanceIds && e.instanceIds.length ? plural(e.instanceIds.length, 'instance', 'instances') : '')) : null,
        td(auditWhat(e)), td(e.reason || '', { class: 'reason' })));
    });
    if (!entries.length) tbody.appendChild(el('tr', null, el('td', { colspan: showInstance ? '6' : '5', class: 'empty', text: 'No entries.' })));
    return el('table', { class: 'grid timeline' }, el('thead', null, el('tr', null, th('Time'), th('Actor'), th('Kind'), showInstance ? th('Instance') : null, th('What'), th('Reason'))), tbody);
  }

  // ---------------------------------------------------------------- state diagram (from the Mermaid text)
  // Known states have hand-placed positions; states the table adds later are laid out in a row
  // below. Edges that every member of a cluster shares (running/pausing, the terminal states)
  // are drawn once from the cluster, and moves back to the start of the flow arc over the top.
  var LAYOUT = {
    '[*]': [36, 250], pending: [175, 125], queued: [320, 250], paused: [320, 420], pausing: [545, 130], running: [545, 250],
    stopping: [730, 340], succeeded: [930, 110], failed: [930, 200], stopped: [930, 300], skipped: [930, 420], '[*]end': [1062, 265],
  };
  var CLUSTERS = { active: ['running', 'pausing'], terminal: ['succeeded', 'failed', 'stopped', 'skipped'] };
  var ROUTES = {
    'terminal>queued': { arc: 28 }, 'terminal>pending': { arc: 52 }, 'paused>stopped': { bend: -70 }, 'paused>skipped': { bend: -40 },
    '[*]>paused': { bend: -30 }, 'pending>paused': { bend: 0 }, 'paused>pending': { bend: -50 }, 'pending>stopped': { arc: 76 }, 'queued>stopped': { bend: -90 },
    'active>paused': { bend: -30 }, 'active>stopped': { bend: 10 }, 'running>queued': { bend: 22 }, 'queued>running': { bend: 22 },
  };
  var NODE_W = 108;
  var NODE_H = 34;
  function parseMermaid(text) {
    var edges = [];
    var current = null;
    var styles = {};
    String(text || '').split('\n').forEach(function (line) {
      var m = /^\s*(\S+)\s*-->\s*(\S+)\s*(?::\s*(.*))?$/.exec(line);
      if (m) { edges.push({ from: m[1], to: m[2] === '[*]' ? '[*]end' : m[2], labels: m[3] ? m[3].split(/,\s*/) : [] }); return; }
      var c = /^\s*class\s+(\S+)\s+current\s*$/.exec(line);
      if (c) { current = c[1]; return; }
      var d = /^\s*classDef\s+current\s+(.*)$/.exec(line);
      if (d) d[1].split(',').forEach(function (kv) { var p = kv.split(':'); if (p.length === 2) styles[p[0].trim()] = p[1].trim(); });
    });
    return { edges: edges, current: current, styles: styles };
  }
  function boxOf(name, pos, clusters) {
    if (clusters[name]) return clusters[name];
    var p = pos[name];
    if (name === '[*]') return { x: p[0], y: p[1], w: 18, h: 18 };
    if (name === '[*]end') return { x: p[0], y: p[1], w: 22, h: 22 };
    return { x: p[0], y: p[1], w: NODE_W, h: NODE_H };
  }
  function clip(b, tx, ty) {
    var dx = tx - b.x, dy = ty - b.y;
    if (!dx && !dy) return [b.x, b.y];
    var sx = dx ? (b.w / 2 + 3) / Math.abs(dx) : Infinity;
    var sy = dy ? (b.h / 2 + 3) / Math.abs(dy) : Infinity;
    var s = Math.min(sx, sy);
    return [b.x + dx * s, b.y + dy * s];
  }
  function f1(n) { return n.toFixed(1); }
  function drawDiagram(text) {
    var g = parseMermaid(text);
    var pos = {};
    Object.keys(LAYOUT).forEach(function (k) { pos[k] = LAYOUT[k]; });
    var extra = 0;
    g.edges.forEach(function (e) {
      [e.from, e.to].forEach(function (n) { if (!pos[n]) { pos[n] = [110 + (extra % 7) * 150, 500]; extra++; } });
    });
    var height = extra ? 540 : 470;
    // merge duplicate edges, then bundle what a whole cluster shares
    var byKey = {};
    var list = [];
    function add(from, to, labels, members) {
      var k = from + '>' + to;
      var e = byKey[k];
      if (!e) { e = byKey[k] = { from: from, to: to, labels: [], members: members || null }; list.push(e); }
      labels.forEach(function (l) { if (e.labels.indexOf(l) < 0) e.labels.push(l); });
      return e;
    }
    g.edges.forEach(function (e) { add(e.from, e.to, e.labels); });
    var clusters = {};
    Object.keys(CLUSTERS).forEach(function (name) {
      var members = CLUSTERS[name];
      if (!members.every(function (m) { return pos[m] && list.some(function (e) { return e.from === m || e.to === m; }); })) return;
      var xs = members.map(function (m) { return pos[m][0]; }), ys = members.map(function (m) { return pos[m][1]; });
      var x0 = Math.min.apply(null, xs) - NODE_W / 2 - 12, x1 = Math.max.apply(null, xs) + NODE_W / 2 + 12;
      var y0 = Math.min.apply(null, ys) - NODE_H / 2 - 12, y1 = Math.max.apply(null, ys) + NODE_H / 2 + 12;
      var targets = {};
      list.forEach(function (e) { if (members.indexOf(e.from) >= 0 && members.indexOf(e.to) < 0) (targets[e.to] = targets[e.to] || []).push(e); });
      var bundled = false;
      Object.keys(targets).forEach(function (t) {
        var es = targets[t];
        if (es.length !== members.length) return;
        bundled = true;
        var labels = [];
        es.forEach(function (e) { e.labels.forEach(function (l) { if (labels.indexOf(l) < 0) labels.push(l); }); list.splice(list.indexOf(e), 1); delete byKey[e.from + '>' + e.to]; });
        add(name, t, labels, members);
      });
      if (bundled) clusters[name] = { x: (x0 + x1) / 2, y: (y0 + y1) / 2, w: x1 - x0, h: y1 - y0, members: members, name: name };
    });
    function involves(end) { return end === g.current || (clusters[end] && clusters[end].members.indexOf(g.current) >= 0); }

    var root = svg('svg', { viewBox: '0 0 1100 ' + height, role: 'img', 'aria-label': 'state diagram, current state ' + (g.current || 'none'), 'data-current': g.current || '' });
    var defs = svg('defs', {});
    [['arrow', '#94a3b8'], ['arrow-out', '#e65100'], ['arrow-in', '#475569']].forEach(function (m) {
      defs.appendChild(svg('marker', { id: m[0], viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' }, svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: m[1] })));
    });
    root.appendChild(defs);
    var clusterLayer = svg('g', {});
    Object.keys(clusters).forEach(function (name) {
      var c = clusters[name];
      clusterLayer.appendChild(svg('rect', { class: 'cluster', x: f1(c.x - c.w / 2), y: f1(c.y - c.h / 2), width: f1(c.w), height: f1(c.h), rx: 14 }));
      clusterLayer.appendChild(svg('text', { class: 'cluster-label', x: f1(c.x - c.w / 2 + 8), y: f1(c.y + c.h / 2 - 6) }, name));
    });
    root.appendChild(clusterLayer);
    var edgeLayer = svg('g', {});
    var labelLayer = svg('g', {});
    list.sort(function (a, b) { return rank(a) - rank(b); });
    function rank(e) { return involves(e.from) ? 2 : involves(e.to) ? 1 : 0; }
    list.forEach(function (e) {
      var A = boxOf(e.from, pos, clusters), B = boxOf(e.to, pos, clusters);
      var key = e.from + '>' + e.to;
      var route = ROUTES[key] || {};
      var d, lx, ly;
      if (route.arc) {
        var top = route.arc;
        var p1 = [A.x + (B.x < A.x ? -A.w / 4 : A.w / 4), A.y - A.h / 2 - 3];
        var p2 = [B.x + (B.x < A.x ? 12 : -12), B.y - B.h / 2 - 3];
        d = 'M' + f1(p1[0]) + ',' + f1(p1[1]) + ' C' + f1(p1[0]) + ',' + top + ' ' + f1(p2[0]) + ',' + top + ' ' + f1(p2[0]) + ',' + f1(p2[1]);
        lx = (p1[0] + p2[0]) / 2; ly = 0.125 * p1[1] + 0.375 * top + 0.375 * top + 0.125 * p2[1] - 4;
      } else {
        var dx = B.x - A.x, dy = B.y - A.y;
        var len = Math.sqrt(dx * dx + dy * dy) || 1;
        var bend = route.bend !== undefined ? route.bend : (byKey[e.to + '>' + e.from] ? 18 : 8);
        var cx = (A.x + B.x) / 2 - (dy / len) * bend, cy = (A.y + B.y) / 2 + (dx / len) * bend;
        var q1 = e.from === '[*]' ? clip({ x: A.x, y: A.y, w: 14, h: 14 }, cx, cy) : clip(A, cx, cy);
        var q2 = clip(B, cx, cy);
        d = 'M' + f1(q1[0]) + ',' + f1(q1[1]) + ' Q' + f1(cx) + ',' + f1(cy) + ' ' + f1(q2[0]) + ',' + f1(q2[1]);
        lx = 0.25 * q1[0] + 0.5 * cx + 0.25 * q2[0]; ly = 0.25 * q1[1] + 0.5 * cy + 0.25 * q2[1] - 5;
      }
      var kind = involves(e.from) ? 'out' : involves(e.to) ? 'in' : '';
      var path = svg('path', { class: 'edge ' + kind, d: d, 'marker-end': 'url(#' + (kind === 'out' ? 'arrow-out' : kind === 'in' ? 'arrow-in' : 'arrow') + ')', 'data-from': e.from, 'data-to': e.to });
      var who = e.members ? e.from + ' (' + e.members.join(', ') + ')' : e.from;
      path.appendChild(svg('title', {}, who.replace('[*]', 'start') + ' → ' + e.to.replace('[*]end', 'end') + (e.labels.length ? ': ' + e.labels.join(', ') : '')));
      edgeLayer.appendChild(path);
      if (kind === 'out' && e.labels.length) labelLayer.appendChild(svg('text', { class: 'label', x: f1(lx), y: f1(ly) }, e.labels.join(', ')));
    });
    root.appendChild(edgeLayer);
    var nodeLayer = svg('g', {});
    Object.keys(pos).forEach(function (n) {
      var p = pos[n];
      if (!g.edges.some(function (e) { return e.from === n || e.to === n; })) return;
      if (n === '[*]') { nodeLayer.appendChild(svg('circle', { class: 'pseudo', cx: p[0], cy: p[1], r: 9 }, svg('title', {}, 'start'))); return; }
      if (n === '[*]end') {
        nodeLayer.appendChild(svg('g', {}, svg('circle', { class: 'pseudo-end', cx: p[0], cy: p[1], r: 11 }), svg('circle', { class: 'pseudo', cx: p[0], cy: p[1], r: 6 }), svg('title', {}, 'end')));
        return;
      }
      var rect = svg('rect', { x: p[0] - NODE_W / 2, y: p[1] - NODE_H / 2, width: NODE_W, height: NODE_H, rx: 17 });
      if (n === g.current) {
        rect.style.fill = /^#[0-9a-f]{3,8}$/i.test(g.styles.fill || '') ? g.styles.fill : '#ffd54f';
        rect.style.stroke = /^#[0-9a-f]{3,8}$/i.test(g.styles.stroke || '') ? g.styles.stroke : '#e65100';
        rect.style.strokeWidth = String(parseFloat(g.styles['stroke-width'] || '3') || 3);
      }
      nodeLayer.appendChild(svg('g', { class: 'node' + (TERMINAL[n] ? ' terminal' : '') + (n === g.current ? ' current' : ''), 'data-state': n }, rect, svg('text', { x: p[0], y: p[1] }, n)));
    });
    root.appendChild(nodeLayer);
    root.appendChild(labelLayer);
    root.appendChild(svg('text', { class: 'legend', x: 16, y: height - 10 }, 'Orange: moves out of the current state, with their events. Dark dashed: moves into it. Boxes group states that share moves. Hover an arrow for its events.'));
    return root;
  }

  // ---------------------------------------------------------------- backfills
  function doneOf(b) { var c = b.counts || {}; return (c.succeeded || 0) + (c.failed || 0) + (c.skipped || 0) + (c.stopped || 0); }
  function backfillsView() {
    var today = new Date();
    var weekAgo = new Date(today.getTime() - 6 * 86400000);
    function day(d) { return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()); }
    var f = {
      taskId: el('input', { name: 'taskId', list: 'dl-tasks', required: true, placeholder: 'task id' }),
      from: el('input', { name: 'from', value: day(weekAgo), placeholder: 'ISO date, e.g. 2024-01-01' }),
      to: el('input', { name: 'to', value: day(today), placeholder: 'ISO date (inclusive)' }),
      mode: select([['serial', 'serial (one at a time)'], ['parallel', 'parallel']], 'serial', { name: 'mode' }),
      concurrency: el('input', { name: 'concurrency', type: 'number', min: '1', max: '10000', value: '4', disabled: true }),
      reprocess: select([['none', 'none — skip dates that ran'], ['failed', 'failed — rerun failed/stopped'], ['all', 'all — rerun every date']], 'none', { name: 'reprocess' }),
      params: el('textarea', { name: 'params', placeholder: 'params as JSON (optional), e.g. {"rows": 100}' }),
      reason: el('input', { name: 'reason', placeholder: 'why — recorded in the audit trail' }),
    };
    var previewBtn = el('button', { type: 'submit', class: 'primary', 'data-do': 'preview', text: 'Preview (dry run)' });
    var startBtn = el('button', { type: 'button', 'data-do': 'start', disabled: true, text: 'Start backfill' });
    var error = el('p', { class: 'error', role: 'alert' });
    var previewBox = el('div', { class: 'bf-preview', 'data-preview': '' });
    var planned = null;
    f.mode.addEventListener('change', function () { f.concurrency.disabled = f.mode.value !== 'parallel'; invalidate(); });
    Object.keys(f).forEach(function (k) { if (k !== 'mode') f[k].addEventListener('input', invalidate); });
    function invalidate() { planned = null; startBtn.disabled = true; }
    function body(dry) {
      var b = { taskId: f.taskId.value.trim(), from: f.from.value.trim(), to: f.to.value.trim(), mode: f.mode.value, reprocess: f.reprocess.value };
      if (f.mode.value === 'parallel') b.concurrency = Number(f.concurrency.value) || 1;
      if (f.params.value.trim()) b.params = JSON.parse(f.params.value);
      if (dry) b.dryRun = true;
      else if (f.reason.value.trim()) b.reason = f.reason.value.trim();
      return b;
    }
    var form = el('form', { class: 'bf-form', onsubmit: function (e) {
      e.preventDefault();
      error.textContent = '';
      var b;
      try { b = body(true); } catch (err) { error.textContent = 'params: not valid JSON'; return; }
      api('POST', '/backfills', b).then(function (res) { planned = b; renderPreview(res); startBtn.disabled = false; }, function (err) { clear(previewBox); error.textContent = errText(err); });
    } },
      field('Task', f.taskId), field('From (inclusive)', f.from), field('To (inclusive)', f.to), field('Mode', f.mode), field('Concurrency', f.concurrency), field('Reprocess', f.reprocess),
      field('Params', f.params, 'span2'), field('Reason', f.reason, 'span2'),
      el('div', { class: 'row actions' }, previewBtn, startBtn));
    startBtn.addEventListener('click', function () {
      if (!planned) return;
      var b = body(false);
      startBtn.disabled = true;
      api('POST', '/backfills', b).then(function (res) {
        toast('Backfill ' + shortId(res.id) + ' started: ' + plural(res.status.total, 'slot', 'slots') + '.');
        clear(previewBox);
        planned = null;
        upsert(Object.assign({ controllable: true, from: b.from, to: b.to, mode: b.mode, reprocess: b.reprocess }, res.status));
      }, function (err) { startBtn.disabled = false; error.textContent = errText(err); });
    });
    function renderPreview(res) {
      clear(previewBox);
      var p = res.plan || {};
      previewBox.appendChild(el('p', null, el('b', { 'data-total': String(p.total), text: plural(p.total || 0, 'slot', 'slots') }),
        ' in range: ' + (p.wouldCreate || 0) + ' to create, ' + (p.wouldRerun || 0) + ' to rerun, ' + (p.wouldSkip || 0) + ' to skip.'));
      if (p.byPolicy) {
        var tb = el('tbody');
        ['none', 'failed', 'all'].forEach(function (k) {
          var c = p.byPolicy[k];
          if (!c) return;
          tb.appendChild(el('tr', { class: k === f.reprocess.value ? 'on' : '', 'data-policy': k }, td(k + (k === f.reprocess.value ? ' (chosen)' : '')), td(String(c.wouldCreate), { class: 'num' }), td(String(c.wouldRerun), { class: 'num' }), td(String(c.wouldSkip), { class: 'num' })));
        });
        previewBox.appendChild(el('table', { class: 'grid policy' }, el('thead', null, el('tr', null, th('Reprocess policy'), th('Create', { class: 'num' }), th('Rerun', { class: 'num' }), th('Skip', { class: 'num' }))), tb));
      }
      var slots = res.preview || [];
      var shown = slots.slice(0, 24);
      previewBox.appendChild(el('h3', { text: 'Schedule (run order)' }));
      previewBox.appendChild(el('div', { class: 'slots mono' }, shown.map(function (s) { return el('span', { text: '#' + s.index + ' ' + fmtDate(s.logicalDate) }); }),
        (p.total || 0) > shown.length ? el('span', { class: 'muted', text: '… ' + ((p.total || 0) - shown.length) + ' more' }) : null));
    }
    var list = el('div', { class: 'bf-list' });
    var cards = {};
    function upsert(b) {
      var c = cards[b.id];
      if (!c) {
        c = cards[b.id] = backfillCard(b);
        list.insertBefore(c.node, list.firstChild);
        var empty = list.querySelector('.empty');
        if (empty) empty.remove();
      }
      c.update(b);
    }
    function load() {
      api('GET', '/backfills').then(function (res) {
        clear(list);
        cards = {};
        res.items.slice().reverse().forEach(upsert);
        if (!res.items.length) list.appendChild(el('p', { class: 'muted empty', text: 'No backfills yet.' }));
      }, function (err) { clear(list); list.appendChild(el('p', { class: 'error', text: errText(err) })); });
    }
    load();
    var node = el('section', { class: 'view', 'data-view': 'backfills' },
      el('div', { class: 'panel' }, el('h2', { text: 'New backfill' }), form, error, previewBox),
      el('h2', { text: 'Backfills' }), list);
    return { node: node, refresh: load, onEvent: function (type, s) {
      if (type !== 'backfill') return;
      if (cards[s.id]) cards[s.id].update(s);
      else upsert(s);
    } };
  }
  function backfillCard(b) {
    var info = { controllable: b.controllable !== false };
    var bar = el('progress', { max: '1', value: '0', 'aria-label': 'backfill progress' });
    var pct = el('span', { class: 'pct' });
    var stateBox = el('span');
    var counts = el('div', { class: 'counts' });
    var btns = {};
    ['pause', 'resume', 'cancel'].forEach(function (op) {
      btns[op] = el('button', { type: 'button', class: 'small' + (op === 'cancel' ? ' danger' : ''), 'data-op': op, text: cap(op), onclick: function () {
        var go = op === 'cancel'
          ? simpleConfirm('Cancel backfill ' + shortId(b.id) + '?', 'Its unfinished instances are stopped and no more dates are created. This cannot be undone.', 'Cancel backfill', true)
          : Promise.resolve({});
        go.then(function (ok) {
          if (!ok) return;
          api('POST', '/backfills/' + encodeURIComponent(b.id) + '/' + op, {}).then(function (s) { update(s); toast('Backfill ' + shortId(b.id) + ': ' + s.state); }, function (err) { toast(errText(err), true); });
        });
      } });
    });
    var range = el('div', { class: 'range' });
    var node = el('article', { class: 'bf-card', 'data-backfill': b.id },
      el('header', null, el('span', null, el('span', { class: 'task', text: b.taskId }), ' ', el('span', { class: 'mono muted', title: b.id, text: shortId(b.id) })), stateBox),
      range,
      el('div', { class: 'progress' }, bar, pct),
      counts,
      el('div', { class: 'buttons' }, btns.pause, btns.resume, btns.cancel,
        el('a', { href: '#/instances?backfillId=' + encodeURIComponent(b.id), class: 'small', text: 'instances →' })));
    function update(s) {
      if (s.controllable !== undefined) info.controllable = s.controllable;
      var done = doneOf(s);
      var total = s.total || 0;
      bar.max = Math.max(total, 1);
      bar.value = done;
      bar.setAttribute('data-done', String(done));
      pct.textContent = done + ' / ' + total + ' done (' + (total ? Math.floor((done / total) * 100) : 100) + '%)';
      clear(stateBox);
      stateBox.appendChild(pill(s.state));
      clear(counts);
      STATES.forEach(function (st) { if (s.counts && s.counts[st]) counts.appendChild(el('span', null, badge(st), ' ' + s.counts[st] + ' ')); });
      var active = s.state === 'running' || s.state === 'paused';
      btns.pause.disabled = !info.controllable || s.state !== 'running';
      btns.resume.disabled = !info.controllable || s.state !== 'paused';
      btns.cancel.disabled = !info.controllable || !active;
      if (!info.controllable && active) btns.pause.title = btns.resume.title = btns.cancel.title = 'driven by another process';
      if (s.from) range.textContent = fmtDate(s.from) + ' → ' + fmtDate(s.to) + ' · ' + (s.mode || '') + (s.mode === 'parallel' ? ' ×' + s.concurrency : '') + ' · reprocess ' + (s.reprocess || 'none') + (s.actor ? ' · by ' + s.actor : '');
    }
    return { node: node, update: update };
  }

  // ---------------------------------------------------------------- audit
  function auditView(params) {
    var names = ['instanceId', 'actor', 'action', 'taskId', 'backfillId'];
    var inputs = {};
    names.forEach(function (n) { inputs[n] = el('input', { name: n, value: params.get(n) || '', size: n === 'instanceId' || n === 'backfillId' ? '26' : '12', list: n === 'taskId' ? 'dl-tasks' : null }); });
    var kind = select([['', 'any'], ['command', 'command'], ['transition', 'transition'], ['late_result', 'late result']], params.get('kind') || '', { name: 'kind' });
    var limit = select(['100', '200', '500', '1000'], params.get('limit') || '200', { name: 'limit' });
    var live = el('input', { type: 'checkbox', checked: true });
    var form = el('form', { class: 'filters', onsubmit: function (e) {
      e.preventDefault();
      var q = new URLSearchParams();
      names.forEach(function (n) { if (inputs[n].value.trim()) q.set(n, inputs[n].value.trim()); });
      if (kind.value) q.set('kind', kind.value);
      if (limit.value !== '200') q.set('limit', limit.value);
      var h = '#/audit' + (q.toString() ? '?' + q.toString() : '');
      if (location.hash === h) load(); else location.hash = h;
    } }, field('Instance', inputs.instanceId), field('Actor', inputs.actor), field('Action', inputs.action), field('Task', inputs.taskId), field('Backfill', inputs.backfillId), field('Kind', kind), field('Newest', limit),
      el('button', { type: 'submit', class: 'primary', text: 'Apply' }), el('label', { class: 'check chip' }, live, 'follow live'));
    var out = el('div');
    function load() {
      var q = new URLSearchParams();
      names.forEach(function (n) { if (params.get(n)) q.set(n, params.get(n)); });
      if (params.get('kind')) q.set('kind', params.get('kind'));
      q.set('limit', params.get('limit') || '200');
      api('GET', '/audit?' + q.toString()).then(function (res) {
        clear(out);
        out.appendChild(el('p', { class: 'muted', text: plural(res.items.length, 'entry', 'entries') + ', newest first' }));
        out.appendChild(timelineTable(res.items.slice().reverse(), true));
      }, function (err) { clear(out); out.appendChild(el('p', { class: 'error', text: errText(err) })); });
    }
    var again = debounce(load, 1000);
    load();
    var node = el('section', { class: 'view', 'data-view': 'audit' }, el('div', { class: 'panel' }, form), out);
    return { node: node, refresh: load, onEvent: function () { if (live.checked) again(); } };
  }

  // ---------------------------------------------------------------- approvals
  function approvalsView(params) {
    var node = el('section', { class: 'view', 'data-view': 'approvals' });
    if (!session.features.approvals) {
      node.appendChild(el('div', { class: 'panel' }, el('h2', { text: 'Approvals' }), el('p', { class: 'muted', text: 'This controller has no approvals (it needs a taskctl with governance).' })));
      return { node: node };
    }
    var state = select([['awaiting', 'awaiting'], ['approved', 'approved'], ['rejected', 'rejected'], ['expired', 'expired'], ['', 'all']], params.has('state') ? params.get('state') : 'awaiting', { name: 'state', onchange: function () {
      location.hash = '#/approvals?state=' + encodeURIComponent(state.value);
    } });
    var out = el('div');
    function val(o, names) { for (var i = 0; i < names.length; i++) { var v = o && o[names[i]]; if (v !== undefined && v !== null && v !== '') return v; } return undefined; }
    function load() {
      api('GET', '/approvals' + (state.value ? '?state=' + encodeURIComponent(state.value) : '')).then(function (res) {
        clear(out);
        var tbody = el('tbody');
        res.items.forEach(function (a) {
          var id = val(a, ['commandId', 'id']);
          var st = val(a, ['state', 'status']) || '';
          var stKind = st === 'awaiting_approval' ? 'awaiting' : st;
          var opts = a.options || {};
          var reason = val(a, ['reason']) || opts.reason || '';
          var decided = val(a, ['decidedBy']);
          var buttons = null;
          if (stKind === 'awaiting') {
            buttons = el('div', { class: 'row' },
              el('button', { type: 'button', class: 'small primary', 'data-decide': 'approve', text: 'Approve…', onclick: function () { decide(a, id, 'approve'); } }),
              el('button', { type: 'button', class: 'small', 'data-decide': 'reject', text: 'Reject…', onclick: function () { decide(a, id, 'reject'); } }));
          }
          tbody.appendChild(el('tr', { 'data-command': id },
            td(fmtTime(val(a, ['createdAt', 'requestedAt', 'at']))), td(val(a, ['actor', 'requestedBy']) || ''), td(el('b', { text: val(a, ['action']) || '' })),
            td(describeTarget(a.target)), td(reason, { class: 'reason' }), td(pill(stKind || 'awaiting', st)),
            td(fmtTime(val(a, ['expiresAt', 'dueAt']))), td(decided ? decided + (a.decisionReason ? ': ' + a.decisionReason : '') : ''), td(buttons)));
        });
        if (!res.items.length) tbody.appendChild(el('tr', null, el('td', { colspan: '9', class: 'empty', text: 'No requests.' })));
        out.appendChild(el('table', { class: 'grid approvals' }, el('thead', null, el('tr', null, th('Requested'), th('By'), th('Action'), th('Target'), th('Reason'), th('State'), th('Expires'), th('Decided by'), th(''))), tbody));
      }, function (err) { clear(out); out.appendChild(el('p', { class: 'error', text: errText(err) })); });
    }
    function decide(a, id, decision) {
      var by = val(a, ['actor', 'requestedBy']) || 'someone';
      simpleConfirm(cap(decision) + ' ' + (a.action || 'command') + ' of ' + describeTarget(a.target) + '?',
        'Requested by ' + by + '. ' + (decision === 'approve' ? 'Approving applies the command now, as the original command.' : 'Rejecting ends the request; nothing changes.'),
        cap(decision), decision === 'reject').then(function (ok) {
        if (!ok) return;
        var body = ok.reason ? { reason: ok.reason } : {};
        api('POST', '/approvals/' + encodeURIComponent(id) + '/' + decision, body).then(function () { toast(cap(decision) + 'd command ' + shortId(id) + '.'); load(); }, function (err) { toast(errText(err), true); });
      });
    }
    var again = debounce(load, 500);
    load();
    node.appendChild(el('div', { class: 'panel row' }, el('h2', { text: 'Approvals' }), field('State', state)));
    node.appendChild(out);
    return { node: node, refresh: load, onEvent: function (type) { if (type === 'command') again(); } };
  }

  // ---------------------------------------------------------------- metrics
  function metricsView() {
    var node = el('section', { class: 'view', 'data-view': 'metrics' });
    if (!session.features.metrics) {
      node.appendChild(el('div', { class: 'panel' }, el('h2', { text: 'Metrics' }), el('p', { class: 'muted', text: 'This controller has no metrics() (it needs a taskctl with governance).' })));
      return { node: node };
    }
    var out = el('div');
    function card(k, v) { return el('div', { class: 'card', 'data-metric': k }, el('div', { class: 'v', text: String(v === undefined ? '–' : v) }), el('div', { class: 'k', text: k })); }
    function ms(v) { return typeof v === 'number' ? (v < 10 ? v.toFixed(2) : v.toFixed(0)) + ' ms' : ''; }
    function load() {
      api('GET', '/metrics').then(function (m) {
        clear(out);
        out.appendChild(el('div', { class: 'cards' }, card('running here', m.running), card('queued for here', m.queueLength), card('commands in flight', m.inFlightCommands), card('transitions seen', m.transitions)));
        var tb = el('tbody');
        Object.keys(m.commands || {}).forEach(function (a) {
          var c = m.commands[a];
          var l = c.latencyMs || {};
          tb.appendChild(el('tr', { 'data-action': a }, td(el('b', { text: a })), td(String(c.total), { class: 'num' }), td(String(c.applied), { class: 'num' }), td(String(c.rejected), { class: 'num' }), td(String(c.denied), { class: 'num' }), td(String(c.awaitingApproval), { class: 'num' }), td(ms(l.p50), { class: 'num' }), td(ms(l.p95), { class: 'num' }), td(ms(l.p99), { class: 'num' })));
        });
        if (!tb.firstChild) tb.appendChild(el('tr', null, el('td', { colspan: '9', class: 'empty', text: 'No commands yet.' })));
        out.appendChild(el('div', { class: 'panel' }, el('h3', { text: 'Commands' }), el('table', { class: 'grid' }, el('thead', null, el('tr', null, th('Action'), th('Total', { class: 'num' }), th('Applied', { class: 'num' }), th('Rejected', { class: 'num' }), th('Denied', { class: 'num' }), th('Awaiting', { class: 'num' }), th('p50', { class: 'num' }), th('p95', { class: 'num' }), th('p99', { class: 'num' }))), tb)));
        var inst = m.instances || {};
        var max = 1;
        STATES.forEach(function (s) { max = Math.max(max, inst[s] || 0); });
        var bars = el('div', { class: 'bars' });
        STATES.forEach(function (s) {
          var b = el('div', { class: 'bar s-' + s });
          b.style.width = Math.max(0.5, ((inst[s] || 0) / max) * 100) + '%';
          append(bars, [el('a', { href: '#/instances?state=' + s }, badge(s)), el('div', null, b), el('span', { class: 'num', text: String(inst[s] || 0) })]);
        });
        out.appendChild(el('div', { class: 'panel' }, el('h3', { text: 'Instances per state (whole store)' }), bars));
      }, function (err) { clear(out); out.appendChild(el('p', { class: 'error', text: errText(err) })); });
    }
    load();
    var timer = setInterval(load, 5000);
    node.appendChild(el('h2', { text: 'Metrics' }));
    node.appendChild(out);
    return { node: node, refresh: load, dispose: function () { clearInterval(timer); } };
  }

  // ---------------------------------------------------------------- start
  api('GET', '/session').then(function (s) {
    session = s;
    document.getElementById('who').textContent = s.actor;
    if (!s.features.approvals) document.querySelector('#nav a[data-tab=approvals]').classList.add('unavailable');
    if (!s.features.metrics) document.querySelector('#nav a[data-tab=metrics]').classList.add('unavailable');
    route();
    connectEvents(false);
    startWatchdog();
  }, function (err) {
    banner('The console could not start: ' + errText(err));
  });
})();`;
