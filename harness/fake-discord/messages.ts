import { extname } from 'node:path';
import type { LoggedFile } from './http.js';
import type { FakeState, StoredAttachment } from './state.js';

/** A file a fake user posts, or a test uploads as an interaction's attachment option. */
export interface FileInput {
  filename: string;
  data: Buffer | Uint8Array;
  /** Guessed from the extension when left out. */
  contentType?: string;
  /** Read from PNG headers when left out. */
  width?: number;
  height?: number;
  description?: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.txt': 'text/plain; charset=utf-8',
};

export function pngSize(data: Buffer): { width: number; height: number } | undefined {
  const signature = '89504e470d0a1a0a';
  if (data.length < 24 || data.subarray(0, 8).toString('hex') !== signature) return undefined;
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
}

export function storedAttachment(state: FakeState, channelId: string, file: FileInput): { attachment: StoredAttachment; data: Buffer } {
  const data = Buffer.from(file.data);
  const size = file.width === undefined ? pngSize(data) : { width: file.width, height: file.height ?? file.width };
  const attachment: StoredAttachment = {
    id: state.snowflake(),
    channelId,
    filename: file.filename,
    contentType: file.contentType ?? CONTENT_TYPES[extname(file.filename).toLowerCase()] ?? 'application/octet-stream',
    size: data.length,
    ...(size ?? {}),
    ...(file.description === undefined ? {} : { description: file.description }),
  };
  return { attachment, data };
}

interface AttachmentReference {
  id: string | number;
  filename?: string;
  description?: string;
}

/**
 * The attachments a create or edit ends up with. @discordjs/rest uploads `files[n]` parts and lists them in
 * `payload_json.attachments` as `{ id: n }`; on edits that list also names the existing attachments to keep, and
 * leaving it out keeps them all.
 */
export function attachmentsAfter(
  state: FakeState,
  channelId: string,
  body: { attachments?: AttachmentReference[] } | undefined,
  files: LoggedFile[],
  existing: StoredAttachment[],
): { kept: StoredAttachment[]; uploaded: { attachment: StoredAttachment; data: Buffer }[] } {
  const references = body?.attachments;
  const kept = references ? existing.filter((attachment) => references.some((reference) => String(reference.id) === attachment.id)) : existing;
  const uploaded = files.map((file, position) => {
    const index = /\[(\d+)\]$/.exec(file.field)?.[1] ?? String(position);
    const reference = references?.find((candidate) => String(candidate.id) === index);
    return storedAttachment(state, channelId, {
      filename: reference?.filename ?? file.filename,
      data: file.data,
      ...(file.contentType ? { contentType: file.contentType } : {}),
      ...(reference?.description === undefined ? {} : { description: reference.description }),
    });
  });
  return { kept, uploaded };
}

/** Emoji as they appear in reaction routes (`%E2%AC%85%EF%B8%8F`, `name:id`) and in state keys. */
export function emojiFromKey(key: string): { id: string | null; name: string } {
  const separator = key.lastIndexOf(':');
  return separator === -1 ? { id: null, name: key } : { id: key.slice(separator + 1), name: key.slice(0, separator) };
}
