/**
 * Whether two stored thumbnails show the same picture: the second stage of repost notices (near-duplicates.ts).
 * MobileNetV2's pooled features say *what* is drawn, so a 6 and a 7 of clubs of one deck, or one icon redrawn, score
 * as high as an edited copy; the pixels tell them apart. The two 128 px thumbnails are aligned (scale 0.8–1.25 and
 * shift, which covers a crop of up to a tenth per side either way round), and then compared block by block with a
 * local correlation that a recolour, JPEG artefacts and a resize leave high and a missing or extra shape does not,
 * once on the grey levels (sharp: keeps captions and small changes apart) and once on them blurred (smoothScore:
 * thin lines resampled by a crop or a resize still overlap). One horizontal band near the top or the bottom may disagree (a caption). Grey cannot tell near-blank pictures apart,
 * nor one drawing in two colours, so a match also needs structure in both and colours that a recolour could explain
 * (matchVeto). The aligned colour difference (`colour`) says whether every place kept its colour, which a crop, a
 * caption or a resize do and one icon drawn in two colours does not. Measured in docs/relevance.md, "Repost notices".
 */
import sharp from 'sharp';

/** Side of the grey image compared. */
const SIDE = 64;
/** Side of the coarse alignment search. */
const COARSE = 32;
/** Largest shift searched at the coarse scale, in coarse pixels (±5/32 of the frame). */
const SHIFT = 5;
/** Scales of the candidate relative to the input tried at the coarse scale: 0.8 … 1.25 in equal ratios. */
const SCALES = Array.from({ length: 9 }, (_, i) => Math.exp(Math.log(0.8) + (i * (Math.log(1.25) - Math.log(0.8))) / 8));
/**
 * Gaussian blur (SIDE pixels) of the smoothed grey image: the alignment and the second block score work on it. A crop
 * or a resize resamples thin lines, which then fall between the other thumbnail's pixels; blurred, they still overlap.
 */
const SMOOTH_SIGMA = 1;
/** Block side and stride of the local comparison, at SIDE. */
const BLOCK = 8;
const STRIDE = 4;
/** Variance (grey levels²) that counts as structure: keeps flat blocks (background on both) from mattering. */
const FLAT = 100;
/** Hue histogram bins (10° each). */
const HUE_BINS = 36;
/** matchVeto's bounds, chosen on both development sets and two seeds (docs/relevance.md). */
const MIN_STRUCTURE = 4;
const MAX_CHROMA_RATIO = 2;
/** Added to both chromas before their ratio, so that two nearly grey pictures are not told apart by noise. */
const CHROMA_FLOOR = 3;
const HUE_CHROMA = 10;
const HUE_TOLERANCE = 60;
const HUE_DISTANCE = 0.6;
/** The caption band lies within this share of the picture's height from its top or bottom (captions sit there). */
const CAPTION_ZONE = 0.35;

/** A thumbnail as the matcher reads it: grey SIDE×SIDE, and where the picture is in it (the rest is letterbox). */
export interface MatchImage {
  grey: Float32Array;
  /** `grey` blurred by SMOOTH_SIGMA: what the alignment and the smoothed block score compare. */
  smooth: Float32Array;
  /** Picture rectangle within the SIDE×SIDE frame, in pixels: [x0, y0, x1, y1), letterbox excluded. */
  rect: [number, number, number, number];
  /** Grey of the letterbox and of what lies beyond the frame. */
  pad: number;
  /** Non-overlapping BLOCK×BLOCK blocks inside the picture whose grey variance exceeds FLAT: how much is drawn. */
  structure: number;
  /** Mean CIELAB chroma over the picture. */
  chroma: number;
  /** Chroma-weighted histogram of CIELAB hue over the picture, HUE_BINS bins, summing to 1 (all 0 when grey). */
  hues: Float32Array;
  /** CIELAB a* and b* per SIDE pixel, interleaved: where which colour is, for the aligned colour difference. */
  ab: Float32Array;
}

