import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.js';

/** The test parser is strict: what it accepts in metrics.test.ts is worth something. */

test('parses families, labels with escapes, special values and histograms', () => {
  const families = parsePrometheusText([
    '# HELP a_total Things, with a \\\\ and a \\n.',
    '# TYPE a_total counter',
    'a_total{kind="x\\"y",path="C:\\\\n\\n"} 3',
    'a_total{kind="z"} 1.5e3 1700000000000',
    '# TYPE h histogram',
    'h_bucket{le="1"} 1',
    'h_bucket{le="+Inf"} 2',
    'h_sum 3',
    'h_count 2',
    'g NaN',
    'n Nan',
    'i +Inf',
    '',
  ].join('\n'));
  assert.equal(families.get('a_total')!.help, 'Things, with a \\ and a \n.');
  assert.equal(sampleValue(families, 'a_total', { kind: 'x"y', path: 'C:\\n\n' }), 3);
  assert.equal(sampleValue(families, 'a_total', { kind: 'z' }), 1500);
  assert.equal(families.get('h')!.samples.length, 4);
  assert.ok(Number.isNaN(sampleValue(families, 'g')));
  assert.ok(Number.isNaN(sampleValue(families, 'n')), 'any case, as Go\'s ParseFloat (prom-client writes "Nan")');
  assert.equal(sampleValue(families, 'i'), Infinity);
});

test('rejects what a scraper could misread, saying which line', () => {
  const table: [string, RegExp][] = [
    ['a 1', /end with a line feed/],
    ['a{b="c} 1\n', /unterminated value of label b/],
    ['a{b="\\t"} 1\n', /not an escape/],
    ['a{b="1",b="2"} 1\n', /label b twice/],
    ['a{1b="x"} 1\n', /not a label name/],
    ['a one\n', /"one" is not a float/],
    ['a 1\nb 1\na 2\n', /family a appears again/],
    ['# TYPE a counter\n# TYPE a counter\n', /a second TYPE/],
    ['# HELP a x\n# HELP a y\n', /a second HELP/],
    ['a 1\n# TYPE a gauge\n', /TYPE of a after its samples/],
    ['# TYPE a counter\na -1\n', /counter below zero/],
    ['# TYPE a wibble\n', /unknown type/],
    ['# TYPE h histogram\nh_bucket 1\n', /bucket without le/],
    ['a{b="1"} 1\na{b="1"} 2\n', /same series twice/],
  ];
  for (const [text, message] of table) assert.throws(() => parsePrometheusText(text), message, JSON.stringify(text));
});
