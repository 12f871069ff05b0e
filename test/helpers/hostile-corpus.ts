// Broken and hostile inputs, generated in memory (nothing binary is committed): each sample says which outcomes are
// correct for it. Hand-built containers (GIF, WebP, PNG headers) where sharp cannot write the hostile shape itself.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { ErrorCode } from '../../src/errors.js';
import { mulberry32 } from '../../src/util/random.js';

export type Outcome = 'indexed' | ErrorCode;

export interface HostileSample {
  kind: string;
  /** Distinguishes the samples of one kind (an offset, a seed). */
  variant?: string;
  bytes: Uint8Array;
  accept: Outcome[];
}

export interface CorpusOptions {
  /** A file an SVG points at; reading it would mean the decoder followed an external reference. */
  probeFile: string;
  /** An http URL on a local server; any request to it is a network access. */
  probeUrl: string;
  seed?: number;
}

const OK: Outcome[] = ['indexed'];
/** A damaged file may still decode, or fail, or (a flipped bit in its header) claim a size over the limit. */
const DAMAGED: Outcome[] = ['indexed', 'IMAGE_CORRUPT', 'IMAGE_UNSUPPORTED', 'IMAGE_TOO_MANY_PIXELS'];
const NOT_AN_IMAGE: Outcome[] = ['IMAGE_UNSUPPORTED'];
const TOO_BIG: Outcome[] = ['IMAGE_TOO_MANY_PIXELS'];

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/** A PNG whose IHDR (with a valid CRC) claims `width`×`height` over a few rows of real data. */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit greyscale
  const rows = deflateSync(Buffer.alloc(4 * (width + 1)));
  return Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), pngChunk('IHDR', ihdr), pngChunk('IDAT', rows), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A GIF of `frames` 1×1 frames on a `width`×`height` logical screen. */
function gifWithFrames(frames: number, width = 1, height = 1): Buffer {
  const head = Buffer.from('GIF89a\0\0\0\0\x80\0\0\0\0\0\xff\xff\xff', 'latin1');
  head.writeUInt16LE(width, 6);
  head.writeUInt16LE(height, 8);
  const frame = Buffer.from([0x21, 0xf9, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00]);
  return Buffer.concat([head, ...Array.from({ length: frames }, () => frame), Buffer.from([0x3b])]);
}

function riffChunk(type: string, data: Uint8Array): Buffer {
  const pad = data.length % 2;
  const out = Buffer.alloc(8 + data.length + pad);
  out.write(type, 0, 'latin1');
  out.writeUInt32LE(data.length, 4);
  out.set(data, 8);
  return out;
}

function uint24(value: number): Buffer {
  const b = Buffer.alloc(3);
  b.writeUIntLE(value, 0, 3);
  return b;
}

