/** The req/s chart as SVG text, built here so the harness needs no plotting dependency. */
import type { Group } from './cases.ts';

export interface Bar {
  label: string;
  value: number;
  group: Group;
}

const COLORS: Record<Group, string> = {
  baseline: '#8c8c8c',
  oncely: '#2f6fde',
  gateway: '#7a4fd6',
  peer: '#e07b24',
};

const ROW = 20;
const LABEL_WIDTH = 330;
const BAR_WIDTH = 420;
const VALUE_WIDTH = 70;
const TOP = 40;

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Horizontal bars, one per case and path, scaled to the largest value. */
export function barChart(title: string, bars: readonly Bar[]): string {
  const max = Math.max(1, ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
  const width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH;
  const height = TOP + bars.length * ROW + 40;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  bars.forEach((bar, i) => {
    const y = TOP + i * ROW;
    const value = Number.isFinite(bar.value) ? bar.value : 0;
    const w = Math.max(1, Math.round((value / max) * BAR_WIDTH));
    parts.push(
      `<text x="${LABEL_WIDTH - 8}" y="${y + 14}" text-anchor="end">${escapeXml(bar.label)}</text>`,
      `<rect x="${LABEL_WIDTH}" y="${y + 3}" width="${w}" height="${ROW - 6}" fill="${COLORS[bar.group]}"/>`,
      `<text x="${LABEL_WIDTH + w + 6}" y="${y + 14}">${Number.isFinite(bar.value) ? Math.round(bar.value).toLocaleString('en-US') : 'not run'}</text>`,
    );
  });
  const legendY = TOP + bars.length * ROW + 20;
  (Object.keys(COLORS) as Group[]).forEach((group, i) => {
    const x = 10 + i * 120;
    parts.push(
      `<rect x="${x}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[group]}"/>`,
      `<text x="${x + 18}" y="${legendY}">${group}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