export interface ThumbnailMatch {
  /** The verdict's score: the lowest block correlation outside the band allowed to differ, in [0, 1]. */
  score: number;
  /** The same on the smoothed grey images (same alignment): forgives resampled thin lines, and a little more. */
  smoothScore: number;
  /** Why the two cannot be called one picture whatever the score (matchVeto); undefined when nothing forbids it. */
  veto?: MatchVeto;
  /**
   * Mean CIELAB colour difference (a*, b*: lightness left to the grey scores) of the aligned pictures over the part
   * both show: near 0 when every place has the same colour in both, large for a recolour or one drawing in two colours.
   */
  colour: number;
  /** Correlation of the aligned images over the part both show. */
  ncc: number;
  /** Lowest block correlation over every block. */
  minBlock: number;
  /** Scale and shift (SIDE pixels) of the candidate's frame relative to the input's. */
  scale: number;
  shift: [number, number];
  /** Per row of blocks: its lowest and its mean block correlation (NaN when no block of the row is compared). */
  rows: Array<{ min: number; mean: number }>;
}

/** The letterbox rectangle of a width×height image fitted into the square frame ('contain', centred). */
function pictureRect(width: number | undefined, height: number | undefined): [number, number, number, number] {
  if (!width || !height) return [0, 0, SIDE, SIDE];
  const w = width >= height ? SIDE : (SIDE * width) / height;
  const h = height >= width ? SIDE : (SIDE * height) / width;
  // A pixel on the edge blends picture and letterbox: left out.
  const x0 = Math.ceil((SIDE - w) / 2 + 0.5);
  const y0 = Math.ceil((SIDE - h) / 2 + 0.5);
  return [Math.min(x0, SIDE / 2 - 1), Math.min(y0, SIDE / 2 - 1), Math.max(SIDE - x0, SIDE / 2 + 1), Math.max(SIDE - y0, SIDE / 2 + 1)];
}

/** The size of an image after EXIF orientation, from its header (what the engine records as width and height). */
export async function imageSize(bytes: Uint8Array): Promise<{ width: number; height: number } | undefined> {
  const meta = await sharp(bytes).metadata().catch(() => undefined);
  return meta ? { width: meta.autoOrient.width, height: meta.autoOrient.height } : undefined;
}

/** Decodes a stored thumbnail (thumbnail.ts: 128 px WebP) for matching; `width`/`height` are the original's, for the letterbox. */
export async function matchImage(thumbnail: Uint8Array, size?: { width?: number; height?: number }, pad = 255): Promise<MatchImage> {
  const { data, info } = await sharp(thumbnail).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return matchImageFromPixels(data, info.width, info.height, size, pad);
}

/** As matchImage, from RGB bytes of a square frame (the thumbnail's 128 px, or any multiple of SIDE). */
export function matchImageFromPixels(rgb: Uint8Array, frameWidth: number, frameHeight: number, size?: { width?: number; height?: number }, pad = 255): MatchImage {
  const grey = new Float32Array(SIDE * SIDE);
  const colour = new Float32Array(SIDE * SIDE * 3);
  const fx = frameWidth / SIDE;
  const fy = frameHeight / SIDE;
  // Box average of each SIDE cell: also damps JPEG blocks and resampling differences.
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const sum = [0, 0, 0];
      let n = 0;
      for (let yy = Math.floor(y * fy); yy < Math.floor((y + 1) * fy); yy++) {
        for (let xx = Math.floor(x * fx); xx < Math.floor((x + 1) * fx); xx++) {
          const o = (yy * frameWidth + xx) * 3;
          for (let c = 0; c < 3; c++) sum[c] += rgb[o + c];
          n += 1;
        }
      }
      const o = (y * SIDE + x) * 3;
      for (let c = 0; c < 3; c++) colour[o + c] = n === 0 ? pad : sum[c] / n;
      grey[y * SIDE + x] = 0.299 * colour[o] + 0.587 * colour[o + 1] + 0.114 * colour[o + 2];
    }
  }
  const rect = pictureRect(size?.width, size?.height);
  const ab = chromaPlanes(colour);
  return { grey, smooth: blur(grey, SMOOTH_SIGMA), rect, pad, structure: structure(grey, rect), ...hueHistogram(ab, rect), ab };
}

/** Separable Gaussian blur of a SIDE×SIDE image, edges clamped (the letterbox is the background, so clamping adds nothing drawn). */
function blur(image: Float32Array, sigma: number): Float32Array {
  const radius = Math.ceil(2 * sigma);
  const kernel = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)));
  const total = kernel.reduce((a, b) => a + b, 0);
  const tmp = new Float32Array(SIDE * SIDE);
  const out = new Float32Array(SIDE * SIDE);
  const clamp = (v: number) => Math.max(0, Math.min(SIDE - 1, v));
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += kernel[k + radius] * image[y * SIDE + clamp(x + k)];
      tmp[y * SIDE + x] = s / total;
    }
  }
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += kernel[k + radius] * tmp[clamp(y + k) * SIDE + x];
      out[y * SIDE + x] = s / total;
    }
  }
  return out;
}

