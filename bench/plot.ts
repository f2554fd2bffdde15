/**
 * A hand-written SVG of latency distributions (HDR-histogram style): x = percentile on a
 * "nines" scale (0, 50, 90, 99, 99.9, 99.99, max), y = latency on a log scale, one line per
 * series. Input: the percentile curves (µs) that `harness.curveUs` makes.
 */
const W = 860;
const H = 480;
const M = { left: 70, right: 20, top: 40, bottom: 50 };
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const MAX_X = 4.5;

function xOfPercentile(p: number): number {
  return p >= 100 ? MAX_X : Math.min(4, Math.log10(1 / (1 - p / 100)));
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmtUs(us: number): string {
  return us >= 1000 ? `${us / 1000} ms` : `${us} µs`;
}

export function latencySvg(title: string, curves: Record<string, Array<[number, number]>>): string {
  const all = Object.values(curves).flat().map(([, v]) => v).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.max(1, Math.min(...all))));
  const hi = Math.ceil(Math.log10(Math.max(...all)));
  const top = hi > lo ? hi : lo + 1;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number): number => M.left + (x / MAX_X) * pw;
  const sy = (us: number): number => M.top + ph - ((Math.log10(Math.max(us, 10 ** lo)) - lo) / (top - lo)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  // y grid: decades, with 2× and 5× minor lines
  for (let d = lo; d <= top; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d;
      if (Math.log10(v) > top + 1e-9) continue;
      const y = sy(v).toFixed(1);
      out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`);
      out.push(`<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#444">${esc(fmtUs(v))}</text>`);
    }
  }
  // x grid: percentiles
  for (const [p, label] of [[0, '0%'], [50, '50%'], [90, '90%'], [99, '99%'], [99.9, '99.9%'], [99.99, '99.99%'], [100, 'max']] as const) {
    const x = sx(xOfPercentile(p)).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + ph}" stroke="#ddd"/>`);
    out.push(`<text x="${x}" y="${M.top + ph + 16}" text-anchor="middle" fill="#444">${label}</text>`);
  }
  out.push(`<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle">percentile</text>`);
  out.push(`<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">latency (log scale)</text>`);
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  Object.entries(curves).forEach(([name, pts], i) => {
    const colour = COLOURS[i % COLOURS.length] as string;
    const dash = /echo/.test(name) ? ' stroke-dasharray="6 4"' : '';
    const d = pts.map(([p, v], j) => `${j === 0 ? 'M' : 'L'}${sx(xOfPercentile(p)).toFixed(1)},${sy(v).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`);
    for (const [p, v] of pts) out.push(`<circle cx="${sx(xOfPercentile(p)).toFixed(1)}" cy="${sy(v).toFixed(1)}" r="2.5" fill="${colour}"/>`);
    const ly = M.top + 14 + i * 17;
    out.push(`<line x1="${M.left + 10}" x2="${M.left + 40}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${M.left + 46}" y="${ly}" dominant-baseline="middle">${esc(name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
