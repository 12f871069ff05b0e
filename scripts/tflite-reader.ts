// A minimal reader for the parts of the TFLite flatbuffer schema (tensorflow/lite/schema/schema.fbs) that a
// convolutional classifier uses. Written by hand because no flatbuffers/TFLite package is a dependency here and
// the schema subset is small; field ids below are the schema's declaration order (a union takes two ids).

export const TensorType = { FLOAT32: 0, INT32: 2, UINT8: 3, INT64: 4, INT8: 9 } as const;

export const BuiltinOperator = {
  ADD: 0,
  AVERAGE_POOL_2D: 1,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  DEQUANTIZE: 6,
  RESHAPE: 22,
  SOFTMAX: 25,
  MEAN: 40,
  SQUEEZE: 43,
  QUANTIZE: 114,
} as const;

export const Activation = { NONE: 0, RELU: 1, RELU6: 3 } as const;
export const Padding = { SAME: 0, VALID: 1 } as const;

export interface Quantization {
  scale: Float32Array;
  zeroPoint: BigInt64Array;
  quantizedDimension: number;
}

export interface TfliteTensor {
  name: string;
  shape: number[];
  type: number;
  data: Uint8Array | null;
  quantization: Quantization | null;
}

/** The union member is kept undecoded; callers know from the opcode which options table it is. */
export interface TfliteOperator {
  opcode: number;
  inputs: number[];
  outputs: number[];
  options: Table | null;
}

export interface TfliteModel {
  tensors: TfliteTensor[];
  operators: TfliteOperator[];
  inputs: number[];
  outputs: number[];
}

export class Table {
  private readonly view: DataView;
  private readonly vtable: number;
  private readonly vtableSize: number;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly pos: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.vtable = pos - this.view.getInt32(pos, true);
    this.vtableSize = this.view.getUint16(this.vtable, true);
  }

  private field(id: number): number {
    const slot = 4 + 2 * id;
    if (slot >= this.vtableSize) return 0;
    const offset = this.view.getUint16(this.vtable + slot, true);
    return offset === 0 ? 0 : this.pos + offset;
  }

  private indirect(at: number): number {
    return at + this.view.getUint32(at, true);
  }

  int8(id: number, fallback = 0): number {
    const at = this.field(id);
    return at ? this.view.getInt8(at) : fallback;
  }

  uint8(id: number, fallback = 0): number {
    const at = this.field(id);
    return at ? this.view.getUint8(at) : fallback;
  }

  int32(id: number, fallback = 0): number {
    const at = this.field(id);
    return at ? this.view.getInt32(at, true) : fallback;
  }

  uint32(id: number, fallback = 0): number {
    const at = this.field(id);
    return at ? this.view.getUint32(at, true) : fallback;
  }

  string(id: number): string {
    const at = this.field(id);
    if (!at) return '';
    const start = this.indirect(at);
    const length = this.view.getUint32(start, true);
    return new TextDecoder().decode(this.bytes.subarray(start + 4, start + 4 + length));
  }

  table(id: number): Table | null {
    const at = this.field(id);
    return at ? new Table(this.bytes, this.indirect(at)) : null;
  }

  private vector(id: number): { start: number; length: number } | null {
    const at = this.field(id);
    if (!at) return null;
    const start = this.indirect(at);
    return { start: start + 4, length: this.view.getUint32(start, true) };
  }

  bytesVector(id: number): Uint8Array | null {
    const v = this.vector(id);
    return v ? this.bytes.subarray(v.start, v.start + v.length) : null;
  }

  int32Vector(id: number): number[] {
    const v = this.vector(id);
    if (!v) return [];
    return Array.from({ length: v.length }, (_, i) => this.view.getInt32(v.start + 4 * i, true));
  }

  float32Vector(id: number): Float32Array {
    const v = this.vector(id);
    if (!v) return new Float32Array(0);
    return Float32Array.from({ length: v.length }, (_, i) => this.view.getFloat32(v.start + 4 * i, true));
  }

  int64Vector(id: number): BigInt64Array {
    const v = this.vector(id);
    if (!v) return new BigInt64Array(0);
    return BigInt64Array.from({ length: v.length }, (_, i) => this.view.getBigInt64(v.start + 8 * i, true));
  }

  tables(id: number): Table[] {
    const v = this.vector(id);
    if (!v) return [];
    return Array.from({ length: v.length }, (_, i) => new Table(this.bytes, this.indirect(v.start + 4 * i)));
  }
}

export function readTflite(bytes: Uint8Array): TfliteModel {
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(4, 8)) !== 'TFL3') {
    throw new Error('not a TFLite flatbuffer (file identifier TFL3 missing)');
  }
  const root = new Table(bytes, new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true));
  // Newer files keep codes >= 127 in the int32 field 3 and clamp the byte field 0; taking the larger reads both.
  const opcodes = root.tables(1).map((code) => Math.max(code.int8(0), code.int32(3)));
  const buffers = root.tables(4).map((buffer) => buffer.bytesVector(0));
  const subgraphs = root.tables(2);
  if (subgraphs.length !== 1) throw new Error(`expected one subgraph, found ${subgraphs.length}`);
  const graph = subgraphs[0];

  const tensors = graph.tables(0).map((t): TfliteTensor => {
    const q = t.table(4);
    const scale = q ? q.float32Vector(2) : new Float32Array(0);
    const data = buffers[t.uint32(2)] ?? null;
    return {
      shape: t.int32Vector(0),
      type: t.int8(1),
      data: data && data.length > 0 ? data : null,
      name: t.string(3),
      quantization:
        q && scale.length > 0 ? { scale, zeroPoint: q.int64Vector(3), quantizedDimension: q.int32(6) } : null,
    };
  });

  const operators = graph.tables(3).map(
    (op): TfliteOperator => ({
      opcode: opcodes[op.uint32(0)],
      inputs: op.int32Vector(1),
      outputs: op.int32Vector(2),
      options: op.table(4),
    }),
  );

  return { tensors, operators, inputs: graph.int32Vector(1), outputs: graph.int32Vector(2) };
}
