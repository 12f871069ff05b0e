// Turns untrusted image bytes into the network's input tensor. Every failure is an AppError with a message meant for
// the person who sent the file; nothing here throws anything else for bad input.
import sharp from 'sharp';
import { AppError } from '../errors.js';
import { MODEL_INPUT, MODEL_PREPROCESSING } from './onnx-model.js';

export const MAX_INPUT_BYTES = 50 * 1024 * 1024;
/** Per frame; checked against the header before decoding, so a small file claiming huge dimensions costs nothing. */
export const MAX_INPUT_PIXELS = 100_000_000;

const SIZE = MODEL_INPUT.size;
const rgba = ([r, g, b]: readonly [number, number, number]) => ({ r, g, b, alpha: 1 });
const BACKGROUNDS = {
  grey: rgba(MODEL_PREPROCESSING.backgrounds.grey),
  white: rgba(MODEL_PREPROCESSING.backgrounds.white),
} as const;
export type Background = keyof typeof BACKGROUNDS;

// The process is long-running and sees each image once: libvips' operation cache would only hold memory. One
// libvips thread per image because parallelism comes from several images in flight on libuv's pool, next to the
// inference worker; per-image threads would oversubscribe the CPU.
sharp.cache(false);
sharp.concurrency(1);

export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | 'avif' | 'heic' | 'bmp' | 'svg' | 'pdf' | 'text';

/** Formats accepted, with the name sharp's own detection must report for the same bytes. */
const ACCEPTED: Partial<Record<ImageFormat, string>> = {
  jpeg: 'jpeg',
  png: 'png',
  gif: 'gif',
  webp: 'webp',
  tiff: 'tiff',
  avif: 'heif',
};
const ACCEPTED_LIST = 'JPEG, PNG, WebP, GIF, TIFF or AVIF';

const ascii = (bytes: Uint8Array, start: number, end: number) => String.fromCharCode(...bytes.subarray(start, end));

/**
 * The container format by magic bytes, or null when unrecognised. Decides before any decoder sees the bytes, so that
 * vector or document formats (which can reference external files) never reach libvips.
 */
