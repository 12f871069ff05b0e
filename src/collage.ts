import sharp from 'sharp';

export interface CollageTile {
  /** Image bytes, or undefined when the original is no longer available (drawn as a grey placeholder). */
  bytes?: Uint8Array;
  /** Short text under the tile, e.g. a score. */
  caption?: string;
}

const TILE = 160;
const CAPTION = 22;
const GAP = 6;
const COLUMNS = 7;
const BACKGROUND = { r: 32, g: 34, b: 37, alpha: 1 };

/**
 * A PNG overview: the query first (marked Q), then the results numbered from 1, so a person can compare at a
 * glance and refer to a result by its number.
 */
export async function renderCollage(query: CollageTile, results: CollageTile[]): Promise<Buffer> {
  const tiles = [query, ...results];
  const columns = Math.min(COLUMNS, tiles.length);
  const rows = Math.ceil(tiles.length / columns);
  const width = GAP + columns * (TILE + GAP);
  const height = GAP + rows * (TILE + CAPTION + GAP);
  const layers = await Promise.all(
    tiles.map(async (tile, i) => {
      const left = GAP + (i % columns) * (TILE + GAP);
      const top = GAP + Math.floor(i / columns) * (TILE + CAPTION + GAP);
      const label = i === 0 ? 'Q' : String(i);
      return [
        { input: await tileImage(tile.bytes), left, top },
        { input: overlay(label, tile.caption ?? '', i === 0), left, top },
      ];
    }),
  );
  return sharp({ create: { width, height, channels: 4, background: BACKGROUND } })
    .composite(layers.flat())
    .png()
    .toBuffer();
}

async function tileImage(bytes: Uint8Array | undefined): Promise<Buffer> {
  const placeholder = () =>
    sharp({ create: { width: TILE, height: TILE, channels: 4, background: { r: 90, g: 90, b: 90, alpha: 1 } } }).png().toBuffer();
  if (!bytes) return placeholder();
  try {
    return await sharp(bytes, { limitInputPixels: 100_000_000 })
      .rotate()
      .resize(TILE, TILE, { fit: 'contain', background: { r: 48, g: 50, b: 54, alpha: 1 } })
      .flatten({ background: '#303236' })
      .png()
      .toBuffer();
  } catch {
    return placeholder();
  }
}

function overlay(label: string, caption: string, isQuery: boolean): Buffer {
  const badge = isQuery ? '#e8a33d' : '#5865f2';
  const badgeWidth = 14 + label.length * 11;
  const border = isQuery ? `<rect x="1.5" y="1.5" width="${TILE - 3}" height="${TILE - 3}" fill="none" stroke="${badge}" stroke-width="3"/>` : '';
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${TILE}" height="${TILE + CAPTION}">
  ${border}
  <rect x="0" y="0" width="${badgeWidth}" height="24" rx="4" fill="${badge}"/>
  <text x="${badgeWidth / 2}" y="18" font-family="DejaVu Sans, sans-serif" font-size="16" font-weight="bold" fill="#fff" text-anchor="middle">${escapeXml(label)}</text>
  <text x="${TILE / 2}" y="${TILE + 16}" font-family="DejaVu Sans, sans-serif" font-size="13" fill="#dcddde" text-anchor="middle">${escapeXml(caption)}</text>
</svg>`;
  return Buffer.from(svg);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