/** Non-overlapping BLOCK×BLOCK blocks wholly inside `rect` with grey variance above FLAT. */
function structure(grey: Float32Array, [x0, y0, x1, y1]: MatchImage['rect']): number {
  let count = 0;
  for (let by = 0; by + BLOCK <= SIDE; by += BLOCK) {
    for (let bx = 0; bx + BLOCK <= SIDE; bx += BLOCK) {
      if (bx < x0 || by < y0 || bx + BLOCK > x1 || by + BLOCK > y1) continue;
      let s = 0;
      let ss = 0;
      for (let y = by; y < by + BLOCK; y++) {
        for (let x = bx; x < bx + BLOCK; x++) {
          s += grey[y * SIDE + x];
          ss += grey[y * SIDE + x] ** 2;
        }
      }
      const n = BLOCK * BLOCK;
      if (ss / n - (s / n) ** 2 > FLAT) count += 1;
    }
  }
  return count;
}

const linear = (v: number) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
const labF = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);

/** CIELAB a* and b* (sRGB, D65) of every SIDE pixel, interleaved. */
function chromaPlanes(colour: Float32Array): Float32Array {
  const ab = new Float32Array(SIDE * SIDE * 2);
  for (let i = 0; i < SIDE * SIDE; i++) {
    const r = linear(colour[3 * i] / 255);
    const g = linear(colour[3 * i + 1] / 255);
    const b = linear(colour[3 * i + 2] / 255);
    const fX = labF((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.9505);
    const fY = labF(0.2126 * r + 0.7152 * g + 0.0722 * b);
    const fZ = labF((0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.089);
    ab[2 * i] = 500 * (fX - fY);
    ab[2 * i + 1] = 200 * (fY - fZ);
  }
  return ab;
}

/** Mean CIELAB chroma over `rect` and the chroma-weighted hue histogram. */
function hueHistogram(ab: Float32Array, [x0, y0, x1, y1]: MatchImage['rect']): { chroma: number; hues: Float32Array } {
  const hues = new Float32Array(HUE_BINS);
  let total = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const a = ab[2 * (y * SIDE + x)];
      const bb = ab[2 * (y * SIDE + x) + 1];
      const chroma = Math.hypot(a, bb);
      const hue = ((Math.atan2(bb, a) * 180) / Math.PI + 360) % 360;
      hues[Math.floor(hue / (360 / HUE_BINS)) % HUE_BINS] += chroma;
      total += chroma;
    }
  }
  if (total > 0) for (let k = 0; k < HUE_BINS; k++) hues[k] /= total;
  return { chroma: total / Math.max(1, (x1 - x0) * (y1 - y0)), hues };
}

/** Why two thumbnails cannot be one picture, whatever their grey match (matchVeto). */
export type MatchVeto = 'flat' | 'chroma' | 'hue';

/**
 * Grey says nothing about near-blank pictures (a plain button and a football pitch match), nor about one drawing in
 * two colours. A match therefore needs MIN_STRUCTURE structured blocks in both; mean chromas within a factor
 * MAX_CHROMA_RATIO (a recolour scales saturation by 0.6–1.4; it cannot colour a grey drawing); and, when both are
 * coloured (chroma ≥ HUE_CHROMA), hue histograms within HUE_DISTANCE (L1) once one is turned by at most
 * HUE_TOLERANCE degrees, the largest hue turn counted as a recolour. Measured in docs/relevance.md, "Repost notices".
 */
export function matchVeto(a: MatchImage, b: MatchImage): MatchVeto | undefined {
  if (Math.min(a.structure, b.structure) < MIN_STRUCTURE) return 'flat';
  if ((Math.max(a.chroma, b.chroma) + CHROMA_FLOOR) / (Math.min(a.chroma, b.chroma) + CHROMA_FLOOR) > MAX_CHROMA_RATIO) return 'chroma';
  if (Math.min(a.chroma, b.chroma) < HUE_CHROMA) return undefined;
  const turns = Math.round(HUE_TOLERANCE / (360 / HUE_BINS));
  let best = Infinity;
  for (let t = -turns; t <= turns; t++) {
    let d = 0;
    for (let k = 0; k < HUE_BINS; k++) d += Math.abs(a.hues[k] - b.hues[(((k - t) % HUE_BINS) + HUE_BINS) % HUE_BINS]);
    best = Math.min(best, d);
  }
  return best > HUE_DISTANCE ? 'hue' : undefined;
}

