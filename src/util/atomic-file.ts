import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** fsync a directory so that a rename inside it survives a power cut, not only a process crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replace `path` with the file that `write(tempPath)` produces: a reader sees either the old file or the
 * complete new one, never a partial write.
 */
export async function replaceFileAtomically(path: string, write: (tempPath: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    await write(temp);
    await syncFile(temp);
    await rename(temp, path);
    await syncDir(dirname(path));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Removes the temporary files and folders (`<name>.tmp-<pid>-…`) in `dir` whose writer is no longer running: a
 * process killed mid-write leaves them, and nothing else ever would. Returns their names.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const stale = names.filter((name) => {
    const pid = Number(/\.tmp-(\d+)-/.exec(name)?.[1]);
    return Number.isInteger(pid) && pid > 0 && !isRunning(pid);
  });
  for (const name of stale) await rm(join(dir, name), { recursive: true, force: true });
  return stale;
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function writeFileAtomically(path: string, data: string | Uint8Array): Promise<void> {
  await replaceFileAtomically(path, async (temp) => {
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
  });
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
