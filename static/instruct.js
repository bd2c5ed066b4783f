// Instruction review: the record's response is accepted as it is, edited (then accepted as the
// edit) or rejected. Keys: Ctrl+Enter accept/save, Ctrl+R reject, Ctrl+S skip.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const root = $('instruct');
  if (!root) return;
  const project = root.dataset.projectId;
  const state = { item: null, original: '', shownAt: 0, count: 0, busy: false };

  const api = Wick.post;
  const say = Wick.say;

  function show(item) {
    state.item = item;
    $('loading').hidden = true;
    $('empty').hidden = !!item;
    $('item').hidden = !item;
    if (!item) return;
    const r = item.record || { instruction: item.text, context: '', response: '' };
    $('item-ext-id').textContent = item.ext_id;
    $('category').textContent = r.category ? '· ' + r.category : '';
    $('instruction').textContent = r.instruction;
    $('context').textContent = r.context || '';
    $('context-block').hidden = !r.context;
    $('response').value = r.response;
    state.original = r.response;
    $('edited').hidden = true;
    state.shownAt = performance.now();
  }

  async function next() {
    try {
      const data = await api('/projects/' + project + '/next', {});
      show(data && data.item);
    } catch (e) {
      say(e.message, 'error');
    }
  }

  async function decide(decision) {
    if (state.busy || !state.item) return;
    const text = $('response').value;
    const edited = text !== state.original;
    if (decision === 'accept' && edited) {
      if (!text.trim()) { say('An edited response cannot be empty.', 'error'); return; }
      decision = 'edit';
    }
    const body = { decision, seconds: (performance.now() - state.shownAt) / 1000 };
    if (decision === 'edit') body.response = text;
    state.busy = true;
    try {
      await api('/items/' + state.item.id + '/annotations', body);
      state.count += 1;
      $('counter').textContent = state.count + ' reviewed this session';
      say((decision === 'edit' ? 'Edited' : decision === 'accept' ? 'Accepted' : 'Rejected') + ' ' + state.item.ext_id + '.', 'ok');
      await next();
    } catch (e) {
      say(e.message, 'error');
    } finally {
      state.busy = false;
    }
  }

  async function skip() {
    if (!state.item) return;
    try {
      await api('/items/' + state.item.id + '/skip', {});
      await next();
    } catch (e) {
      say(e.message, 'error');
    }
  }

  $('response').addEventListener('input', () => {
    $('edited').hidden = $('response').value === state.original;
  });
  $('accept').addEventListener('click', () => decide('accept'));
  $('reject').addEventListener('click', () => decide('reject'));
  $('skip').addEventListener('click', skip);
  document.addEventListener('keydown', (e) => {
    if (!(e.ctrlKey || e.metaKey)) return;
    if (e.key === 'Enter') { e.preventDefault(); decide('accept'); }
    else if (e.key === 'r' || e.key === 'R') { e.preventDefault(); decide('reject'); }
    else if (e.key === 's' || e.key === 'S') { e.preventDefault(); skip(); }
  });
  next();
})();
