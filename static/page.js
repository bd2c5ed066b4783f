// Shared by the pages' scripts: calls to /api/v1 with the session's CSRF token (the page's
// data-csrf attribute), and the status line (#message).
window.Wick = (function () {
  'use strict';
  const csrf = () => {
    const el = document.querySelector('[data-csrf]');
    return el ? el.dataset.csrf : '';
  };

  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') {
      opts.headers['Content-Type'] = 'application/json';
      opts.headers['X-CSRF-Token'] = csrf();
      opts.body = JSON.stringify(body || {});
    }
    let res;
    try {
      res = await fetch('/api/v1' + path, opts);
    } catch (e) {
      throw new Error('Network error: ' + e.message);
    }
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) throw new Error((data && data.error && data.error.message) || `${res.status} ${res.statusText}`);
    return data;
  }

  function say(text, kind) {
    const m = document.getElementById('message');
    m.textContent = text || '';
    m.className = 'message' + (kind ? ' ' + kind : '');
  }

  return { api, post: (path, body) => api('POST', path, body), say };
})();