/** Bilinear sample of a side×side image, `pad` outside it. */
function sample(image: Float32Array, side: number, x: number, y: number, pad: number): number {
  if (x < 0 || y < 0 || x > side - 1 || y > side - 1) return pad;
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const x1 = Math.min(x0 + 1, side - 1);
  const y1 = Math.min(y0 + 1, side - 1);
  const fx = x - x0;
  const fy = y - y0;
  const top = image[y0 * side + x0] * (1 - fx) + image[y0 * side + x1] * fx;
  const bottom = image[y1 * side + x0] * (1 - fx) + image[y1 * side + x1] * fx;
  return top * (1 - fy) + bottom * fy;
}

function halve(grey: Float32Array): Float32Array {
  const out = new Float32Array(COARSE * COARSE);
  for (let y = 0; y < COARSE; y++) {
    for (let x = 0; x < COARSE; x++) {
      const o = 2 * y * SIDE + 2 * x;
      out[y * COARSE + x] = (grey[o] + grey[o + 1] + grey[o + SIDE] + grey[o + SIDE + 1]) / 4;
    }
  }
  return out;
}

/**
 * Where the input's pixel (x, y) lies in the candidate's frame: scaled by `scale` about the frame's centre, then
 * shifted. Coordinates in SIDE pixels (pixel centres at integers).
 */
const centre = (SIDE - 1) / 2;

/** The candidate's pixel for the input's (x, y): centre + scale·(x − centre) + dx, the same for y. */
type Alignment = { scale: number; dx: number; dy: number };

/** Correlation of the input with the candidate warped by (scale, dx, dy), over the input's picture pixels. */
function alignedNcc(a: MatchImage, b: MatchImage, scale: number, dx: number, dy: number, step = 1): number {
  const [x0, y0, x1, y1] = a.rect;
  const [bx0, by0, bx1, by1] = b.rect;
  let n = 0;
  let sa = 0;
  let sb = 0;
  let saa = 0;
  let sbb = 0;
  let sab = 0;
  for (let y = y0; y < y1; y += step) {
    const v = centre + scale * (y - centre) + dy;
    if (v < by0 || v > by1 - 1) continue;
    for (let x = x0; x < x1; x += step) {
      const u = centre + scale * (x - centre) + dx;
      if (u < bx0 || u > bx1 - 1) continue;
      const p = a.smooth[y * SIDE + x];
      const q = sample(b.smooth, SIDE, u, v, b.pad);
      n += 1;
      sa += p;
      sb += q;
      saa += p * p;
      sbb += q * q;
      sab += p * q;
    }
  }
  // Too little overlap to say anything.
  if (n < (SIDE * SIDE) / (4 * step * step)) return -1;
  const va = saa - (sa * sa) / n;
  const vb = sbb - (sb * sb) / n;
  const cov = sab - (sa * sb) / n;
  return (cov + FLAT) / Math.sqrt((va + FLAT) * (vb + FLAT));
}

