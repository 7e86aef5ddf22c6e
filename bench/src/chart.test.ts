import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { barChart } from './chart.ts';

describe('barChart', () => {
  const svg = barChart('req/s <test>', [
    { label: 'bare', value: 1000, group: 'baseline' },
    { label: 'a & b', value: 500, group: 'oncely' },
    { label: 'missing', value: Number.NaN, group: 'peer' },
  ]);

  it('is one SVG document with a bar per entry, scaled to the largest', () => {
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    const widths = [...svg.matchAll(/<rect x="330" y="\d+" width="(\d+)"/g)].map((m) => Number(m[1]));
    assert.deepEqual(widths, [420, 210, 1]);
  });

  it('escapes text and says when a case was not run', () => {
    assert.match(svg, /req\/s &lt;test&gt;/);
    assert.match(svg, /a &amp; b/);
    assert.match(svg, />not run</);
  });
});
