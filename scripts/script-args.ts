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