/** The best (scale, shift) at the coarse scale, by correlation over the input's picture (letterbox of b padded). */
function coarseAlign(a: MatchImage, b: MatchImage): Alignment {
  const ca = halve(a.smooth);
  const cb = halve(b.smooth);
  const [x0, y0, x1, y1] = a.rect.map((v) => Math.round(v / 2));
  const ext = COARSE + 2 * SHIFT;
  const warped = new Float32Array(ext * ext);
  const c = (COARSE - 1) / 2;
  let best = { ncc: -Infinity, scale: 1, dx: 0, dy: 0 };
  let n = 0;
  let sa = 0;
  let saa = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      sa += ca[y * COARSE + x];
      saa += ca[y * COARSE + x] ** 2;
      n += 1;
    }
  }
  const va = saa - (sa * sa) / n;
  for (const scale of SCALES) {
    // The candidate resampled on the input's grid, extended by SHIFT on every side: a shift is then an offset.
    for (let y = 0; y < ext; y++) {
      for (let x = 0; x < ext; x++) warped[y * ext + x] = sample(cb, COARSE, c + scale * (x - SHIFT - c), c + scale * (y - SHIFT - c), b.pad);
    }
    for (let ty = -SHIFT; ty <= SHIFT; ty++) {
      for (let tx = -SHIFT; tx <= SHIFT; tx++) {
        let sb = 0;
        let sbb = 0;
        let sab = 0;
        for (let y = y0; y < y1; y++) {
          const row = (y + ty + SHIFT) * ext + SHIFT + tx;
          const arow = y * COARSE;
          for (let x = x0; x < x1; x++) {
            const q = warped[row + x];
            sb += q;
            sbb += q * q;
            sab += ca[arow + x] * q;
          }
        }
        const vb = sbb - (sb * sb) / n;
        const ncc = (sab - (sa * sb) / n + FLAT) / Math.sqrt((va + FLAT) * (vb + FLAT));
        // A shift of t input pixels is scale·t candidate pixels; in SIDE pixels, twice that.
        if (ncc > best.ncc) best = { ncc, scale, dx: 2 * scale * tx, dy: 2 * scale * ty };
      }
    }
  }
  return best;
}

/** Pattern search around the coarse alignment at full resolution (SIDE), on the same correlation. */
function refine(a: MatchImage, b: MatchImage, start: Alignment): Alignment & { ncc: number } {
  // Every other pixel in each direction: the images are smooth at this scale, and it is 4× cheaper.
  let cur = { ...start, ncc: alignedNcc(a, b, start.scale, start.dx, start.dy, 2) };
  let step = 1;
  let scaleStep = 0.02;
  for (let round = 0; round < 3; round++) {
    let improved = true;
    while (improved) {
      improved = false;
      for (const [s, x, y] of [
        [scaleStep, 0, 0],
        [-scaleStep, 0, 0],
        [0, step, 0],
        [0, -step, 0],
        [0, 0, step],
        [0, 0, -step],
      ]) {
        const next = { scale: cur.scale * (1 + s), dx: cur.dx + x, dy: cur.dy + y };
        const ncc = alignedNcc(a, b, next.scale, next.dx, next.dy, 2);
        if (ncc > cur.ncc + 1e-6) {
          cur = { ...next, ncc };
          improved = true;
        }
      }
    }
    step /= 2;
    scaleStep /= 2;
  }
  return { ...cur, ncc: alignedNcc(a, b, cur.scale, cur.dx, cur.dy) };
}

/** Calls `visit` for each pixel (x, y) of the input's picture whose aligned place (u, v) lies in the candidate's picture. */
function forEachOverlap(a: MatchImage, b: MatchImage, al: Alignment, visit: (x: number, y: number, u: number, v: number) => void): void {
  const [x0, y0, x1, y1] = a.rect;
  const [bx0, by0, bx1, by1] = b.rect;
  for (let y = y0; y < y1; y++) {
    const v = centre + al.scale * (y - centre) + al.dy;
    if (v < by0 || v > by1 - 1) continue;
    for (let x = x0; x < x1; x++) {
      const u = centre + al.scale * (x - centre) + al.dx;
      if (u >= bx0 && u <= bx1 - 1) visit(x, y, u, v);
    }
  }
}

/**
 * Block correlations of the input with the aligned candidate: BLOCK×BLOCK windows every STRIDE pixels over the part
 * both frames show; a window with too few such pixels is NaN.
 */
function blockCorrelations(a: MatchImage, b: MatchImage, al: Alignment, plane: 'grey' | 'smooth'): { r: Float32Array; cols: number; rows: number } {
  const warped = new Float32Array(SIDE * SIDE);
  const valid = new Uint8Array(SIDE * SIDE);
  forEachOverlap(a, b, al, (x, y, u, v) => {
    warped[y * SIDE + x] = sample(b[plane], SIDE, u, v, b.pad);
    valid[y * SIDE + x] = 1;
  });
  const cols = (SIDE - BLOCK) / STRIDE + 1;
  const rows = cols;
  const r = new Float32Array(cols * rows);
  for (let by = 0; by < rows; by++) {
    for (let bx = 0; bx < cols; bx++) {
      let n = 0;
      let sa = 0;
      let sb = 0;
      let saa = 0;
      let sbb = 0;
      let sab = 0;
      for (let y = by * STRIDE; y < by * STRIDE + BLOCK; y++) {
        for (let x = bx * STRIDE; x < bx * STRIDE + BLOCK; x++) {
          const o = y * SIDE + x;
          if (!valid[o]) continue;
          const p = a[plane][o];
          const q = warped[o];
          n += 1;
          sa += p;
          sb += q;
          saa += p * p;
          sbb += q * q;
          sab += p * q;
        }
      }
      if (n < (BLOCK * BLOCK) / 2) {
        r[by * cols + bx] = NaN;
        continue;
      }
      const va = (saa - (sa * sa) / n) / n;
      const vb = (sbb - (sb * sb) / n) / n;
      const cov = (sab - (sa * sb) / n) / n;
      r[by * cols + bx] = (Math.abs(cov) + FLAT) / Math.sqrt((va + FLAT) * (vb + FLAT));
    }
  }
  return { r, cols, rows };
}

