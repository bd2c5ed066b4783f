// Character offsets for span annotation.
// The server counts Unicode scalar values (code points); JS strings count UTF-16 code units.
// Everything that leaves this module towards the server is in scalar offsets.
(function (root) {
  'use strict';

  const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
  const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

  // UTF-16 offset -> scalar offset. An offset inside a surrogate pair counts the pair as begun.
  function toScalar(text, utf16Offset) {
    const end = Math.max(0, Math.min(utf16Offset, text.length));
    let n = 0;
    for (let i = 0; i < end; i++) {
      // the low half of a pair belongs to the scalar its high half already counted
      if (!(isLow(text.charCodeAt(i)) && i > 0 && isHigh(text.charCodeAt(i - 1)))) n++;
    }
    return n;
  }

  // Scalar offset -> UTF-16 offset (clamped to the text).
  function toUtf16(text, scalarOffset) {
    let u = 0;
    let n = 0;
    for (const ch of text) { // for..of iterates code points
      if (n >= scalarOffset) break;
      u += ch.length;
      n++;
    }
    return u;
  }

  // True when candidate shares at least one character with any span (ends are exclusive).
  // The candidate object itself is ignored, so a span can be checked against its own list.
  function overlaps(spans, candidate) {
    return spans.some((s) => s !== candidate && s.start < candidate.end && candidate.start < s.end);
  }

  // Shrinks a UTF-16 range [start, end) so it neither starts nor ends on whitespace.
  // Whitespace is all in the BMP, so trimming in UTF-16 units never splits a pair.
  function trimRange(text, start, end) {
    while (start < end && /\s/.test(text[start])) start++;
    while (end > start && /\s/.test(text[end - 1])) end--;
    return [start, end];
  }

  // UTF-16 range -> trimmed scalar span, or null when nothing but whitespace is left.
  function rangeToSpan(text, start16, end16) {
    let a = Math.min(start16, end16);
    // a start inside a surrogate pair snaps back so the whole character is kept
    if (a > 0 && isLow(text.charCodeAt(a)) && isHigh(text.charCodeAt(a - 1))) a--;
    const [s, e] = trimRange(text, a, Math.max(start16, end16));
    if (s >= e) return null;
    return { start: toScalar(text, s), end: toScalar(text, e) };
  }

  // UTF-16 offset of a DOM boundary point within rootElement's text. Points before the root
  // clamp to 0 and points after it to the end, so a selection that spills out still works.
  function boundaryOffset(rootElement, node, offset) {
    const doc = rootElement.ownerDocument;
    const whole = doc.createRange();
    whole.selectNodeContents(rootElement);
    const cmp = whole.comparePoint(node, offset);
    if (cmp < 0) return 0;
    if (cmp > 0) return whole.toString().length;
    // The text before the point is the concatenation of the text nodes up to it (a Range's
    // toString walks exactly those). Label tags are drawn with CSS (::after), so every text
    // node under the root is item text.
    const before = doc.createRange();
    before.selectNodeContents(rootElement);
    before.setEnd(node, offset);
    return before.toString().length;
  }

  // The current DOM selection -> trimmed {start, end} in scalar offsets of rootElement's text,
  // or null when the selection is empty, whitespace only or outside the root.
  function selectionToSpan(rootElement, selection) {
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
    const r = selection.getRangeAt(0);
    const whole = rootElement.ownerDocument.createRange();
    whole.selectNodeContents(rootElement);
    // a range wholly before or after the root does not touch it
    if (r.compareBoundaryPoints(1 /* START_TO_END */, whole) <= 0) return null; // r ends before root starts
    if (r.compareBoundaryPoints(3 /* END_TO_START */, whole) >= 0) return null; // r starts after root ends
    const text = rootElement.textContent;
    const a = boundaryOffset(rootElement, r.startContainer, r.startOffset);
    const b = boundaryOffset(rootElement, r.endContainer, r.endOffset);
    return rangeToSpan(text, a, b);
  }

  // Splits text into pieces for rendering: [{text, span}] where span is null for plain text.
  // Spans are scalar offsets; overlapping or out-of-range spans are skipped.
  function segments(text, spans) {
    const out = [];
    let at = 0; // UTF-16
    const sorted = spans.slice().sort((x, y) => x.start - y.start || x.end - y.end);
    for (const s of sorted) {
      const a = toUtf16(text, s.start);
      const b = toUtf16(text, s.end);
      if (a < at || b <= a) continue;
      if (a > at) out.push({ text: text.slice(at, a), span: null });
      out.push({ text: text.slice(a, b), span: s });
      at = b;
    }
    if (at < text.length) out.push({ text: text.slice(at), span: null });
    return out;
  }

  const WickSpans = { toScalar, toUtf16, overlaps, trimRange, rangeToSpan, selectionToSpan, segments };
  root.WickSpans = WickSpans;
  if (typeof module !== 'undefined' && module.exports) module.exports = WickSpans;
})(typeof window !== 'undefined' ? window : globalThis);
