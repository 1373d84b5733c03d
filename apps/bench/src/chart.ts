/** One line of the chart. */
export interface Series {
  name: string;
  /** One value per category, 0–1; `undefined` leaves a gap. */
  values: (number | undefined)[];
}

// One per strategy of section 2, in its order; the dotted fifth (two instances) stays visible
// where it runs on top of the fourth (one instance).
const COLORS = [
  '#6b7280',
  '#dc2626',
  '#d97706',
  '#2563eb',
  '#0891b2',
  '#059669',
  '#7c3aed',
  '#db2777',
];
const DASHES = ['4 3', '', '6 3', '', '2 3', '', '', ''];

function xmlText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/**
 * A self-contained SVG line chart: categories along x, a share (0–100 %) up y, one line per
 * series, legend on the right. No dependencies, so the report renders anywhere.
 */
export function lineChartSvg(options: {
  title: string;
  subtitle: string;
  xLabel: string;
  yLabel: string;
  categories: string[];
  series: Series[];
}): string {
  const width = 860;
  const height = 420;
  const left = 64;
  const top = 64;
  const plotWidth = 520;
  const plotHeight = 280;
  const { categories, series } = options;
  const x = (i: number) =>
    left + (categories.length === 1 ? plotWidth / 2 : (i * plotWidth) / (categories.length - 1));
  const y = (v: number) => top + plotHeight - v * plotHeight;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12" role="img" aria-labelledby="chart-title">`,
    `<title id="chart-title">${xmlText(`${options.title}: ${options.subtitle}`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="24" font-size="16" font-weight="600" fill="#111827">${xmlText(options.title)}</text>`,
    `<text x="${left}" y="44" fill="#4b5563">${xmlText(options.subtitle)}</text>`,
  );
  for (let tick = 0; tick <= 100; tick += 20) {
    const ty = y(tick / 100);
    out.push(
      `<line x1="${left}" y1="${ty}" x2="${left + plotWidth}" y2="${ty}" stroke="#e5e7eb"/>`,
      `<text x="${left - 8}" y="${ty + 4}" text-anchor="end" fill="#374151">${tick} %</text>`,
    );
  }
  categories.forEach((category, i) => {
    out.push(
      `<line x1="${x(i)}" y1="${top}" x2="${x(i)}" y2="${top + plotHeight}" stroke="#f3f4f6"/>`,
      `<text x="${x(i)}" y="${top + plotHeight + 18}" text-anchor="middle" fill="#374151">${xmlText(category)}</text>`,
    );
  });
  out.push(
    `<text x="${left + plotWidth / 2}" y="${top + plotHeight + 42}" text-anchor="middle" fill="#111827">${xmlText(options.xLabel)}</text>`,
    `<text x="18" y="${top + plotHeight / 2}" text-anchor="middle" fill="#111827" transform="rotate(-90 18 ${top + plotHeight / 2})">${xmlText(options.yLabel)}</text>`,
    `<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#9ca3af"/>`,
  );
  series.forEach((s, index) => {
    const color = COLORS[index % COLORS.length];
    const dash = DASHES[index % DASHES.length];
    let path = '';
    s.values.forEach((v, i) => {
      if (v === undefined) return;
      path += `${path === '' ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
    });
    out.push(
      `<path d="${path.trim()}" fill="none" stroke="${color}" stroke-width="2.5"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
    );
    s.values.forEach((v, i) => {
      if (v === undefined) return;
      out.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${color}"/>`);
    });
    const ly = top + 8 + index * 22;
    const lx = left + plotWidth + 24;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${color}" stroke-width="2.5"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      `<text x="${lx + 32}" y="${ly + 4}" fill="#111827">${xmlText(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
