import { createHash } from 'node:crypto';
import { APP_SCRIPT } from './app.js';
import { STYLE } from './style.js';

// The operator console: one dependency-free page, shipped inside the package as strings (the
// host runs no front-end build). Everything the page shows is put into the DOM with
// textContent/createElement, never innerHTML; on top of that the Content-Security-Policy only
// lets these exact scripts and this stylesheet run (hashes), so an injected handler would be
// refused even if escaping ever failed.

/**
 * The sign-in shell, served with 401 to a request that `authenticate` refuses. It holds no data
 * and no console code: it asks for the API key, keeps it in sessionStorage (this tab only), and
 * loads the console with `Authorization: Bearer <key>`, replacing itself with the answer.
 */
const LOGIN_SCRIPT = String.raw`(function () {
  'use strict';
  var base = document.documentElement.getAttribute('data-base') || '';
  var storeKey = 'taskctl.key:' + base;
  var form = document.getElementById('signin');
  var input = document.getElementById('key');
  var msg = document.getElementById('msg');
  function open(key, auto) {
    msg.textContent = auto ? 'Opening the console…' : 'Checking the key…';
    var headers = { Accept: 'text/html' };
    if (key) headers.Authorization = 'Bearer ' + key;
    fetch(base + '/', { headers: headers, credentials: 'same-origin', cache: 'no-store' }).then(function (res) {
      if (res.status === 200) {
        return res.text().then(function (html) {
          try { if (key) sessionStorage.setItem(storeKey, key); } catch (e) { /* storage disabled */ }
          document.open();
          document.write(html);
          document.close();
        });
      }
      try { sessionStorage.removeItem(storeKey); } catch (e) { /* storage disabled */ }
      msg.textContent = res.status === 401 ? 'That key was not accepted.' : 'The server answered ' + res.status + '.';
      input.focus();
    }, function () {
      msg.textContent = 'The server could not be reached.';
    });
  }
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var key = input.value.trim();
    if (key) open(key, false);
  });
  var saved = null;
  try { saved = sessionStorage.getItem(storeKey); } catch (e) { /* storage disabled */ }
  if (saved) open(saved, true);
  else input.focus();
})();`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

for (const [name, code] of [['LOGIN_SCRIPT', LOGIN_SCRIPT], ['APP_SCRIPT', APP_SCRIPT], ['STYLE', STYLE]]) {
  if (/<\/(script|style)/i.test(code)) throw new Error(`taskctl/http: ${name} must not contain a closing tag`);
}

/**
 * The Content-Security-Policy of both pages: only these two scripts and this stylesheet (by
 * hash), requests to this origin only, no frames, no forms posting anywhere, no plugins.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${sha256(LOGIN_SCRIPT)} ${sha256(APP_SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Escape text for an HTML attribute value or text node. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function shell(base: string, title: string, body: string, script: string): string {
  return (
    `<!doctype html>\n<html lang="en" data-base="${escapeHtml(base)}">\n<head>\n<meta charset="utf-8">\n` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">\n<meta name="referrer" content="no-referrer">\n` +
    `<title>${escapeHtml(title)}</title>\n<style>${STYLE}</style>\n</head>\n<body>\n${body}\n<script>${script}</script>\n</body>\n</html>\n`
  );
}

/** The sign-in page (answered with 401). */
export function loginPage(base: string, title: string): string {
  return shell(
    base,
    `${title} — sign in`,
    `<main class="signin"><form id="signin" autocomplete="off">
<h1>${escapeHtml(title)}</h1>
<p class="muted">Operator console. Enter your API key; it is kept in this tab only (sessionStorage) and sent as a Bearer header.</p>
<label class="field">API key <input id="key" name="key" type="password" autocomplete="off" spellcheck="false" required></label>
<button type="submit" class="primary">Open the console</button>
<p id="msg" class="msg" role="alert"></p>
</form></main>`,
    LOGIN_SCRIPT,
  );
}

/** The console itself (answered with 200 to an authenticated request). */
export function consolePage(base: string, title: string): string {
  return shell(
    base,
    title,
    `<header class="top">
<a class="brand" href="#/instances">${escapeHtml(title)}</a>
<nav id="nav" aria-label="sections">
<a href="#/instances" data-tab="instances">Instances</a>
<a href="#/backfills" data-tab="backfills">Backfills</a>
<a href="#/audit" data-tab="audit">Audit</a>
<a href="#/approvals" data-tab="approvals">Approvals</a>
<a href="#/metrics" data-tab="metrics">Metrics</a>
</nav>
<span class="spacer"></span>
<span id="live" class="live off" title="live updates (Server-Sent Events)">offline</span>
<span id="who" class="who"></span>
<button id="signout" type="button" class="ghost">Sign out</button>
</header>
<div id="banner" class="banner" role="alert" hidden></div>
<main id="main" class="main" tabindex="-1"></main>
<div id="toasts" class="toasts" aria-live="polite"></div>
<datalist id="dl-tasks"></datalist>`,
    APP_SCRIPT,
  );
}
