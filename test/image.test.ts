import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { isAppError, type ErrorCode } from '../src/errors.js';
import { MAX_INPUT_BYTES, MAX_INPUT_PIXELS, imageFormatOf, preprocessImage } from '../src/ml/image.js';

const SIZE = 224;

/** RGB 0..255 of the preprocessed pixel at (row, col), undoing x / 127.5 - 1. */
function pixel(input: Float32Array, row: number, col: number): number[] {
  const i = (row * SIZE + col) * 3;
  return [0, 1, 2].map((c) => Math.round((input[i + c] + 1) * 127.5));
}

function assertColour(actual: number[], expected: number[], tolerance: number, what: string): void {
  const off = actual.some((v, c) => Math.abs(v - expected[c]) > tolerance);
  assert.ok(!off, `${what}: got rgb(${actual}), expected about rgb(${expected})`);
}

function solid(width: number, height: number, colour: { r: number; g: number; b: number; alpha?: number }) {
  return sharp({ create: { width, height, channels: colour.alpha === undefined ? 3 : 4, background: colour } });
}

/** Left half `left`, right half `right`. */
async function halves(width: number, height: number, left: number[], right: number[]): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set(x < width / 2 ? left : right, (y * width + x) * 3);
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** Deterministic high-entropy pixels, so that compressed files are long enough to cut in several places. */
function noise(width: number, height: number): Buffer {
  const raw = Buffer.alloc(width * height * 3);
  let state = 12345;
  for (let i = 0; i < raw.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    raw[i] = state >>> 24;
  }
  return raw;
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A well-formed PNG whose header claims width x height but carries only a few bytes of pixel data. */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(1024))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A valid 4x4 24-bit Windows bitmap. */
function bmp(): Buffer {
  const width = 4;
  const height = 4;
  const rowBytes = width * 3; // already a multiple of 4
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(54 + rowBytes * height, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(width, 18);
  header.writeInt32LE(height, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  header.writeUInt32LE(rowBytes * height, 34);
  return Buffer.concat([header, Buffer.alloc(rowBytes * height, 0x80)]);
}

async function rejectsWith(bytes: Uint8Array, code: ErrorCode, what: string, options = {}): Promise<void> {
  await assert.rejects(preprocessImage(bytes, options), (error: unknown) => {
    assert.ok(isAppError(error, code), `${what}: expected ${code}, got ${String((error as Error)?.stack ?? error)}`);
    assert.ok(error.message.length > 0 && !error.message.includes('\n'), `${what}: message must be one line`);
    return true;
  });
}

describe('preprocessImage', () => {
  it('exports sensible default limits', () => {
    assert.equal(MAX_INPUT_BYTES, 50 * 1024 * 1024);
    assert.equal(MAX_INPUT_PIXELS, 100_000_000);
  });

  it('produces a 224x224x3 NHWC tensor in [-1, 1]', async () => {
    const bytes = await sharp(noise(300, 200), { raw: { width: 300, height: 200, channels: 3 } }).png().toBuffer();
    const image = await preprocessImage(bytes);
    assert.equal(image.input.length, SIZE * SIZE * 3);
    assert.equal(image.width, 300);
    assert.equal(image.height, 200);
    assert.equal(image.format, 'png');
    let min = Infinity;
    let max = -Infinity;
    for (const v of image.input) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.ok(min >= -1 && max <= 1, `range [${min}, ${max}]`);
    assert.ok(max - min > 1.5, 'noise should span most of the range');
  });

  it('maps 0 and 255 to -1 and 1 exactly', async () => {
    const black = await preprocessImage(await solid(50, 50, { r: 0, g: 0, b: 0 }).png().toBuffer());
    const white = await preprocessImage(await solid(50, 50, { r: 255, g: 255, b: 255 }).png().toBuffer());
    assert.ok(black.input.every((v) => v === -1));
    assert.ok(white.input.every((v) => v === 1));
  });

  it('takes the centre square by default and letterboxes with fit: pad', async () => {
    // 300x100: red | blue halves. The centre square straddles the boundary; padding keeps everything.
    const bytes = await halves(300, 100, [255, 0, 0], [0, 0, 255]);
    const crop = await preprocessImage(bytes);
    assertColour(pixel(crop.input, 112, 20), [255, 0, 0], 2, 'crop, left');
    assertColour(pixel(crop.input, 112, 200), [0, 0, 255], 2, 'crop, right');
    assertColour(pixel(crop.input, 0, 20), [255, 0, 0], 2, 'crop fills the top edge');

    const pad = await preprocessImage(bytes, { fit: 'pad' });
    assertColour(pixel(pad.input, 5, 112), [128, 128, 128], 1, 'pad band');
    assertColour(pixel(pad.input, 112, 5), [255, 0, 0], 2, 'pad, far left');
    assertColour(pixel(pad.input, 112, 218), [0, 0, 255], 2, 'pad, far right');
  });

  it('applies the EXIF orientation before cropping', async () => {
    // Stored 200x100, red left / blue right; orientation 6 displays it rotated 90° clockwise: 100x200, red on top.
    const stored = await halves(200, 100, [255, 0, 0], [0, 0, 255]);
    const bytes = await sharp(stored).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    assert.equal((await sharp(bytes).metadata()).orientation, 6);
    const image = await preprocessImage(bytes);
    assert.equal(image.width, 100);
    assert.equal(image.height, 200);
    assertColour(pixel(image.input, 30, 112), [255, 0, 0], 12, 'top half after rotation');
    assertColour(pixel(image.input, 190, 112), [0, 0, 255], 12, 'bottom half after rotation');
  });

  it('flattens transparency onto neutral grey', async () => {
    const transparent = await solid(64, 64, { r: 255, g: 0, b: 0, alpha: 0 }).png().toBuffer();
    assertColour(pixel((await preprocessImage(transparent)).input, 112, 112), [128, 128, 128], 1, 'transparent');
    const half = await solid(64, 64, { r: 255, g: 255, b: 255, alpha: 0.5 }).webp({ lossless: true }).toBuffer();
    assertColour(pixel((await preprocessImage(half)).input, 112, 112), [191, 191, 191], 2, 'half transparent white');
  });

  it('converts greyscale, 16-bit and CMYK input to 8-bit sRGB', async () => {
    const base = sharp(noise(120, 80), { raw: { width: 120, height: 80, channels: 3 } });
    const inputs = {
      grey8: await base.clone().toColourspace('b-w').png().toBuffer(),
      grey16: await base.clone().toColourspace('grey16').png().toBuffer(),
      rgb16: await base.clone().toColourspace('rgb16').png().toBuffer(),
      greyAlpha: await base.clone().toColourspace('b-w').ensureAlpha(0.5).png().toBuffer(),
    };
    assert.equal((await sharp(inputs.grey16).metadata()).depth, 'ushort');
    assert.equal((await sharp(inputs.rgb16).metadata()).depth, 'ushort');
    for (const [name, bytes] of Object.entries(inputs)) {
      const { input } = await preprocessImage(bytes);
      assert.equal(input.length, SIZE * SIZE * 3, name);
      assert.ok(input.every((v) => v >= -1 && v <= 1), name);
      if (name !== 'rgb16') {
        const [r, g, b] = pixel(input, 100, 100);
        assert.ok(r === g && g === b, `${name}: grey stays grey, got rgb(${r},${g},${b})`);
      }
    }

    const cmyk = await solid(60, 60, { r: 200, g: 40, b: 40 }).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    const [r, g, b] = pixel((await preprocessImage(cmyk)).input, 112, 112);
    assert.ok(r > 150 && g < 110 && b < 110, `CMYK red should still be red, got rgb(${r},${g},${b})`);
  });

  it('uses the first frame of an animated GIF and WebP', async () => {
    // Three 40x30 frames, red, green, blue, stacked vertically as sharp expects for multi-page raw input.
    const frames = Buffer.alloc(40 * 90 * 3);
    for (let i = 0; i < 40 * 90; i++) frames.set([[255, 0, 0], [0, 255, 0], [0, 0, 255]][Math.floor(i / (40 * 30))], i * 3);
    const animated = sharp(frames, { raw: { width: 40, height: 90, channels: 3, pageHeight: 30 } });
    for (const bytes of [
      await animated.clone().gif({ delay: [100, 100, 100] }).toBuffer(),
      await animated.clone().webp({ lossless: true, delay: [100, 100, 100] }).toBuffer(),
    ]) {
      const meta = await sharp(bytes).metadata();
      assert.equal(meta.pages, 3);
      const image = await preprocessImage(bytes);
      assert.equal(image.height, 30);
      assertColour(pixel(image.input, 112, 112), [255, 0, 0], 3, `${meta.format} frame 0`);
    }
  });

  it('rejects empty and oversized input', async () => {
    await rejectsWith(new Uint8Array(0), 'IMAGE_EMPTY', 'empty');
    const png = await solid(10, 10, { r: 1, g: 2, b: 3 }).png().toBuffer();
    await rejectsWith(png, 'IMAGE_TOO_LARGE', 'maxBytes', { maxBytes: png.length - 1 });
    await preprocessImage(png, { maxBytes: png.length });
  });

  it('rejects decompression bombs before decoding', async () => {
    await rejectsWith(pngClaiming(60000, 60000), 'IMAGE_TOO_MANY_PIXELS', '60000x60000 PNG header');
    await rejectsWith(pngClaiming(20000, 20000), 'IMAGE_TOO_MANY_PIXELS', '400 MP, under libvips default limit');
    const png = await solid(100, 100, { r: 1, g: 2, b: 3 }).png().toBuffer();
    await rejectsWith(png, 'IMAGE_TOO_MANY_PIXELS', 'maxPixels', { maxPixels: 9999 });
  });

  it('rejects truncated PNG and JPEG files as corrupt', async () => {
    const raw = sharp(noise(160, 120), { raw: { width: 160, height: 120, channels: 3 } });
    const png = await raw.clone().png().toBuffer();
    const jpeg = await raw.clone().jpeg().toBuffer();
    // PNG: just the signature, inside IHDR, before/inside pixel data; JPEG: just SOI, inside headers, mid-scan,
    // and missing only the end-of-image marker.
    for (const cut of [8, 20, 33, 100, png.length >> 1, png.length - 40]) {
      await rejectsWith(png.subarray(0, cut), 'IMAGE_CORRUPT', `PNG cut at ${cut}/${png.length}`);
    }
    for (const cut of [3, 20, 200, jpeg.length >> 1, jpeg.length - 2]) {
      await rejectsWith(jpeg.subarray(0, cut), 'IMAGE_CORRUPT', `JPEG cut at ${cut}/${jpeg.length}`);
    }
  });

  it('rejects files that are not images', async () => {
    const random = Buffer.from(noise(64, 64));
    await rejectsWith(random, 'IMAGE_UNSUPPORTED', 'random bytes');
    // What a web server's error page saved as "photo.png" looks like: only the bytes reach preprocessImage.
    const html = Buffer.from('<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>nope</body></html>');
    await rejectsWith(html, 'IMAGE_UNSUPPORTED', 'HTML named .png');
    await rejectsWith(Buffer.from('just some words, not a picture\n'), 'IMAGE_UNSUPPORTED', 'plain text');
    await rejectsWith(bmp(), 'IMAGE_UNSUPPORTED', 'BMP');
    await rejectsWith(Buffer.from('%PDF-1.4\n%âãÏÓ\n'), 'IMAGE_UNSUPPORTED', 'PDF');
  });

  it('refuses SVG in every disguise', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><image href="file:///etc/passwd"/></svg>';
    const variants = {
      plain: svg,
      prolog: `<?xml version="1.0" encoding="UTF-8"?>\n${svg}`,
      doctype: `<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">\n${svg}`,
      bom: `\uFEFF${svg}`,
      whitespace: `\n\n   \t${svg}`,
      uppercase: svg.replace('<svg', '<SVG').replace('</svg>', '</SVG>'),
    };
    for (const [name, text] of Object.entries(variants)) {
      await rejectsWith(Buffer.from(text), 'IMAGE_UNSUPPORTED', `SVG ${name}`);
    }
    await rejectsWith(deflateSync(Buffer.from(svg)), 'IMAGE_UNSUPPORTED', 'compressed SVG');
    assert.equal(imageFormatOf(Buffer.from(variants.prolog)), 'svg');
  });
});

describe('imageFormatOf', () => {
  it('recognises the accepted containers by their magic bytes', async () => {
    const base = solid(8, 8, { r: 9, g: 9, b: 9 });
    assert.equal(imageFormatOf(await base.clone().jpeg().toBuffer()), 'jpeg');
    assert.equal(imageFormatOf(await base.clone().png().toBuffer()), 'png');
    assert.equal(imageFormatOf(await base.clone().gif().toBuffer()), 'gif');
    assert.equal(imageFormatOf(await base.clone().webp().toBuffer()), 'webp');
    assert.equal(imageFormatOf(await base.clone().tiff().toBuffer()), 'tiff');
    assert.equal(imageFormatOf(await base.clone().avif().toBuffer()), 'avif');
    assert.equal(imageFormatOf(bmp()), 'bmp');
    assert.equal(imageFormatOf(new Uint8Array([1, 2, 3])), null);
    assert.equal(imageFormatOf(new Uint8Array(0)), null);
  });

  it('decodes every accepted format', async () => {
    const base = solid(30, 20, { r: 200, g: 100, b: 50 });
    for (const format of ['jpeg', 'png', 'gif', 'webp', 'tiff', 'avif'] as const) {
      const image = await preprocessImage(await base.clone().toFormat(format).toBuffer());
      assert.equal(image.format, format);
      assertColour(pixel(image.input, 112, 112), [200, 100, 50], format === 'gif' ? 12 : 8, format);
    }
  });
});
