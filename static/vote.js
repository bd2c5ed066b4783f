// Voting page: two responses side by side, keyboard first (A, B, T, X, 1-3, Enter).
// The server fixes which response is on the left per rater; the vote says what was on the left.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const root = $('vote');
  if (!root) return;
  const project = root.dataset.projectId;
  const state = { current: null, buffer: [], choice: null, strength: null, count: 0, busy: false, shownAt: 0 };

  const api = Wick.post;
  const say = Wick.say;

  const held = () => [state.current, ...state.buffer].filter(Boolean).map((p) => p.id);
  async function fetchNext() {
    const data = await api('/projects/' + project + '/next', { exclude: held() });
    return data && data.pair;
  }

  // Keep one pair in reserve so the next one shows at once. One request at a time: a second
  // one sent while the first is out (a vote submitted before the reserve arrived) would bring
  // the same pair again, and it would be shown twice.
  let pending = null;
  function prefetch() {
    if (state.buffer.length > 0) return Promise.resolve();
    if (!pending) {
      pending = fetchNext()
        .then((p) => {
          if (p && !held().includes(p.id)) state.buffer.push(p);
        })
        .catch((e) => say(e.message, 'error'))
        .finally(() => {
          pending = null;
        });
    }
    return pending;
  }

  function promptText(prompt) {
    if (typeof prompt === 'string') return prompt;
    return prompt.map((m) => m.role + ': ' + m.content).join('\n\n');
  }

  function show(pair) {
    // After Enter in the rationale box, leave it: keys on the next pair choose, not type.
    if (document.activeElement === $('rationale')) $('rationale').blur();
    state.current = pair;
    state.choice = null;
    state.strength = null;
    $('loading').hidden = true;
    $('empty').hidden = !!pair;
    $('pair').hidden = !pair;
    $('submit').disabled = !pair;
    if (!pair) return;
    $('pair-ext-id').textContent = pair.ext_id;
    $('prompt').textContent = promptText(pair.prompt);
    $('response-a').textContent = pair.left.text;
    $('response-b').textContent = pair.right.text;
    $('rationale').value = '';
    state.shownAt = performance.now();
    render();
  }

  function render() {
    for (const b of document.querySelectorAll('button.choice')) {
      b.classList.toggle('selected', b.dataset.choice === state.choice);
    }
    const decided = state.choice === 'a' || state.choice === 'b';
    for (const b of document.querySelectorAll('button.strength')) {
      b.disabled = !decided;
      b.classList.toggle('selected', decided && Number(b.dataset.strength) === state.strength);
    }
  }

  async function advance() {
    if (state.buffer.length === 0) await prefetch();
    show(state.buffer.shift() || null);
    prefetch();
  }

  async function submit() {
    const pair = state.current;
    if (!pair || state.busy) return;
    if (!state.choice) {
      say('Choose A, B, T (tie) or X (both bad) first.', 'error');
      return;
    }
    state.busy = true;
    $('submit').disabled = true;
    const decided = state.choice === 'a' || state.choice === 'b';
    try {
      await api('/pairs/' + pair.id + '/votes', {
        choice: state.choice,
        left: pair.left.id,
        strength: decided ? state.strength : null,
        rationale: $('rationale').value.trim() || null,
        seconds: (performance.now() - state.shownAt) / 1000,
      });
      state.count += 1;
      $('counter').textContent = state.count + (state.count === 1 ? ' vote' : ' votes') + ' this session';
      say('Saved', 'ok');
      await advance();
    } catch (e) {
      say(e.message, 'error');
    } finally {
      state.busy = false;
      $('submit').disabled = !state.current;
    }
  }

  const CHOICE_KEYS = { a: 'a', b: 'b', t: 'tie', x: 'both_bad' };
  document.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey || ev.altKey || ev.metaKey) return;
    const typing = ev.target && (ev.target.tagName === 'TEXTAREA' || ev.target.tagName === 'INPUT');
    if (typing) {
      // Enter submits from the rationale too; Shift+Enter is a new line; Escape leaves it.
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        submit();
      } else if (ev.key === 'Escape') {
        ev.target.blur();
      }
      return;
    }
    const key = ev.key.toLowerCase();
    if (key in CHOICE_KEYS) {
      state.choice = CHOICE_KEYS[key];
      if (state.choice !== 'a' && state.choice !== 'b') state.strength = null;
    } else if (['1', '2', '3'].includes(key) && (state.choice === 'a' || state.choice === 'b')) {
      state.strength = Number(key);
    } else if (key === 'enter') {
      submit();
    } else if (key === 'r') {
      $('rationale').focus();
    } else {
      return;
    }
    ev.preventDefault();
    render();
  });
  for (const b of document.querySelectorAll('button.choice')) {
    b.addEventListener('click', () => {
      state.choice = b.dataset.choice;
      render();
    });
  }
  for (const b of document.querySelectorAll('button.strength')) {
    b.addEventListener('click', () => {
      state.strength = Number(b.dataset.strength);
      render();
    });
  }
  $('submit').addEventListener('click', submit);
  advance();
})();
