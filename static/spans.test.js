// Tests for spans.js: `node static/spans.test.js`.
// The DOM part (selectionToSpan) runs too when the `jsdom` package can be required;
// otherwise it is reported as skipped. In a browser this file does nothing.
'use strict';
if (typeof require === 'function' && typeof module !== 'undefined') {
  const assert = require('assert');
  const S = require('./spans.js');
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const test = (name, fn) => {
    try {
      fn();
      passed++;
    } catch (e) {
      failed++;
      console.error(`FAIL ${name}\n  ${e.message}`);
    }
  };

  const EMOJI = 'I 👍🏽 it'; // 👍🏽 = U+1F44D U+1F3FD: two scalars, four UTF-16 units
  const COMBINING = 'Cafe\u0301 ok'; // e + COMBINING ACUTE: two scalars, two units
  const CJK = '東京に住む'; // BMP: one unit per scalar
  const MIXED = '😀東京 e\u0301 𝔸x'; // astral, CJK, combining, astral math letter

  test('ascii offsets are unchanged', () => {
    for (let i = 0; i <= 5; i++) {
      assert.strictEqual(S.toScalar('hello', i), i);
      assert.strictEqual(S.toUtf16('hello', i), i);
    }
  });

  test('emoji: astral characters are one scalar, two units', () => {
    assert.strictEqual(S.toScalar(EMOJI, 2), 2); // before 👍
    assert.strictEqual(S.toScalar(EMOJI, 4), 3); // after 👍
    assert.strictEqual(S.toScalar(EMOJI, 6), 4); // after the skin tone
    assert.strictEqual(S.toScalar(EMOJI, EMOJI.length), [...EMOJI].length);
    assert.strictEqual(S.toUtf16(EMOJI, 3), 4);
    assert.strictEqual(S.toUtf16(EMOJI, 4), 6);
    assert.strictEqual(S.toUtf16(EMOJI, 7), 9);
  });

  test('emoji: offset inside a surrogate pair counts the pair as begun', () => {
    assert.strictEqual(S.toScalar(EMOJI, 3), 3);
  });

  test('combining characters count as separate scalars', () => {
    assert.strictEqual(S.toScalar(COMBINING, 5), 5);
    assert.strictEqual(S.toUtf16(COMBINING, 5), 5);
    assert.strictEqual([...COMBINING].length, COMBINING.length);
  });

  test('CJK is one unit per scalar', () => {
    for (let i = 0; i <= CJK.length; i++) assert.strictEqual(S.toScalar(CJK, i), i);
    assert.strictEqual(S.toUtf16(CJK, 2), 2);
  });

  test('round trip on every code point boundary', () => {
    const cps = [...MIXED];
    for (let n = 0; n <= cps.length; n++) {
      const u = S.toUtf16(MIXED, n);
      assert.strictEqual(u, cps.slice(0, n).join('').length);
      assert.strictEqual(S.toScalar(MIXED, u), n);
    }
  });

  test('offsets are clamped to the text', () => {
    assert.strictEqual(S.toScalar(EMOJI, 99), 7);
    assert.strictEqual(S.toScalar(EMOJI, -3), 0);
    assert.strictEqual(S.toUtf16(EMOJI, 99), EMOJI.length);
  });

  test('overlaps: end is exclusive', () => {
    const spans = [{ start: 2, end: 5, label: 'A' }, { start: 8, end: 10, label: 'B' }];
    assert.strictEqual(S.overlaps(spans, { start: 5, end: 8 }), false);
    assert.strictEqual(S.overlaps(spans, { start: 0, end: 2 }), false);
    assert.strictEqual(S.overlaps(spans, { start: 4, end: 6 }), true);
    assert.strictEqual(S.overlaps(spans, { start: 0, end: 20 }), true);
    assert.strictEqual(S.overlaps(spans, { start: 3, end: 4 }), true);
    assert.strictEqual(S.overlaps(spans, { start: 9, end: 12 }), true);
    assert.strictEqual(S.overlaps([], { start: 0, end: 1 }), false);
    assert.strictEqual(S.overlaps(spans, spans[0]), false, 'a span does not overlap itself');
  });

  test('rangeToSpan trims whitespace and converts to scalars', () => {
    const t = ' 😀 Tōkyō\n東京  ';
    // whole text -> "😀 Tōkyō\n東京"
    assert.deepStrictEqual(S.rangeToSpan(t, 0, t.length), { start: 1, end: 11 });
    // just " Tōkyō\n" (utf16 3..10) -> "Tōkyō"
    assert.deepStrictEqual(S.rangeToSpan(t, 3, 10), { start: 3, end: 8 });
    assert.strictEqual([...t].slice(3, 8).join(''), 'Tōkyō');
    // only whitespace
    assert.strictEqual(S.rangeToSpan(t, 0, 1), null);
    assert.strictEqual(S.rangeToSpan(t, 5, 5), null);
    // reversed bounds work
    assert.deepStrictEqual(S.rangeToSpan(t, 10, 3), { start: 3, end: 8 });
  });

  test('rangeToSpan keeps a whole astral character when a bound splits it', () => {
    const t = 'a😀b';
    assert.deepStrictEqual(S.rangeToSpan(t, 2, 3), { start: 1, end: 2 });
    assert.deepStrictEqual(S.rangeToSpan(t, 1, 2), { start: 1, end: 2 });
  });

  test('trimRange handles tabs, newlines and NBSP', () => {
    assert.deepStrictEqual(S.trimRange('\t\n\u00a0ab \n', 0, 7), [3, 5]);
  });

  test('segments split text around spans (scalar offsets)', () => {
    const t = 'I 👍 Zoë in 東京.';
    const spans = [{ start: 11, end: 13, label: 'LOC' }, { start: 4, end: 7, label: 'PER' }];
    const segs = S.segments(t, spans);
    assert.deepStrictEqual(segs.map((s) => s.text), ['I 👍 ', 'Zoë', ' in ', '東京', '.']);
    assert.deepStrictEqual(segs.map((s) => s.span && s.span.label), [null, 'PER', null, 'LOC', null]);
    assert.strictEqual(segs.map((s) => s.text).join(''), t);
  });

  test('segments skip overlapping and empty spans and keep all text', () => {
    const t = 'abcdef';
    const segs = S.segments(t, [{ start: 1, end: 4, label: 'A' }, { start: 2, end: 5, label: 'B' }, { start: 5, end: 5, label: 'C' }]);
    assert.deepStrictEqual(segs.map((s) => s.text), ['a', 'bcd', 'ef']);
    assert.deepStrictEqual(S.segments('', []), []);
  });

  // --- DOM: selectionToSpan (needs jsdom) ---
  let JSDOM = null;
  try {
    JSDOM = require('jsdom').JSDOM;
  } catch (e) {
    skipped++;
    console.log('skip: selectionToSpan DOM tests (jsdom not installed)');
  }
  if (JSDOM) {
    const dom = new JSDOM('<p id="before">x</p><div id="t"></div><p id="after">y</p>');
    const doc = dom.window.document;
    const root = doc.getElementById('t');
    const sel = dom.window.getSelection();
    // Renders text as the page does: text nodes and <mark> elements.
    const render = (text, spans) => {
      root.textContent = '';
      for (const seg of S.segments(text, spans)) {
        if (!seg.span) root.appendChild(doc.createTextNode(seg.text));
        else {
          const m = doc.createElement('mark');
          m.className = 'span';
          m.textContent = seg.text;
          root.appendChild(m);
        }
      }
    };
    const select = (sn, so, en, eo) => {
      const r = doc.createRange();
      r.setStart(sn, so);
      r.setEnd(en, eo);
      sel.removeAllRanges();
      sel.addRange(r);
    };
    const text = '😀 Zoë went to 東京 with 👍🏽 Bob.';
    const sc = (sub) => {
      const i = text.indexOf(sub);
      return { start: S.toScalar(text, i), end: S.toScalar(text, i + sub.length) };
    };

    test('selection in a plain text node', () => {
      render(text, []);
      const n = root.firstChild;
      const i = text.indexOf('Zoë');
      select(n, i - 1, n, i + 3 + 1); // with a space either side: trimmed
      assert.deepStrictEqual(S.selectionToSpan(root, sel), sc('Zoë'));
    });

    test('selection across marks and text nodes', () => {
      const spans = [sc('Zoë'), sc('東京')].map((s) => ({ ...s, label: 'X' }));
      render(text, spans);
      // from inside "Zoë" (mark text node, offset 1) to inside the text after 東京
      const zoeText = root.childNodes[1].firstChild;
      const after = root.childNodes[4];
      assert.strictEqual(after.data, ' with 👍🏽 Bob.');
      select(zoeText, 1, after, ' with 👍🏽'.length);
      const want = { start: sc('Zoë').start + 1, end: sc('👍🏽').end };
      assert.deepStrictEqual(S.selectionToSpan(root, sel), want);
    });

    test('selection with element boundary points', () => {
      render(text, [{ ...sc('東京'), label: 'LOC' }]);
      // (root, 1) is just before the mark, (root, 2) just after it
      select(root, 1, root, 2);
      assert.deepStrictEqual(S.selectionToSpan(root, sel), sc('東京'));
    });

    test('selection spilling outside the root is clamped', () => {
      render(text, []);
      select(doc.getElementById('before').firstChild, 0, root.firstChild, 1);
      assert.deepStrictEqual(S.selectionToSpan(root, sel), { start: 0, end: 1 });
      select(root.firstChild, text.indexOf('Bob'), doc.getElementById('after').firstChild, 1);
      assert.deepStrictEqual(S.selectionToSpan(root, sel), sc('Bob.'));
    });

    test('selection outside the root, collapsed or blank gives null', () => {
      render(text, []);
      const b = doc.getElementById('before').firstChild;
      select(b, 0, b, 1);
      assert.strictEqual(S.selectionToSpan(root, sel), null);
      select(root.firstChild, 3, root.firstChild, 3);
      assert.strictEqual(S.selectionToSpan(root, sel), null);
      select(root.firstChild, 2, root.firstChild, 3); // the space after 😀
      assert.strictEqual(S.selectionToSpan(root, sel), null);
      sel.removeAllRanges();
      assert.strictEqual(S.selectionToSpan(root, sel), null);
      assert.strictEqual(S.selectionToSpan(root, null), null);
    });
  }

  console.log(`spans.test.js: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  if (failed) process.exitCode = 1;
}
