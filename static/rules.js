// Rules page: samples of a rule's hits and disagreements, the rule editor with its live
// preview, and the apply job. The table is drawn by the server: after a change this script
// fetches the page again and swaps its #rules-summary in, so there is one way to draw it.
// Item text only ever enters the page through textContent.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const root = $('rules');
  if (!root || !$('rules-summary')) return;
  const base = '/projects/' + root.dataset.project + '/rules';
  const ruleUrl = (name) => base + '/' + encodeURIComponent(name);
  const { api, say } = window.Wick;
  const S = window.WickSpans;
  const PREVIEW_DELAY_MS = 150;
  const SAMPLE_LIMIT = 20;

  const count = (n, what) => n + ' ' + what + (n === 1 ? '' : 's');
  const pct = (v) => (v == null ? '—' : (v * 100).toFixed(1) + '%');

  // An element with text or child nodes; strings become text nodes, never markup.
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else e.setAttribute(k, v);
    }
    e.append(...children.filter((c) => c != null));
    return e;
  }

  // The text with its [start, end) scalar-offset spans wrapped in <mark class="hit">.
  function highlighted(text, spans) {
    const pieces = S.segments(text, (spans || []).map(([start, end]) => ({ start, end })));
    return pieces.map((p) => (p.span ? h('mark', { class: 'hit' }, p.text) : document.createTextNode(p.text)));
  }

  // One item of a sample: its id (a link to the item page), its text, and who says what.
  function exampleItem(x, spans) {
    const votes = (x.votes || []).map(([rule, label]) => rule + ' → ' + label).join(', ');
    const said = [votes && 'rules: ' + votes, x.model && 'model: ' + x.model, x.human && 'people: ' + x.human]
      .filter(Boolean).join(' · ');
    return h('li', { 'data-item': String(x.item_id) },
      h('a', { href: '/items/' + x.item_id, class: 'example-link' }, h('code', {}, x.ext_id)), ' ',
      h('span', { class: 'example-text' }, ...highlighted(x.text, spans)),
      h('br'), h('span', { class: 'muted example-votes' }, said));
  }

  // ---- the table, from the server ----
  async function refreshTable() {
    const res = await fetch(location.pathname, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
    if (!res.ok) throw new Error('Reloading the rules failed: ' + res.status);
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    const fresh = doc.getElementById('rules-summary');
    if (fresh) $('rules-summary').replaceWith(fresh);
    if (samples.rule && !rowOf(samples.rule)) closeSamples();
  }

  const rowOf = (name) => Array.from(document.querySelectorAll('#rules-table tr.rule')).find((r) => r.dataset.rule === name);

  // ---- a rule's hits and disagreements ----
  const samples = { rule: null, which: 'hits', seq: 0 };

  function pressed(which) {
    for (const [id, w] of [['show-hits', 'hits'], ['show-disagreements', 'disagreements']]) {
      $(id).setAttribute('aria-pressed', String(w === which));
      $(id).classList.toggle('primary', w === which);
    }
  }

  async function showSamples(name, which) {
    const seq = ++samples.seq;
    Object.assign(samples, { rule: name, which });
    $('rule-examples').hidden = false;
    $('examples-rule').textContent = name;
    pressed(which);
    $('examples-status').textContent = 'Loading…';
    $('examples-list').replaceChildren();
    try {
      const data = await api('GET', ruleUrl(name) + '/examples?sample=' + which + '&limit=' + SAMPLE_LIMIT);
      if (seq !== samples.seq) return; // another rule or toggle was asked for since
      const n = data.items.length;
      $('examples-status').textContent = n === 0
        ? (which === 'hits' ? 'The rule matches no item.' : 'Nobody disagrees with this rule.')
        : (which === 'hits' ? 'Hits' : 'Disagreements (people, the model or another rule say otherwise)') +
          ': ' + (n < SAMPLE_LIMIT ? 'all ' + n : 'the first ' + n) + ', in item order.';
      $('examples-list').replaceChildren(...data.items.map((x) => exampleItem(x, [])));
    } catch (e) {
      if (seq === samples.seq) $('examples-status').textContent = e.message;
    }
  }

  function closeSamples() {
    samples.rule = null;
    samples.seq++;
    $('rule-examples').hidden = true;
  }

  $('show-hits').addEventListener('click', () => samples.rule && showSamples(samples.rule, 'hits'));
  $('show-disagreements').addEventListener('click', () => samples.rule && showSamples(samples.rule, 'disagreements'));

  // Rows are replaced on every refresh, so their clicks are caught on the page's root.
  root.addEventListener('click', (ev) => {
    const row = ev.target.closest('#rules-table tr.rule');
    if (!row) return;
    if (ev.target.closest('.rule-edit')) return void edit(row.dataset.rule);
    if (ev.target.closest('.rule-delete')) return void remove(row.dataset.rule, ev.target.closest('.rule-delete'));
    if (ev.target.closest('a, button')) return;
    showSamples(row.dataset.rule, 'hits');
  });

  // ---- the editor (admins only: the server leaves it out for others) ----
  const form = $('rule-form');
  const ed = { editing: null, file: null, fileName: '', terms: null, seq: 0, timer: null };

  function showKind() {
    const kind = $('rule-kind').value;
    for (const f of document.querySelectorAll('#rule-form .field')) {
      f.hidden = !f.dataset.kinds.split(' ').includes(kind);
    }
    $('rule-text-label').textContent = kind === 'regex' ? 'Pattern (Rust regex syntax)' : 'Terms, one per line';
  }

  function showTitle() {
    const name = $('rule-name').value.trim();
    $('editor-title').textContent = ed.editing && name === ed.editing
      ? 'Edit rule ' + name + ' (saving makes a new version)' : 'New rule';
  }

  function showError(message) {
    $('rule-error').textContent = message || '';
    $('rule-error').hidden = !message;
  }

  const lines = (s) => s.split('\n').map((t) => t.trim()).filter(Boolean);

  // The rule as the API takes it, or null while there is nothing to match with yet.
  function spec() {
    const kind = $('rule-kind').value;
    const out = { name: $('rule-name').value.trim(), label: $('rule-label').value, kind };
    const text = $('rule-text').value;
    const flags = { case_sensitive: $('rule-case').checked, whole_word: $('rule-word').checked };
    if (kind === 'keywords') {
      const terms = lines(text);
      return terms.length ? { ...out, terms, ...flags } : null;
    }
    if (kind === 'regex') {
      const pattern = text.replace(/\r?\n$/, '');
      return pattern ? { ...out, pattern, case_sensitive: flags.case_sensitive } : null;
    }
    if (kind === 'lookup') {
      if (ed.file !== null) return { ...out, file: ed.file, file_name: ed.fileName, ...flags };
      return ed.terms ? { ...out, terms: ed.terms, file_name: ed.fileName, ...flags } : null;
    }
    const examples = $('rule-similar').value.split(/[\s,]+/).filter(Boolean);
    return examples.length ? { ...out, examples, threshold: Number($('rule-threshold').value) } : null;
  }

  function showFigures(p) {
    const figures = $('preview-figures');
    figures.classList.remove('muted');
    const num = (id, v) => h('strong', { id }, String(v));
    const of = p.sampled < p.items ? ' (a sample of ' + p.items + ')' : '';
    figures.replaceChildren(
      num('preview-hits', p.hits), ' hits in ' + p.sampled + ' items' + of + ' · coverage ',
      num('preview-coverage', pct(p.coverage)), ' · ' + count(p.overlaps, 'overlap') + ' · ' + count(p.conflicts, 'conflict'),
      ' · model agreement ' + pct(p.model_agreement) + ' (' + p.agrees_with_model + '/' + p.with_model + ')',
      ' · accuracy vs people ', num('preview-accuracy', pct(p.accuracy)), ' (' + p.correct + '/' + p.annotated + ')');
    if (p.left_out.length) {
      figures.append(h('br'), h('span', { id: 'preview-left-out' },
        'Left out of these figures (no longer valid): ' +
        p.left_out.map((r) => r.name + ' (' + r.field + ': ' + r.message + ')').join('; ')));
    }
    $('preview-examples').replaceChildren(...p.examples.map((x) => exampleItem(x, x.spans)));
  }

  function clearPreview() {
    $('preview-figures').className = 'muted';
    $('preview-figures').textContent = 'Type terms or a pattern to see what the rule would match.';
    $('preview-examples').replaceChildren();
  }

  // Every change asks again; only the answer to the latest question is shown.
  async function preview() {
    const seq = ++ed.seq;
    const s = spec();
    if (!s) {
      showError(null);
      return clearPreview();
    }
    try {
      const p = await api('POST', base + '/preview', { ...s, name: s.name || 'draft' });
      if (seq !== ed.seq) return;
      showError(null);
      showFigures(p);
    } catch (e) {
      // A half-typed pattern is refused while it is typed: say why, beside the field.
      if (seq === ed.seq) showError(e.message);
    }
  }

  function changed() {
    showTitle();
    clearTimeout(ed.timer);
    ed.timer = setTimeout(preview, PREVIEW_DELAY_MS);
  }

  function clearEditor() {
    form.reset();
    Object.assign(ed, { editing: null, file: null, fileName: '', terms: null });
    $('rule-file-note').textContent = '';
    ed.seq++; // an answer still on its way is for the old rule
    clearTimeout(ed.timer);
    showKind();
    showTitle();
    showError(null);
    clearPreview();
  }

  const missing = {
    keywords: 'terms: give at least one term',
    regex: 'pattern: an empty pattern matches everything',
    lookup: 'file: choose a list file',
    similar: 'examples: give 1 to 100 item ids',
  };

  async function save() {
    const s = spec();
    if (!s) return showError(missing[$('rule-kind').value]);
    if (!s.name) {
      $('rule-name').focus();
      return showError('name: give the rule a name');
    }
    const update = ed.editing === s.name;
    $('rule-save').disabled = true;
    try {
      const r = update ? await api('PUT', ruleUrl(s.name), s) : await api('POST', base, s);
      clearEditor();
      say('Saved rule ' + r.name + ' (version ' + r.version + ').', 'ok');
      await refreshTable();
    } catch (e) {
      showError(e.message);
    } finally {
      $('rule-save').disabled = false;
    }
  }

  // Loads a rule's current version into the editor (its history's last entry).
  async function edit(name) {
    try {
      const versions = (await api('GET', ruleUrl(name) + '/history')).items;
      const last = versions[versions.length - 1];
      if (!last || !last.spec) throw new Error('rule ' + name + ' has no current version');
      clearEditor();
      fill(last.spec);
      ed.editing = name;
      showTitle();
      $('rule-name').focus();
      changed();
    } catch (e) {
      say(e.message, 'error');
    }
  }

  function fill(r) {
    $('rule-name').value = r.name;
    $('rule-kind').value = r.kind;
    $('rule-label').value = r.label;
    $('rule-case').checked = !!r.case_sensitive;
    $('rule-word').checked = r.whole_word !== false;
    if (r.kind === 'keywords') $('rule-text').value = r.terms.join('\n');
    if (r.kind === 'regex') $('rule-text').value = r.pattern;
    if (r.kind === 'lookup') {
      Object.assign(ed, { terms: r.terms, fileName: r.file_name || '' });
      $('rule-file-note').textContent = 'Now: ' + (r.file_name || 'a list') + ' (' + r.terms.length + ' terms); choose a file to replace it.';
    }
    if (r.kind === 'similar') {
      $('rule-similar').value = r.examples.join(' ');
      $('rule-threshold').value = r.threshold;
    }
    showKind();
  }

  // Two clicks: the first asks, the second (within a few seconds) deletes.
  async function remove(name, button) {
    if (button.dataset.armed !== 'yes') {
      button.dataset.armed = 'yes';
      button.textContent = 'Delete ' + name + '?';
      setTimeout(() => {
        button.dataset.armed = '';
        button.textContent = 'Delete';
      }, 4000);
      return;
    }
    try {
      await api('DELETE', ruleUrl(name));
      say('Deleted rule ' + name + '.', 'ok');
      await refreshTable();
    } catch (e) {
      say(e.message, 'error');
    }
  }

  function readFile() {
    const file = $('rule-file').files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      Object.assign(ed, { file: String(reader.result), fileName: file.name, terms: null });
      $('rule-file-note').textContent = file.name + ': ' + lines(ed.file).length + ' lines';
      changed();
    };
    reader.onerror = () => showError('file: ' + file.name + ' could not be read');
    reader.readAsText(file);
  }

  if (form) {
    form.addEventListener('input', (ev) => ev.target.id !== 'rule-file' && changed());
    $('rule-kind').addEventListener('change', () => { showKind(); changed(); });
    $('rule-file').addEventListener('change', readFile);
    $('rule-clear').addEventListener('click', clearEditor);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      save();
    });
    showKind();
  }

  // ---- applying the rules ----
  const applyForm = $('apply-form');

  function showJob(j) {
    $('apply-status').hidden = false;
    $('apply-state').textContent = 'Job ' + j.id + ': ' + j.status + ' · ' + j.done + ' / ' + j.total +
      (j.error ? ' · ' + j.error : '');
    $('apply-progress').max = Math.max(j.total, 1);
    $('apply-progress').value = j.done;
  }

  async function follow(id) {
    try {
      const j = await api('GET', '/jobs/' + id);
      showJob(j);
      if (j.status === 'queued' || j.status === 'running') return void setTimeout(() => follow(id), 500);
      $('apply-run').disabled = false;
      $('apply-status').dataset.status = j.status;
      if (j.status === 'done') {
        await refreshTable();
        say('Rules applied.', 'ok');
      } else {
        say('The apply job ' + j.status + (j.error ? ': ' + j.error : '.'), 'error');
      }
    } catch (e) {
      setTimeout(() => follow(id), 1000); // the next poll tries again
    }
  }

  if (applyForm) {
    applyForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('apply-run').disabled = true;
      $('apply-status').dataset.status = '';
      try {
        const job = await api('POST', base + '/apply', { method: $('apply-method').value });
        showJob(job);
        follow(job.id);
      } catch (e) {
        $('apply-run').disabled = false;
        say(e.message, 'error');
      }
    });
  }

  // ---- keys: / or N start a rule, Ctrl+Enter saves it, Esc leaves the editor, Enter on a row
  // shows its hits ----
  const typing = (t) => t.closest && t.closest('input, textarea, select, [contenteditable]');
  document.addEventListener('keydown', (ev) => {
    if (form && form.contains(ev.target)) {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        save();
      } else if (ev.key === 'Escape') {
        ev.target.blur();
      }
      return;
    }
    if (typing(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (form && (ev.key === '/' || ev.key === 'n' || ev.key === 'N')) {
      ev.preventDefault();
      $('rule-name').focus();
    } else if (ev.key === 'Enter' && ev.target.matches && ev.target.matches('tr.rule')) {
      showSamples(ev.target.dataset.rule, 'hits');
    }
  });
})();
