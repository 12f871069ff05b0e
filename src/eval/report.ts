/** The evaluation report as Markdown, and its chart as a Vega-Lite spec rendered to PNG. */
import sharp from 'sharp';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { EvalReport } from './evaluate.js';
import { K } from './evaluate.js';

const f3 = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(3));

export function markdownReport(report: EvalReport): string {
  const lines: string[] = [];
  lines.push(
    `${report.images} images, ${report.labels} labels, ${report.coarseLabels} coarse labels; preprocessing: ${report.fit}; seed ${report.seed}` +
      `${report.quick ? ' (quick run: not numbers to report)' : ''}; ${report.robustnessQueries} edited-copy queries; ${report.seconds.toFixed(0)} s.`,
    '',
    `| key | bytes/image | P@${K} | mAP@${K} | coarse P@${K} | edited copy recall@1 | mean rank | active units | mean KL/dim |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const key of report.keys) {
    lines.push(
      `| ${key.key} | ${key.bytesPerImage} | ${f3(key.precision)} | ${f3(key.map)} | ${f3(key.coarsePrecision)} | ` +
        `${f3(key.robustness?.recallAt1)} | ${key.robustness ? key.robustness.meanRank.toFixed(1) : '–'} | ${key.activeUnits ?? '–'} | ${f3(key.meanKlPerDim)} |`,
    );
  }
  const other = report.otherFit;
  lines.push('', `Raw features with the other preprocessing (${other.fit}): P@${K} ${f3(other.scores.precision)}, mAP@${K} ${f3(other.scores.map)}, coarse P@${K} ${f3(other.scores.coarsePrecision)}.`);

  const withRobustness = report.keys.filter((k) => k.robustness);
  if (withRobustness.length > 0) {
    const transforms = Object.keys(withRobustness[0].robustness!.byTransform);
    lines.push('', `Edited copies, recall@1 (mean rank) per edit:`, '', `| key | ${transforms.join(' | ')} |`, `|---|${transforms.map(() => '---:').join('|')}|`);
    for (const key of withRobustness) {
      const cells = Object.values(key.robustness!.byTransform).map((r) => `${f3(r.recallAt1)} (${r.meanRank.toFixed(1)})`);
      lines.push(`| ${key.key} | ${cells.join(' | ')} |`);
    }
  }
  if (report.learningCurve.length > 0) {
    lines.push('', 'Learning curve (each subset is its own collection: VAE trained on it, every image a query against the rest):', '');
    lines.push(`| images | raw P@${K} | VAE P@${K} | Δ | raw coarse | VAE coarse | overlap@${K} with raw | active units |`, '|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const p of report.learningCurve) {
      lines.push(
        `| ${p.size} | ${f3(p.raw.precision)} | ${f3(p.vae.precision)} | ${(p.vae.precision - p.raw.precision >= 0 ? '+' : '') + f3(p.vae.precision - p.raw.precision)} | ` +
          `${f3(p.raw.coarsePrecision)} | ${f3(p.vae.coarsePrecision)} | ${f3(p.overlapWithRaw)} | ${p.activeUnits} |`,
      );
    }
  }
  if (report.transfer.length > 0) {
    lines.push('', `Transfer across coarse categories (P@${K} / coarse P@${K} on the evaluated half):`, '');
    lines.push('| evaluated on | images | raw | PCA fitted on other half | VAE fitted on other half | VAE fitted on this half |', '|---|---:|---:|---:|---:|---:|');
    for (const t of report.transfer) {
      const cell = (s: { precision: number; coarsePrecision: number }) => `${f3(s.precision)} / ${f3(s.coarsePrecision)}`;
      lines.push(`| ${t.evaluatedOn.join(', ')} | ${t.images} | ${cell(t.raw)} | ${cell(t.pcaOther)} | ${cell(t.vaeOther)} | ${cell(t.vaeOwn)} |`);
    }
  }
  if (report.failures.length > 0) {
    lines.push('', `Skipped ${report.failures.length} images that could not be read:`, '');
    for (const f of report.failures) lines.push(`- ${f.path}: ${f.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Left: the retrieval measures per key; right: VAE against raw features as the collection grows. */
export function chartSpec(report: EvalReport): vegaLite.TopLevelSpec {
  const bars = report.keys
    .filter((k) => !Number.isNaN(k.precision))
    .flatMap((k) => [
      { key: k.key, measure: `P@${K}`, value: k.precision },
      { key: k.key, measure: `mAP@${K}`, value: k.map },
      { key: k.key, measure: `coarse P@${K}`, value: k.coarsePrecision },
    ]);
  const curve = report.learningCurve.flatMap((p) => [
    { images: p.size, key: 'raw', value: p.raw.precision },
    { images: p.size, key: 'VAE (own set)', value: p.vae.precision },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    background: 'white',
    config: { font: 'DejaVu Sans' },
    hconcat: [
      {
        title: `Leave-one-out retrieval (${report.images} images)`,
        data: { values: bars },
        mark: 'bar',
        width: 360,
        height: 240,
        encoding: {
          x: { field: 'measure', type: 'nominal', title: null, axis: { labelAngle: 0 } },
          xOffset: { field: 'key', type: 'nominal' },
          y: { field: 'value', type: 'quantitative', title: 'score', scale: { zero: true } },
          color: { field: 'key', type: 'nominal', title: 'index key' },
        },
      },
      {
        title: `P@${K} against collection size`,
        data: { values: curve },
        mark: { type: 'line', point: true },
        width: 300,
        height: 240,
        encoding: {
          x: { field: 'images', type: 'quantitative', scale: { type: 'log', nice: false }, title: 'images in the collection' },
          y: { field: 'value', type: 'quantitative', title: `P@${K}`, scale: { zero: false } },
          color: { field: 'key', type: 'nominal', title: null },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  };
}

export async function renderChartPng(spec: vegaLite.TopLevelSpec): Promise<Buffer> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG(2);
  view.finalize();
  return sharp(Buffer.from(svg)).png().toBuffer();
}