export function imageFormatOf(bytes: Uint8Array): ImageFormat | null {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (ascii(bytes, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (/^GIF8[79]a$/.test(ascii(bytes, 0, 6))) return 'gif';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (ascii(bytes, 0, 4) === 'II*\0' || ascii(bytes, 0, 4) === 'MM\0*') return 'tiff';
  if (ascii(bytes, 4, 8) === 'ftyp') {
    const boxSize = Math.min(new DataView(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 4)).getUint32(0), 256);
    const brands = Array.from({ length: Math.max(0, (Math.min(boxSize, bytes.length) - 8) / 4) }, (_, i) =>
      ascii(bytes, 8 + 4 * i, 12 + 4 * i),
    );
    if (brands.includes('avif') || brands.includes('avis')) return 'avif';
    if (brands.some((b) => ['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(b))) return 'heic';
    return null;
  }
  if (ascii(bytes, 0, 2) === 'BM' && bytes.length >= 14 && bytes[6] === 0 && bytes[7] === 0) return 'bmp';
  if (ascii(bytes, 0, 5) === '%PDF-') return 'pdf';
  // Markup or plain text: SVG (with or without an XML prolog, BOM or leading whitespace), HTML, XML, JSON...
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 4096)).replace(/^\uFEFF/, '');
  if (/<svg[\s>]/i.test(head)) return 'svg';
  if (/^\s*</.test(head) || isMostlyText(bytes.subarray(0, 512))) return 'text';
  return null;
}

function isMostlyText(sample: Uint8Array): boolean {
  if (sample.length === 0) return false;
  let printable = 0;
  for (const b of sample) if (b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 0x80) printable++;
  return printable / sample.length > 0.95 && !sample.includes(0);
}

function unsupported(format: ImageFormat | null, detail?: string): AppError {
  const message =
    format === 'svg'
      ? `SVG (vector) images are not supported; send a ${ACCEPTED_LIST} image.`
      : format === 'text'
        ? `This file is not an image (it contains text or markup); send a ${ACCEPTED_LIST} image.`
        : format === 'bmp' || format === 'heic' || format === 'pdf'
          ? `${format.toUpperCase()} files are not supported; send a ${ACCEPTED_LIST} image.`
          : `This file is not a supported image; send a ${ACCEPTED_LIST} image.`;
  return new AppError('IMAGE_UNSUPPORTED', message, { details: { format, detail } });
}

function tooManyPixels(maxPixels: number, details: Record<string, unknown>, cause?: unknown): AppError {
  const mp = Math.round(maxPixels / 1e6);
  return new AppError('IMAGE_TOO_MANY_PIXELS', `The image has too many pixels (the limit is ${mp} megapixels).`, {
    cause,
    details: { maxPixels, ...details },
  });
}

function fromSharpError(error: unknown, format: ImageFormat, maxPixels: number): AppError {
  const text = error instanceof Error ? error.message : String(error);
  if (/exceeds pixel limit/i.test(text)) return tooManyPixels(maxPixels, { format }, error);
  if (/unsupported image format/i.test(text)) return unsupported(null, text);
  return new AppError('IMAGE_CORRUPT', `The ${format.toUpperCase()} file is damaged or incomplete.`, {
    cause: error,
    details: { format, detail: text.split('\n')[0] },
  });
}

export interface PreprocessOptions {
  maxBytes?: number;
  maxPixels?: number;
  /**
   * 'crop' (default, what the model was referenced with): the centred square of the image, the rest is discarded.
   * 'pad': the whole image, letterboxed onto the grey background.
   */
  fit?: 'crop' | 'pad';
  /** What transparency (and the letterbox) is flattened onto: the model's grey (default) or white. */
  background?: Background;
}

export interface PreprocessedImage {
  /** NHWC [224, 224, 3] RGB, scaled to [-1, 1] as x / 127.5 - 1. */
  input: Float32Array;
  /** The same pixels as bytes, 224×224×3 RGB, transparency flattened. */
  pixels: Buffer;
  /** Dimensions of the decoded first frame after EXIF orientation. */
  width: number;
  height: number;
  /** The detected container format, e.g. 'jpeg'. */
  format: ImageFormat;
}

export async function preprocessImage(bytes: Uint8Array, options: PreprocessOptions = {}): Promise<PreprocessedImage> {
  const maxBytes = options.maxBytes ?? MAX_INPUT_BYTES;
  const maxPixels = options.maxPixels ?? MAX_INPUT_PIXELS;
  if (bytes.length === 0) throw new AppError('IMAGE_EMPTY', 'The file is empty.');
  if (bytes.length > maxBytes) {
    const mb = Math.max(1, Math.round(maxBytes / (1024 * 1024)));
    throw new AppError('IMAGE_TOO_LARGE', `The file is too large (the limit is ${mb} MB).`, {
      details: { bytes: bytes.length, maxBytes },
    });
  }
  const format = imageFormatOf(bytes);
  if (format === null || !(format in ACCEPTED)) throw unsupported(format);

  // One sharp instance reads the header for the checks and then runs the pipeline. Only the first frame of
  // animations and multi-page files (sharp's default) is decoded.
  const image = sharp(bytes, { limitInputPixels: maxPixels });
  let width: number;
  let height: number;
  try {
    const meta = await image.metadata();
    if (meta.format !== ACCEPTED[format]) throw unsupported(null, `content is ${meta.format}, header says ${format}`);
    ({ width, height } = meta.autoOrient);
    if (width * height > maxPixels) throw tooManyPixels(maxPixels, { width, height });
  } catch (error) {
    throw error instanceof AppError ? error : fromSharpError(error, format, maxPixels);
  }

  // Transparency is flattened after the resize, on 224×224 pixels rather than the full-size image: sharp resizes
  // with alpha premultiplied, so flattening the resized pixels gives what flattening first would have (the resize
  // is linear), at a fraction of the cost. sharp flattens before resizing whatever the call order, hence the
  // flattening in flattenToInput. The letterbox band is filled opaque, so it flattens to the background itself.
  const background = BACKGROUNDS[options.background ?? 'grey'];
  let pipeline = image.rotate();
  if (options.fit === 'pad') {
    // Nothing before the resize keeps libvips from shrinking JPEG and WebP while decoding.
    pipeline = pipeline.resize(SIZE, SIZE, { fit: 'contain', background, kernel: 'linear' });
  } else {
    const side = Math.min(width, height);
    pipeline = pipeline
      .extract({ left: Math.floor((width - side) / 2), top: Math.floor((height - side) / 2), width: side, height: side })
      .resize(SIZE, SIZE, { fit: 'fill', kernel: 'linear' });
  }

  let decoded: { data: Buffer; channels: number };
  try {
    const { data, info } = await pipeline.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if ((info.channels !== 3 && info.channels !== 4) || data.length !== SIZE * SIZE * info.channels) {
      throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}`);
    }
    decoded = { data, channels: info.channels };
  } catch (error) {
    throw fromSharpError(error, format, maxPixels);
  }
  return { ...flattenToInput(decoded.data, decoded.channels, background), width, height, format };
}

/** x / 127.5 - 1 for every byte value, so that the conversion is a table look-up. */
const SCALED = Float32Array.from({ length: 256 }, (_, v) => v / 127.5 - 1);

/** RGB(A) bytes to the model's input and the flattened RGB bytes (which the thumbnail is made from). */
function flattenToInput(data: Buffer, channels: number, background: { r: number; g: number; b: number }) {
  const pixelCount = SIZE * SIZE;
  if (channels === 3) {
    const input = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) input[i] = SCALED[data[i]];
    return { input, pixels: data };
  }
  // Straight (unpremultiplied) alpha, as libvips' flatten: colour × alpha + background × (1 - alpha), rounded.
  const bg = [background.r, background.g, background.b];
  const pixels = Buffer.alloc(pixelCount * 3);
  const input = new Float32Array(pixelCount * 3);
  for (let p = 0; p < pixelCount; p++) {
    const alpha = data[p * 4 + 3];
    for (let c = 0; c < 3; c++) {
      const value = Math.round((data[p * 4 + c] * alpha + bg[c] * (255 - alpha)) / 255);
      pixels[p * 3 + c] = value;
      input[p * 3 + c] = SCALED[value];
    }
  }
  return { input, pixels };
}