/** An animated WebP: `frames` copies of one small lossless frame on a `width`×`height` canvas. */
async function webpWithFrames(frames: number, width = 16, height = 16): Promise<Buffer> {
  const still = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#3a7' } }).webp({ lossless: true }).toBuffer();
  const vp8l = still.subarray(12); // the VP8L chunk after "RIFF<size>WEBP"
  const anmf = riffChunk('ANMF', Buffer.concat([uint24(0), uint24(0), uint24(15), uint24(15), uint24(40), Buffer.from([0]), vp8l]));
  const vp8x = riffChunk('VP8X', Buffer.concat([Buffer.from([0x02, 0, 0, 0]), uint24(width - 1), uint24(height - 1)]));
  const anim = riffChunk('ANIM', Buffer.from([0, 0, 0, 0, 0, 0]));
  const body = Buffer.concat([Buffer.from('WEBP', 'latin1'), vp8x, anim, ...Array.from({ length: frames }, () => anmf)]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** A baseline JPEG whose SOF0 says `width`×`height`. */
function jpegClaiming(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i < out.length - 9; ) {
    const marker = out[i + 1];
    const length = out.readUInt16BE(i + 2);
    if (marker === 0xc0 || marker === 0xc2) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
    i += 2 + length;
  }
  throw new Error('no SOF marker');
}

function truncations(kind: string, bytes: Buffer): HostileSample[] {
  const offsets = [1, 4, 8, 12, 16, 24, 33, 64, 100, ...[0.25, 0.5, 0.75, 0.9, 0.99].map((f) => Math.floor(bytes.length * f)), bytes.length - 1];
  return [...new Set(offsets)].filter((o) => o < bytes.length).map((o) => ({ kind, variant: `@${o}`, bytes: bytes.subarray(0, o), accept: DAMAGED }));
}

function bitFlips(kind: string, bytes: Buffer, random: () => number, count: number): HostileSample[] {
  return Array.from({ length: count }, (_, i) => {
    const copy = Buffer.from(bytes);
    for (let f = 0; f < 1 + (i % 8); f++) {
      const at = Math.floor(random() * copy.length);
      copy[at] ^= 1 << Math.floor(random() * 8);
    }
    return { kind, variant: `#${i}`, bytes: copy, accept: DAMAGED };
  });
}

export async function hostileCorpus(options: CorpusOptions): Promise<HostileSample[]> {
  const random = mulberry32(options.seed ?? 6);
  const photo = sharp({
    create: { width: 96, height: 64, channels: 4, background: { r: 180, g: 60, b: 40, alpha: 0.6 } },
  }).composite([{ input: Buffer.from('<svg width="40" height="30"><circle cx="20" cy="15" r="12" fill="#24a"/></svg>'), left: 20, top: 10 }]);
  const png = await photo.clone().png().toBuffer();
  const jpeg = await photo.clone().jpeg({ quality: 85 }).toBuffer();
  const gif = await photo.clone().gif().toBuffer();
  const webp = await photo.clone().webp().toBuffer();
  const zip = Buffer.concat([Buffer.from('PK\x03\x04\x14\0\0\0\0\0', 'latin1'), Buffer.alloc(40, 0x41), Buffer.from('PK\x05\x06', 'latin1'), Buffer.alloc(18)]);
  const svg = (body: string) => Buffer.from(`<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">${body}</svg>`);

  const samples: HostileSample[] = [
    { kind: 'empty', bytes: new Uint8Array(0), accept: ['IMAGE_EMPTY'] },
    { kind: 'one byte', bytes: Buffer.from([0x89]), accept: NOT_AN_IMAGE },
    { kind: 'magic bytes only (PNG signature)', bytes: png.subarray(0, 8), accept: ['IMAGE_CORRUPT', 'IMAGE_UNSUPPORTED'] },
    ...truncations('truncated PNG', png),
    ...truncations('truncated JPEG', jpeg),
    ...truncations('truncated GIF', gif),
    ...truncations('truncated WebP', webp),
    ...bitFlips('bit-flipped PNG', png, random, 12),
    ...bitFlips('bit-flipped JPEG', jpeg, random, 12),
    { kind: 'random bytes', bytes: Buffer.from(Array.from({ length: 4096 }, () => Math.floor(random() * 256))), accept: NOT_AN_IMAGE },
    { kind: 'NUL bytes', bytes: Buffer.alloc(4096), accept: NOT_AN_IMAGE },
    { kind: '100 MB file (over the 50 MB cap)', bytes: Buffer.concat([png.subarray(0, 8), Buffer.alloc(100 * 1024 * 1024)]), accept: ['IMAGE_TOO_LARGE'] },
    { kind: 'PNG header claiming 60000×60000 (valid CRC)', bytes: pngClaiming(60000, 60000), accept: TOO_BIG },
    { kind: 'PNG header claiming 1×2³¹−1', bytes: pngClaiming(1, 0x7fffffff), accept: [...TOO_BIG, 'IMAGE_CORRUPT'] },
    { kind: 'PNG with zero width', bytes: pngClaiming(0, 10), accept: ['IMAGE_CORRUPT', 'IMAGE_UNSUPPORTED'] },
    { kind: 'JPEG SOF claiming 65000×65000', bytes: jpegClaiming(jpeg, 65000, 65000), accept: [...TOO_BIG, 'IMAGE_CORRUPT'] },
    { kind: 'GIF logical screen 65535×65535', bytes: gifWithFrames(1, 65535, 65535), accept: [...TOO_BIG, 'indexed'] },
    { kind: 'GIF with 5000 frames', bytes: gifWithFrames(5000), accept: OK },
    { kind: 'WebP with 3000 frames', bytes: await webpWithFrames(3000), accept: OK },
    { kind: 'WebP canvas 16384×16384', bytes: await webpWithFrames(1, 16384, 16384), accept: [...TOO_BIG, 'IMAGE_CORRUPT'] },
    {
      kind: 'decompression bomb under the pixel limit (9000×9000 PNG, one colour)',
      bytes: await sharp({ create: { width: 9000, height: 9000, channels: 3, background: '#808080' } }).png({ compressionLevel: 9 }).toBuffer(),
      accept: OK,
    },
    {
      kind: 'TIFF over the pixel limit (12000×12000)',
      bytes: await sharp({ create: { width: 12000, height: 12000, channels: 3, background: '#000' } }).tiff({ compression: 'deflate' }).toBuffer(),
      accept: TOO_BIG,
    },
    { kind: 'SVG with a file:// image', bytes: svg(`<image xlink:href="file://${options.probeFile}" width="64" height="64"/>`), accept: NOT_AN_IMAGE },
    { kind: 'SVG with an http image', bytes: svg(`<image href="${options.probeUrl}/svg-image.png" width="64" height="64"/>`), accept: NOT_AN_IMAGE },
    { kind: 'SVG with a script', bytes: svg(`<script>fetch("${options.probeUrl}/svg-script")</script><rect width="64" height="64"/>`), accept: NOT_AN_IMAGE },
    {
      kind: 'SVG with an external entity (XXE)',
      bytes: Buffer.from(`<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file://${options.probeFile}">]><svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>`),
      accept: NOT_AN_IMAGE,
    },
    { kind: 'SVG without prolog, after a BOM and whitespace', bytes: Buffer.from(`\uFEFF \n<svg xmlns="http://www.w3.org/2000/svg"><image href="${options.probeUrl}/bom.png"/></svg>`), accept: NOT_AN_IMAGE },
    { kind: 'HTML posing as an image', bytes: Buffer.from(`<!doctype html><img src="${options.probeUrl}/html.png"><script>alert(1)</script>`), accept: NOT_AN_IMAGE },
    { kind: 'JSON posing as an image', bytes: Buffer.from(JSON.stringify({ url: `${options.probeUrl}/json.png`, width: 64 })), accept: NOT_AN_IMAGE },
    { kind: 'plain text', bytes: Buffer.from('this is not an image\n'.repeat(20)), accept: NOT_AN_IMAGE },
    { kind: 'ZIP posing as an image', bytes: zip, accept: NOT_AN_IMAGE },
    { kind: 'PDF', bytes: Buffer.from('%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF'), accept: NOT_AN_IMAGE },
    { kind: 'BMP', bytes: await bmp(), accept: NOT_AN_IMAGE },
    { kind: 'HEIC brand (HEVC)', bytes: Buffer.concat([Buffer.from('\0\0\0\x18ftypheic\0\0\0\0mif1heic', 'latin1'), Buffer.alloc(64)]), accept: NOT_AN_IMAGE },
    { kind: 'GIF magic on PNG content', bytes: Buffer.concat([Buffer.from('GIF89a', 'latin1'), png.subarray(6)]), accept: ['IMAGE_CORRUPT', 'IMAGE_UNSUPPORTED'] },
    { kind: 'polyglot PNG + ZIP', bytes: Buffer.concat([png, zip]), accept: OK },
    { kind: 'polyglot JPEG + HTML', bytes: Buffer.concat([jpeg, Buffer.from('<html><script>alert(1)</script></html>')]), accept: OK },
    { kind: 'polyglot GIF + ZIP (GIFAR)', bytes: Buffer.concat([gif, zip]), accept: OK },
    { kind: 'JPEG named .png (detection ignores names)', bytes: await photo.clone().jpeg({ quality: 60 }).toBuffer(), accept: OK },
    { kind: 'CMYK JPEG', bytes: await photo.clone().toColourspace('cmyk').jpeg().toBuffer(), accept: OK },
    { kind: 'progressive JPEG', bytes: await photo.clone().jpeg({ progressive: true }).toBuffer(), accept: OK },
    { kind: 'EXIF-rotated JPEG (orientation 6)', bytes: await photo.clone().jpeg().withMetadata({ orientation: 6 }).toBuffer(), accept: OK },
    { kind: '16-bit PNG with alpha', bytes: await photo.clone().toColourspace('rgb16').png().toBuffer(), accept: OK },
    { kind: 'palette PNG with alpha', bytes: await photo.clone().png({ palette: true }).toBuffer(), accept: OK },
    { kind: 'greyscale PNG with alpha', bytes: await photo.clone().toColourspace('b-w').png().toBuffer(), accept: OK },
    { kind: '1×10000 PNG', bytes: await sharp({ create: { width: 1, height: 10000, channels: 3, background: '#c33' } }).png().toBuffer(), accept: OK },
    { kind: '10000×1 PNG', bytes: await sharp({ create: { width: 10000, height: 1, channels: 3, background: '#3c3' } }).png().toBuffer(), accept: OK },
    { kind: '1×1 PNG', bytes: await sharp({ create: { width: 1, height: 1, channels: 3, background: '#33c' } }).png().toBuffer(), accept: OK },
    { kind: 'lossless WebP with alpha', bytes: await photo.clone().webp({ lossless: true }).toBuffer(), accept: OK },
    { kind: 'AVIF', bytes: await photo.clone().avif({ effort: 0 }).toBuffer(), accept: OK },
    { kind: 'TIFF', bytes: await photo.clone().tiff().toBuffer(), accept: OK },
  ];
  return samples;
}

/** A 2×2 24-bit BMP (sharp cannot write BMP). */
async function bmp(): Promise<Buffer> {
  const out = Buffer.alloc(54 + 16);
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(54, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(2, 18);
  out.writeInt32LE(2, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(24, 28);
  out.writeUInt32LE(16, 34);
  return out;
}