/** Rows of blocks (a band) that may disagree as a whole: a caption across the picture. */
const BAND_ROWS = 3;

/**
 * The verdict's score of block correlations `r`: the lowest block outside the most lenient band of BAND_ROWS block rows
 * that lies near the top or the bottom of the input's picture (where captions go; a changed mouth in the middle of a
 * face is another picture).
 */
function bandScore(r: Float32Array, cols: number, rows: number, [, py0, , py1]: MatchImage['rect']): number {
  const zone = CAPTION_ZONE * (py1 - py0);
  const lowestOutside = (band: number) => {
    let low = 1;
    for (let by = 0; by < rows; by++) {
      if (by >= band && by < band + BAND_ROWS) continue;
      for (let bx = 0; bx < cols; bx++) {
        const v = r[by * cols + bx];
        if (!Number.isNaN(v)) low = Math.min(low, v);
      }
    }
    return low;
  };
  let score = lowestOutside(-BAND_ROWS);
  for (let band = 0; band + BAND_ROWS <= rows; band++) {
    const top = band * STRIDE;
    const bottom = band * STRIDE + (BAND_ROWS - 1) * STRIDE + BLOCK;
    // Two pixels of slack: blocks straddle the zone's edge.
    if (bottom <= py0 + zone + 2 || top >= py1 - zone - 2) score = Math.max(score, lowestOutside(band));
  }
  return Math.max(0, score);
}

/** Mean a*b* distance of the input's picture pixels from the aligned candidate's, over the part both show. */
function colourDifference(a: MatchImage, b: MatchImage, al: Alignment): number {
  let sum = 0;
  let n = 0;
  forEachOverlap(a, b, al, (x, y, u, v) => {
    // Nearest pixel: bilinear sampling would mix a colour edge into a third colour.
    const o = 2 * (Math.round(v) * SIDE + Math.round(u));
    const i = 2 * (y * SIDE + x);
    sum += Math.hypot(a.ab[i] - b.ab[o], a.ab[i + 1] - b.ab[o + 1]);
    n += 1;
  });
  return n === 0 ? Infinity : sum / n;
}

/** How alike the two thumbnails are as one picture (see ThumbnailMatch); symmetric up to the alignment search. */
export function matchThumbnails(a: MatchImage, b: MatchImage): ThumbnailMatch {
  const al = refine(a, b, coarseAlign(a, b));
  const { r, cols, rows } = blockCorrelations(a, b, al, 'grey');
  const smooth = blockCorrelations(a, b, al, 'smooth');
  let minBlock = 1;
  const rowStats: ThumbnailMatch['rows'] = [];
  for (let by = 0; by < rows; by++) {
    let min = NaN;
    let sum = 0;
    let count = 0;
    for (let bx = 0; bx < cols; bx++) {
      const v = r[by * cols + bx];
      if (Number.isNaN(v)) continue;
      minBlock = Math.min(minBlock, v);
      min = Number.isNaN(min) ? v : Math.min(min, v);
      sum += v;
      count += 1;
    }
    rowStats.push({ min, mean: count === 0 ? NaN : sum / count });
  }
  const veto = matchVeto(a, b);
  return { score: bandScore(r, cols, rows, a.rect), smoothScore: bandScore(smooth.r, cols, rows, a.rect), ...(veto ? { veto } : {}), colour: colourDifference(a, b, al), ncc: al.ncc, minBlock: Math.max(0, minBlock), scale: al.scale, shift: [al.dx, al.dy], rows: rowStats };
}
