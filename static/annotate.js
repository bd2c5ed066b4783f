// Annotation page: one item at a time, keyboard first. Talks to /api/v1 (docs/api.md).
(function () {
  'use strict';
  const S = window.WickSpans;
  const $ = (id) => document.getElementById(id);
  const root = $('annotate');
  if (!root) return;

  const cfg = {
    user: root.dataset.user,
    project: root.dataset.projectId,
    ner: root.dataset.task === 'ner',
    labels: JSON.parse(root.dataset.labels || '[]'),
    guidelineVersion: Number(root.dataset.guidelineVersion),
  };
  const el = {
    item: $('item'), empty: $('empty'), loading: $('loading'), text: $('item-text'),
    extId: $('item-ext-id'), suggestion: $('suggestion'), message: $('message'),
    counter: $('counter'), stale: $('guidelines-stale'),
    submit: $('submit'), skip: $('skip'), undo: $('undo'),
    labels: $('labels'), filter: $('label-filter'), // classification
    legend: $('entity-labels'), tools: $('span-tools'), spanInfo: $('span-info'), // ner
    spanLabels: $('span-labels'), remove: $('remove-span'),
  };

  const state = {
    current: null, // item on screen
    buffer: [], // items fetched (so leased to us) but not shown yet
    pending: null, // in-flight prefetch
    history: [], // ids answered this session, newest last, for undo
    count: 0,
    busy: false,
    shownAt: 0,
    label: null, // classification: selected label
    spans: [], // ner: working spans {start, end, label}, scalar offsets
    selSpan: null, // ner: the clicked span (an object from spans)
  };

  // ---- server ----
  const api = Wick.api;

  // Ids we hold: the server must not hand them out again as "next".
  const held = () => [state.current, ...state.buffer].filter(Boolean).map((i) => i.id);
  const nextItem = () => api('POST', `/projects/${cfg.project}/next`, { exclude: held() }).then((r) => r && r.item);

  // Keep one item ready so the next one shows without a round trip.
  function prefetch() {
    if (!state.current || state.pending || state.buffer.length) return;
    state.pending = nextItem()
      .then((item) => { if (item && !held().includes(item.id)) state.buffer.push(item); })
      .catch(() => {}) // advance() asks again when the buffer is empty
      .finally(() => { state.pending = null; });
  }

  async function advance() {
    if (state.pending) await state.pending;
    let item = state.buffer.shift();
    // an empty buffer may be a failed or stale prefetch: ask once more before saying "done"
    if (!item) {
      try {
        item = await nextItem();
      } catch (e) {
        show(null, true);
        throw new Error('Could not load the next item: ' + e.message);
      }
    }
    show(item || null);
    prefetch();
  }

  // ---- messages ----
  let msgTimer = 0;
  function say(text, kind) {
    clearTimeout(msgTimer);
    el.message.textContent = text || '';
    el.message.className = 'message' + (kind ? ' ' + kind : '');
    if (kind === 'ok') msgTimer = setTimeout(() => say(''), 1500);
  }
  const renderCounter = () => { el.counter.textContent = `${state.count} labeled this session`; };
  const pct = (p) => (typeof p === 'number' ? `${Math.round(p * 100)}%` : '?');
  const hue = (label) => (Math.max(0, cfg.labels.indexOf(label)) * 137.5) % 360; // well-spread colours

  function setBusy(busy) {
    state.busy = busy;
    root.classList.toggle('busy', busy);
    el.submit.disabled = busy || !state.current;
    el.skip.disabled = busy || !state.current;
    el.undo.disabled = busy || !state.history.length;
  }

  // Runs one request-driven action at a time; the busy flag stops double submits.
  async function run(fn) {
    if (state.busy) return;
    setBusy(true);
    try {
      await fn();
    } catch (e) {
      say(e.message, 'error');
    } finally {
      setBusy(false);
    }
  }

  // ---- showing an item ----
  function show(item, failed) {
    state.current = item;
    state.selSpan = null;
    el.loading.hidden = true;
    el.empty.hidden = !!item || !!failed;
    el.item.hidden = !item;
    if (!item) return;
    const pred = item.prediction;
    const mine = item.mine; // our earlier answer, when undoing
    el.extId.textContent = item.ext_id != null ? item.ext_id : `#${item.id}`;
    el.stale.hidden = !(item.guideline_version > cfg.guidelineVersion);
    showSuggestion(pred);
    if (cfg.ner) {
      const from = (mine ? mine.entities : pred ? pred.entities : []) || [];
      state.spans = [];
      for (const { start, end, label } of from) {
        const s = { start, end, label }; // drops the prediction's confidence and text
        if (start < end && !S.overlaps(state.spans, s)) state.spans.push(s); // unusable otherwise
      }
      renderText();
    } else {
      el.text.textContent = item.text; // a single text node: whitespace kept by CSS
      orderLabels(pred);
      state.label = mine ? mine.label : pred ? pred.label : null;
      el.filter.value = '';
      renderLabels();
    }
    state.shownAt = performance.now();
  }

  function showSuggestion(pred) {
    const s = el.suggestion;
    s.classList.toggle('muted', !pred);
    if (!pred) return void (s.textContent = 'no model suggestion');
    const strong = document.createElement('strong');
    if (cfg.ner) {
      const n = (pred.entities || []).length;
      strong.textContent = `${n} entit${n === 1 ? 'y' : 'ies'}`;
      s.replaceChildren('Model found ', strong, ` (${pct(pred.confidence)} confidence)`);
    } else {
      strong.textContent = pred.label;
      s.replaceChildren('Model suggests ', strong, ` (${pct(pred.confidence)})`);
    }
  }

  // ---- classification ----
  function buildLabelButtons() {
    for (const label of cfg.labels) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'label';
      b.dataset.label = label;
      const key = document.createElement('kbd');
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = label;
      const score = document.createElement('span');
      score.className = 'score';
      b.append(key, name, score);
      b.addEventListener('click', () => select(label));
      el.labels.append(b);
    }
  }

  // Highest model score first; labels without a score keep label-set order after them.
  function orderLabels(pred) {
    const scores = (pred && pred.scores) || {};
    const rank = (l) => (typeof scores[l] === 'number' ? scores[l] : -1);
    const ordered = cfg.labels.slice().sort((a, b) => rank(b) - rank(a)); // sort is stable
    for (const l of ordered) {
      const b = buttonFor(l);
      b.querySelector('.score').textContent = rank(l) >= 0 ? pct(rank(l)) : '';
      el.labels.append(b); // moves it to the end, so the final order is `ordered`
    }
  }

  const buttonFor = (label) => [...el.labels.children].find((b) => b.dataset.label === label);
  const visibleButtons = () => [...el.labels.children].filter((b) => !b.hidden);

  function renderLabels() {
    const q = el.filter.value.trim().toLowerCase();
    for (const b of el.labels.children) b.hidden = !!q && !b.dataset.label.toLowerCase().includes(q);
    visibleButtons().forEach((b, i) => { b.querySelector('kbd').textContent = i < 9 ? String(i + 1) : ''; });
    for (const b of el.labels.children) {
      const on = b.dataset.label === state.label;
      b.classList.toggle('selected', on);
      b.setAttribute('aria-pressed', String(on));
    }
  }

  function select(label) {
    state.label = label;
    renderLabels();
  }

  function filterKey(e) {
    if (e.key === 'Escape') {
      e.preventDefault();
      el.filter.blur();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      const vis = visibleButtons();
      if (vis.length === 1) select(vis[0].dataset.label);
      if (!state.label) return say('Type until one label is left, or select one', 'error');
      el.filter.blur(); // back to the keyboard shortcuts for the next item
      submit();
    }
  }

  // ---- NER ----
  function renderText() {
    const text = state.current.text;
    const frag = document.createDocumentFragment();
    for (const seg of S.segments(text, state.spans)) {
      if (!seg.span) {
        frag.append(document.createTextNode(seg.text));
        continue;
      }
      // the label tag is CSS ::after content, so the DOM text stays exactly the item text
      const m = document.createElement('mark');
      m.className = 'span' + (seg.span === state.selSpan ? ' selected' : '');
      m.dataset.start = seg.span.start;
      m.dataset.end = seg.span.end;
      m.dataset.label = seg.span.label;
      m.style.setProperty('--hue', hue(seg.span.label));
      m.textContent = seg.text;
      frag.append(m);
    }
    el.text.replaceChildren(frag);
    const sel = state.selSpan;
    el.tools.hidden = !sel;
    if (sel) el.spanInfo.textContent = `“${[...text].slice(sel.start, sel.end).join('')}” is ${sel.label}:`;
  }

  function buildEntityLegend() {
    cfg.labels.forEach((label, i) => {
      for (const [box, cls] of [[el.legend, 'entity-label'], [el.spanLabels, 'span-relabel small']]) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = cls;
        b.dataset.label = label;
        b.style.setProperty('--hue', hue(label));
        const key = document.createElement('kbd');
        key.textContent = i < 9 ? String(i + 1) : '';
        b.append(key, ' ' + label);
        b.addEventListener('mousedown', (e) => e.preventDefault()); // keep the text selection
        b.addEventListener('click', () => applyEntity(label));
        box.append(b);
      }
    });
  }

  // A label key: new span from the text selection, else relabel the clicked span.
  function applyEntity(label) {
    if (!state.current) return;
    const sel = window.getSelection();
    const span = S.selectionToSpan(el.text, sel);
    if (span) {
      const cand = { ...span, label };
      const hit = state.spans.find((s) => S.overlaps([s], cand));
      if (hit) return say(`Refused: that selection would overlap the ${hit.label} span at ${hit.start}–${hit.end}.`, 'error');
      state.spans.push(cand);
      state.selSpan = null;
      sel.removeAllRanges();
      say('');
    } else if (state.selSpan) {
      state.selSpan.label = label;
    } else {
      return say('Select some text first, or click a span to relabel it.', 'error');
    }
    renderText();
  }

  function removeSpan() {
    if (!state.selSpan) return;
    state.spans = state.spans.filter((s) => s !== state.selSpan);
    state.selSpan = null;
    renderText();
  }

  // ---- actions ----
  async function submit() {
    const item = state.current;
    if (state.busy || !item) return;
    let value;
    if (cfg.ner) value = { entities: state.spans.map(({ start, end, label }) => ({ start, end, label })) };
    else if (state.label) value = { label: state.label };
    else return say('Pick a label first.', 'error');
    const seconds = Math.round(performance.now() - state.shownAt) / 1000;
    const body = { ...value, seconds, prediction_id: item.prediction ? item.prediction.id : null };
    await run(async () => {
      await api('POST', `/items/${item.id}/annotations`, body);
      state.count++;
      state.history.push(item.id);
      renderCounter();
      say('Saved', 'ok');
      await advance();
    });
  }

  async function skip() {
    const item = state.current;
    if (state.busy || !item) return;
    await run(async () => {
      if (item.undone) {
        // skipping an item brought back by undo keeps the earlier answer instead
        state.count++;
        state.history.push(item.id);
        renderCounter();
        say('Kept your earlier answer', 'ok');
      } else {
        await api('POST', `/items/${item.id}/skip`, {});
        say('Skipped', 'ok');
      }
      await advance();
    });
  }

  async function undo() {
    if (state.busy) return;
    const id = state.history[state.history.length - 1];
    if (id == null) return say('Nothing to undo.', 'error');
    await run(async () => {
      const item = await api('GET', `/items/${id}`);
      state.history.pop();
      state.count--;
      renderCounter();
      if (state.current) state.buffer.unshift(state.current); // shown again after this one
      // the queue's ITEM carries `prediction`; the full item carries the list
      if (item.prediction === undefined) item.prediction = (item.predictions || []).slice(-1)[0] || null;
      const mineList = (item.annotations || []).filter((a) => a.user === cfg.user);
      mineList.sort((a, b) => a.id - b.id);
      item.mine = mineList.length ? mineList[mineList.length - 1].value : null;
      item.undone = true;
      show(item);
      say('Answer again to replace your earlier answer', 'ok');
    });
  }

  function clearSelection() {
    window.getSelection().removeAllRanges();
    if (cfg.ner) {
      state.selSpan = null;
      if (state.current) renderText();
    } else {
      el.filter.value = '';
      select(null);
    }
    say('');
  }

  function onNumber(n) {
    if (cfg.ner) {
      if (cfg.labels[n - 1] != null) applyEntity(cfg.labels[n - 1]);
    } else {
      const b = visibleButtons()[n - 1];
      if (b) select(b.dataset.label);
    }
  }

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (el.filter && t === el.filter) return filterKey(e);
    if (t.closest && t.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])')) return;
    const k = e.key;
    // Enter on a link or a <summary> keeps its own meaning
    if (k === 'Enter' && t.closest && t.closest('a[href], summary')) return;
    if (k === 'Enter') submit();
    else if (k === 's' || k === 'S') skip();
    else if (k === 'u' || k === 'U') undo();
    else if (k === 'Escape') clearSelection();
    else if (k.length === 1 && k >= '1' && k <= '9') onNumber(Number(k));
    else if (k === '/' && el.filter) el.filter.focus();
    else if ((k === 'Delete' || k === 'Backspace') && cfg.ner) removeSpan();
    else return;
    e.preventDefault(); // e.g. no button activation by Enter, no '/' typed into the filter
  });

  el.submit.addEventListener('click', submit);
  el.skip.addEventListener('click', skip);
  el.undo.addEventListener('click', undo);

  if (cfg.ner) {
    buildEntityLegend();
    el.remove.addEventListener('click', removeSpan);
    el.text.addEventListener('click', (e) => {
      if (!window.getSelection().isCollapsed) return; // the end of a drag, not a click
      const m = e.target.closest('mark.span');
      const hit = m && state.spans.find((s) => s.start === +m.dataset.start && s.end === +m.dataset.end);
      const next = hit && hit !== state.selSpan ? hit : null; // a second click deselects
      if (next === state.selSpan) return; // nothing changed: keep the DOM (and any selection)
      state.selSpan = next;
      renderText();
    });
  } else {
    buildLabelButtons();
    el.filter.addEventListener('input', renderLabels);
  }

  renderCounter();
  setBusy(false);
  run(advance);
})();
