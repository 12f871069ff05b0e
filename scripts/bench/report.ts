import { SUITES, type Row, type SuiteName, type machineInfo } from './common.js';

export interface SuiteRecord {
  seconds: number;
  /** Load average (1, 5, 15 min) when the suite started and ended. */
  loadBefore: [number, number, number];
  loadAfter: [number, number, number];
  rows: Row[];
  detail: Record<string, unknown>;
}

export interface BenchReport {
  startedAt: string;
  mode: 'quick' | 'full';
  machine: ReturnType<typeof machineInfo>;
  suites: Partial<Record<SuiteName, SuiteRecord>>;
}

export function targetMet(row: Row): boolean | undefined {
  if (!row.target || !Number.isFinite(row.value)) return row.target ? false : undefined;
  return row.target.op === '>=' ? row.value >= row.target.value : row.value <= row.target.value;
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

export function markdownTable(report: BenchReport): string {
  const m = report.machine;
  const lines = [
    `Run ${report.startedAt} (${report.mode}) on ${m.cpu}, ${m.cores} cores at ${m.mhz} MHz (${m.simd}), ${m.memoryGiB} GiB, Node ${m.node}.`,
    `Load average at start: ${m.loadAverage.join(' / ')}. ≈ marks a figure derived from measurements at a smaller size.`,
    '',
    '| suite | metric | value | unit | target | met | notes |',
    '|---|---|---:|---|---|---|---|',
  ];
  // In suite order, whatever order a resumed run finished them in.
  for (const suite of SUITES) {
    const record = report.suites[suite];
    if (!record) continue;
    for (const row of record.rows) {
      const met = targetMet(row);
      const value = Number.isFinite(row.value) ? `${row.estimated ? '≈ ' : ''}${row.value}` : 'n/a';
      const target = row.target ? `${row.target.op} ${row.target.value}` : '';
      lines.push(`| ${suite} | ${cell(row.metric)} | ${value} | ${row.unit} | ${target} | ${met === undefined ? '' : met ? 'yes' : '**no**'} | ${cell(row.note ?? '')} |`);
    }
    lines.push(`| ${suite} | _load average before → after, duration_ | | | | | ${record.loadBefore[0]} → ${record.loadAfter[0]}, ${record.seconds} s |`);
  }
  return `${lines.join('\n')}\n`;
}
