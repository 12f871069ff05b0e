import { createReadStream } from 'node:fs';
import { crc32 as zlibCrc32 } from 'node:zlib';

// CRC-32 rather than sha256 for the index files: it catches the damage a disk or an interrupted copy does (every
// burst up to 32 bits, anything else but once in 4 billion), at twice sha256's speed here, and a 1M-image index
// is read on every start.

export function crc32(bytes: Uint8Array): string {
  return zlibCrc32(bytes).toString(16).padStart(8, '0');
}

export async function crc32File(path: string): Promise<string> {
  let value = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) value = zlibCrc32(chunk as Buffer, value);
  return value.toString(16).padStart(8, '0');
}
