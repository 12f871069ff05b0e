import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * parseArgs for the scripts: an unknown option prints the script's usage and exits 2 (not a stack trace), and
 * `--help` (which `config` must declare) prints it and exits 0.
 */
export function parseScriptArgs<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  let parsed: ReturnType<typeof parseArgs<T>>;
  try {
    parsed = parseArgs(config);
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    return process.exit(2);
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return parsed;
}

/**
 * `<dataset> [--seed n]` plus `extra` string options, for the relevance scripts: a wrong call prints the usage and
 * exits 2.
 */
export function parseDatasetArgs(usage: string, extra: string[] = []): { dataset: string; seed: number; options: Record<string, string | undefined> } {
  const { values, positionals } = parseScriptArgs(
    {
      allowPositionals: true,
      options: {
        seed: { type: 'string', default: '1' },
        help: { type: 'boolean', short: 'h', default: false },
        ...Object.fromEntries(extra.map((name) => [name, { type: 'string' as const }])),
      },
    },
    usage,
  );
  const seed = Number(values.seed);
  if (positionals.length !== 1 || !Number.isInteger(seed) || seed < 0) {
    console.error(usage);
    return process.exit(2);
  }
  return { dataset: positionals[0], seed, options: values as unknown as Record<string, string | undefined> };
}
