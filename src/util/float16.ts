// Node 20 has no Float16Array. Features are post-RELU6 averages in [0, 6], where half precision keeps cosine
// similarities to about 1e-4 and halves the store.

const scratch = new DataView(new ArrayBuffer(4));

function toHalf(value: number): number {
  scratch.setFloat32(0, value);
  const bits = scratch.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    if ((mantissa >>> (shift - 1)) & 1) half += 1;
    return sign | half;
  }
  let half = sign | (e << 10) | (mantissa >>> 13);
  if (mantissa & 0x1000) half += 1; // round half up; carries into the exponent correctly
  return half;
}

function fromHalf(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

// Every half value decoded once (256 KiB): a retrain decodes 128 M of them at 100k images, where computing each
// with powers of two took seconds.
let halfTable: Float32Array | undefined;

function table(): Float32Array {
  halfTable ??= Float32Array.from({ length: 0x10000 }, (_, half) => fromHalf(half));
  return halfTable;
}

export function encodeFloat16(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 2);
  for (let i = 0; i < values.length; i++) out.writeUInt16LE(toHalf(values[i]), i * 2);
  return out;
}

/** Decodes `count` little-endian halves from `bytes` into `out` starting at `offset`. */
export function decodeFloat16Into(bytes: Uint8Array, count: number, out: Float32Array, offset: number): void {
  const lut = table();
  // Byte pairs rather than a Uint16Array view: no alignment or host byte order to worry about, and as fast.
  for (let i = 0, b = 0; i < count; i++, b += 2) out[offset + i] = lut[bytes[b] | (bytes[b + 1] << 8)];
}

export function decodeFloat16(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.byteLength >>> 1);
  decodeFloat16Into(bytes, out.length, out, 0);
  return out;
}
