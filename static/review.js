// Adjudication page: an item people disagree about, each distinct answer (annotators' and the
// model's) as a choice; the reviewer's decision becomes the item's label (source adjudicated).
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const root = $('review');
  if (!root) return;
  const project = root.dataset.projectId;
  const ner = root.dataset.task === 'ner';
  const labels = JSON.parse(root.dataset.labels || '[]');
  const state = { item: null, candidates: [], chosen: null, passed: [], busy: false };

  const api = Wick.post;
  const say = Wick.say;

  // Code-point slices, as the server's offsets are.
  const slice = (text, start, end) => Array.from(text).slice(start, end).join('');
  function describe(value, text) {
    if (value.label !== undefined) return value.label;
    if (!value.entities.length) return '(no entities)';
    return value.entities.map((s) => '“' + slice(text, s.start, s.end) + '” ' + s.label).join(', ');
  }
  const key = (value) => JSON.stringify(value.label !== undefined ? { label: value.label }
    : { entities: value.entities.map((s) => [s.start, s.end, s.label]) });

  // Distinct answers, each with who gave it.
  function candidatesOf(item) {
    const out = [];
    const add = (value, who) => {
      const k = key(value);
      let c = out.find((x) => x.key === k);
      if (!c) { c = { key: k, value, who: [] }; out.push(c); }
      c.who.push(who);
    };
    for (const a of item.answers) add(a.value, a.user);
    const p = item.prediction;
    if (p) {
      const value = p.label !== undefined ? { label: p.label }
        : { entities: (p.entities || []).map((s) => ({ start: s.start, end: s.end, label: s.label })) };
      add(value, 'model (' + Math.round(p.confidence * 100) + '%)');
    }
    return out;
  }

  function choose(i) {
    state.chosen = i;
    if (!ner) $('other-label').value = '';
    document.querySelectorAll('#candidates li').forEach((li, j) => li.classList.toggle('selected', j === i));
    $('resolve').disabled = i === null;
  }

  function show(item) {
    state.item = item;
    $('loading').hidden = true;
    $('empty').hidden = !!item;
    $('item').hidden = !item;
    if (!item) return;
    $('item-ext-id').textContent = item.ext_id;
    $('item-link').href = '/items/' + item.id;
    $('reason').textContent = '· ' + item.reason;
    $('item-text').textContent = item.text;
    $('note').value = '';
    state.candidates = candidatesOf(item);
    const list = $('candidates');
    list.replaceChildren();
    state.candidates.forEach((c, i) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'candidate';
      b.textContent = describe(c.value, item.text);
      b.addEventListener('click', () => choose(i));
      const who = document.createElement('span');
      who.className = 'muted';
      who.textContent = ' ' + c.who.join(', ');
      li.append(b, who);
      list.append(li);
    });
    choose(null);
  }

  async function next() {
    try {
      const exclude = state.passed.slice(-100);
      const data = await api('/projects/' + project + '/review/next', { exclude });
      show(data && data.item);
    } catch (e) {
      say(e.message, 'error');
    }
  }

  async function resolve() {
    if (state.busy || !state.item) return;
    let value = null;
    if (!ner && $('other-label').value) value = { label: $('other-label').value };
    else if (state.chosen !== null) value = state.candidates[state.chosen].value;
    if (!value) return;
    state.busy = true;
    try {
      const note = $('note').value.trim();
      await api('/items/' + state.item.id + '/resolution', Object.assign({}, value, note ? { note } : {}));
      say('Decided item ' + state.item.ext_id + '.', 'ok');
      await next();
    } catch (e) {
      say(e.message, 'error');
    } finally {
      state.busy = false;
    }
  }

  if (!ner) {
    const select = $('other-label');
    for (const l of labels) {
      const o = document.createElement('option');
      o.value = l;
      o.textContent = l;
      select.append(o);
    }
    select.addEventListener('change', () => {
      document.querySelectorAll('#candidates li').forEach((li) => li.classList.remove('selected'));
      state.chosen = null;
      $('resolve').disabled = !select.value;
    });
  }
  $('resolve').addEventListener('click', resolve);
  $('pass').addEventListener('click', () => {
    if (state.item) state.passed.push(state.item.id);
    next();
  });
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) {
      if (e.key === 'Enter' && t.id === 'note') { e.preventDefault(); resolve(); }
      return;
    }
    if (e.key >= '1' && e.key <= '9') {
      const i = Number(e.key) - 1;
      if (i < state.candidates.length) choose(i);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      resolve();
    } else if (e.key === 'n' || e.key === 'N') {
      $('pass').click();
    }
  });
  next();
})();
