// Small inline-SVG charts: a line (or area) chart and a bar chart over time buckets. No library.

const W = 560, H = 190, L = 52, R = 12, T = 12, B = 26;

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

/** A round upper bound and its ticks for values up to `max`. */
function niceTicks(max) {
  if (!(max > 0)) return [0, 1];
  const step0 = max / 4;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0);
  const ticks = [];
  for (let v = 0; v <= max + step * 0.001; v += step) ticks.push(v);
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

/**
 * series: [{name, color, values: number[]}]; labels: string per bucket;
 * opts: {format(v) -> string, kind: 'line' | 'bar', title, noFill}; a series may set dash: true.
 * In a line chart a null value leaves a gap.
 */
export function chart(series, labels, opts = {}) {
  const format = opts.format || ((v) => String(v));
  const n = labels.length;
  const all = series.flatMap((s) => s.values).filter((v) => v != null);
  const ticks = niceTicks(Math.max(0, ...all));
  const top = ticks[ticks.length - 1] || 1;
  const slot = (W - L - R) / Math.max(n, 1);
  const x = opts.kind === 'bar' ? (i) => L + i * slot + slot / 2 : (i) => L + (n <= 1 ? 0 : (i * (W - L - R)) / (n - 1));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const parts = [];
  for (const t of ticks) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(t)}" y2="${y(t)}" stroke="#e8ebf0"/>`);
    parts.push(`<text x="${L - 6}" y="${y(t) + 4}" text-anchor="end" font-size="10.5" fill="#5b6470">${esc(format(t))}</text>`);
  }
  const every = Math.max(1, Math.ceil(n / 6));
  // Every `every`-th label, and the last (anchored at its end, so it reaches a whole step to
  // its left): a regular one less than a step before it gives way.
  const shown = (i) => i === n - 1 || (i % every === 0 && n - 1 - i >= every);
  labels.forEach((lab, i) => {
    if (shown(i)) {
      const anchor = i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle';
      parts.push(`<text x="${x(i)}" y="${H - 8}" text-anchor="${anchor}" font-size="10.5" fill="#5b6470">${esc(lab)}</text>`);
    }
  });
  if (opts.kind === 'bar') {
    const bw = Math.max(1, (slot * 0.8) / series.length);
    series.forEach((s, k) => {
      s.values.forEach((v, i) => {
        const bx = L + i * slot + slot * 0.1 + k * bw;
        parts.push(`<rect x="${bx.toFixed(1)}" y="${y(v).toFixed(1)}" width="${bw.toFixed(1)}" height="${(y(0) - y(v)).toFixed(1)}" fill="${s.color}"><title>${esc(labels[i])} · ${esc(s.name)}: ${esc(format(v))}</title></rect>`);
      });
    });
  } else {
    // A null value (a bucket without samples, for a percentile) breaks the line there.
    series.forEach((s) => {
      const runs = [];
      let run = [];
      s.values.forEach((v, i) => {
        if (v == null) { if (run.length) runs.push(run); run = []; } else run.push(i);
      });
      if (run.length) runs.push(run);
      for (const r of runs) {
        const pts = r.map((i) => `${x(i).toFixed(1)},${y(s.values[i]).toFixed(1)}`).join(' ');
        if (!opts.noFill) parts.push(`<polygon points="${x(r[0]).toFixed(1)},${y(0)} ${pts} ${x(r[r.length - 1]).toFixed(1)},${y(0)}" fill="${s.color}" opacity="0.10"/>`);
        if (r.length === 1) parts.push(`<circle cx="${x(r[0]).toFixed(1)}" cy="${y(s.values[r[0]]).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
        else parts.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"${s.dash ? ' stroke-dasharray="5 3"' : ''}/>`);
      }
      s.values.forEach((v, i) => {
        if (v != null) parts.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="5" fill="transparent"><title>${esc(labels[i])} · ${esc(s.name)}: ${esc(format(v))}</title></circle>`);
      });
    });
  }
  const legend = series.map((s) => `<span><span class="swatch" style="background:${s.color}"></span>${esc(s.name)}</span>`).join('');
  const label = `${opts.title || ''}: ${series.map((s) => s.name).join(', ')}`;
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)}">${parts.join('')}</svg><div class="legend">${legend}</div>`;
}
