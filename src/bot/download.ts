import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { AppError } from '../errors.js';

export interface DownloadPolicy {
  /** host or host:port entries; only these are contacted. */
  hosts: string[];
  /** Test mode: plain http and loopback addresses are accepted. */
  allowInsecure: boolean;
  maxBytes: number;
  timeoutMs?: number;
  retries?: number;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

/** The URL if the policy lets us fetch it; attachments are only ever fetched from Discord's CDN. */
export function checkDownloadUrl(raw: string, policy: DownloadPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError('DOWNLOAD_REFUSED', 'That is not a valid link.');
  }
  const secure = url.protocol === 'https:';
  const insecureAllowed = policy.allowInsecure && url.protocol === 'http:';
  if (!secure && !insecureAllowed) throw new AppError('DOWNLOAD_REFUSED', 'Only https links to Discord’s CDN are downloaded.');
  const host = url.host.toLowerCase();
  const listed = policy.hosts.includes(host) || policy.hosts.includes(url.hostname.toLowerCase());
  if (!listed) throw new AppError('DOWNLOAD_REFUSED', 'Only images on Discord’s CDN are downloaded.', { details: { host } });
  if (LOOPBACK.test(url.hostname) && !policy.allowInsecure) throw new AppError('DOWNLOAD_REFUSED', 'Loopback addresses are not downloaded.');
  return url;
}

/**
 * Downloads an image with a byte cap enforced while streaming, no redirects (a redirect could leave the CDN), a
 * timeout, and retries with backoff for transient failures. 404/403 are final: attachment URLs expire.
 */
export async function downloadImage(raw: string, policy: DownloadPolicy): Promise<Buffer> {
  const url = checkDownloadUrl(raw, policy);
  const retries = policy.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      return await downloadOnce(url, policy);
    } catch (error) {
      const transient = error instanceof AppError && error.details.transient === true;
      if (!transient || attempt >= retries) throw error;
      await sleep(250 * 2 ** attempt);
    }
  }
}

async function downloadOnce(url: URL, policy: DownloadPolicy): Promise<Buffer> {
  const timeoutMs = policy.timeoutMs ?? 15_000;
  let response;
  try {
    response = await request(url, { method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs * 2) });
  } catch (error) {
    throw new AppError('DOWNLOAD_FAILED', 'The image could not be downloaded.', { cause: error, details: { transient: true } });
  }
  const { statusCode, headers, body } = response;
  if (statusCode !== 200) {
    await body.dump().catch(() => undefined);
    const transient = statusCode === 429 || statusCode >= 500;
    const message =
      statusCode >= 300 && statusCode < 400
        ? 'The image link redirects elsewhere; it was not followed.'
        : statusCode === 404 || statusCode === 403
          ? 'The image is no longer available (deleted, or its link has expired).'
          : `The image could not be downloaded (HTTP ${statusCode}).`;
    throw new AppError('DOWNLOAD_FAILED', message, { details: { statusCode, transient } });
  }
  const declared = Number(headers['content-length'] ?? 0);
  if (declared > policy.maxBytes) {
    await body.dump().catch(() => undefined);
    throw tooLarge(policy.maxBytes);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      total += (chunk as Buffer).length;
      if (total > policy.maxBytes) {
        body.destroy();
        throw tooLarge(policy.maxBytes);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError('DOWNLOAD_FAILED', 'The image download was interrupted.', { cause: error, details: { transient: true } });
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(maxBytes: number): AppError {
  return new AppError('IMAGE_TOO_LARGE', `The image is larger than ${Math.round(maxBytes / 1024 / 1024)} MB.`);
}
