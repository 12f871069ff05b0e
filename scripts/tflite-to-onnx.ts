// Translates the MobileNetV2 TFLite graph (quantized, NHWC) into a float ONNX graph (NCHW inside, NHWC at the
// input) with two outputs: the pooled 1280-d embedding and the 1001 logits. Only the ops this family of models
// uses are supported; anything else is an error rather than a silent mistranslation.
import onnxProto from 'onnx-proto';
import {
  Activation,
  BuiltinOperator,
  Padding,
  TensorType,
  type Table,
  type TfliteModel,
  type TfliteTensor,
} from './tflite-reader.js';

// onnx-proto is CommonJS: the namespace is reached through the default export, and aliased to keep its types.
import onnx = onnxProto.onnx;

/** How convolution weights are stored in the ONNX file; activations always run in float32. */
export type WeightStorage = 'int8' | 'float16' | 'float32';

export interface ConvertOptions {
  weights: WeightStorage;
  /** Written into the model's metadata_props so a stray model.onnx still says where it came from. */
  metadata: Record<string, string>;
}

export interface ConvertResult {
  bytes: Uint8Array;
  featureDim: number;
  numClasses: number;
  inputSize: number;
}

// ONNX opset 13 is the first with per-axis DequantizeLinear; everything else used here is older.
const OPSET = 13;
const IR_VERSION = 7;
const { DataType } = onnx.TensorProto;

class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private counter = 0;

  constructor(private readonly weights: WeightStorage) {}

  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  node(opType: string, inputs: string[], output: string, attributes: onnx.IAttributeProto[] = [], doc?: string): string {
    const name = `${output}_${opType}`;
    this.nodes.push({ opType, input: inputs, output: [output], name, attribute: attributes, docString: doc });
    return output;
  }

  /** Gives an already emitted value its final graph-output name. */
  rename(from: string, to: string): string {
    const producer = this.nodes.find((n) => n.output?.[0] === from);
    if (!producer) throw new Error(`no node produces ${from}`);
    producer.output = [to];
    producer.name = `${to}_${producer.opType}`;
    for (const n of this.nodes) n.input = n.input?.map((i) => (i === from ? to : i));
    return to;
  }

  initializer(name: string, dataType: number, dims: number[], raw: Uint8Array): string {
    this.initializers.push({ name, dataType, dims, rawData: raw });
    return name;
  }

  float(name: string, dims: number[], values: Float32Array): string {
    return this.initializer(name, DataType.FLOAT, dims, littleEndianBytes(values));
  }

  /** A float32 weight tensor from int8 values with one scale per output channel (axis 0 of `dims`). */
  weight(name: string, dims: number[], q: Int8Array, scale: Float32Array): string {
    const perChannel = q.length / dims[0];
    if (this.weights === 'int8') {
      this.initializer(`${name}_q`, DataType.INT8, dims, new Uint8Array(q.buffer, q.byteOffset, q.length));
      this.float(`${name}_scale`, [dims[0]], scale);
      this.initializer(`${name}_zero`, DataType.INT8, [dims[0]], new Uint8Array(dims[0]));
      return this.node('DequantizeLinear', [`${name}_q`, `${name}_scale`, `${name}_zero`], name, [intAttr('axis', 0)]);
    }
    const values = Float32Array.from(q, (v, i) => v * scale[Math.floor(i / perChannel)]);
    if (this.weights === 'float16') {
      this.initializer(`${name}_f16`, DataType.FLOAT16, dims, littleEndianBytes(toFloat16(values)));
      return this.node('Cast', [`${name}_f16`], name, [intAttr('to', DataType.FLOAT)]);
    }
    return this.float(name, dims, values);
  }
}

function intAttr(name: string, value: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

function intsAttr(name: string, values: number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}

function littleEndianBytes(values: Float32Array | Uint16Array): Uint8Array {
  const out = new Uint8Array(values.byteLength);
  const view = new DataView(out.buffer);
  if (values instanceof Float32Array) values.forEach((v, i) => view.setFloat32(4 * i, v, true));
  else values.forEach((v, i) => view.setUint16(2 * i, v, true));
  return out;
}

/** IEEE half precision, round to nearest even; weights here are far from the subnormal and overflow ranges. */
function toFloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(new Float32Array(values).buffer);
  return Uint16Array.from(bits, (x) => {
    const sign = (x >>> 16) & 0x8000;
    const exponent = ((x >>> 23) & 0xff) - 127 + 15;
    const mantissa = x & 0x7fffff;
    if (exponent <= 0) return sign; // |w| < 6e-5: flushed to zero
    if (exponent >= 31) throw new Error('weight out of float16 range');
    let half = (exponent << 10) | (mantissa >>> 13);
    const rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1;
    return sign | half;
  });
}

function int8Data(t: TfliteTensor): Int8Array {
  if (t.type !== TensorType.INT8 || !t.data) throw new Error(`${t.name}: expected constant int8 weights`);
  if (t.quantization?.zeroPoint.some((z) => z !== 0n)) throw new Error(`${t.name}: expected symmetric weights`);
  return new Int8Array(t.data.buffer, t.data.byteOffset, t.data.length);
}

function dequantizedBias(t: TfliteTensor): Float32Array {
  if (t.type !== TensorType.INT32 || !t.data || !t.quantization) throw new Error(`${t.name}: expected int32 bias`);
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.length);
  const { scale } = t.quantization;
  const channelScale = (c: number) => scale[scale.length === 1 ? 0 : c];
  return Float32Array.from({ length: t.data.length / 4 }, (_, c) => view.getInt32(4 * c, true) * channelScale(c));
}

/** Output dimension k is input dimension perm[k]. */
function permute4(data: Int8Array, shape: number[], perm: number[]): { data: Int8Array; dims: number[] } {
  const dims = perm.map((p) => shape[p]);
  const inStrides = [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1];
  const [s0, s1, s2, s3] = perm.map((p) => inStrides[p]);
  const out = new Int8Array(data.length);
  let k = 0;
  for (let a = 0; a < dims[0]; a++) {
    for (let b = 0; b < dims[1]; b++) {
      for (let c = 0; c < dims[2]; c++) {
        for (let d = 0; d < dims[3]; d++) out[k++] = data[a * s0 + b * s1 + c * s2 + d * s3];
      }
    }
  }
  return { data: out, dims };
}

/** TF "SAME" puts the odd padding row/column at the bottom/right; ONNX pads are [top, left, bottom, right]. */
function samePads(inH: number, inW: number, k: number, stride: number): number[] {
  const total = (size: number) => Math.max((Math.ceil(size / stride) - 1) * stride + k - size, 0);
  const h = total(inH);
  const w = total(inW);
  return [Math.floor(h / 2), Math.floor(w / 2), h - Math.floor(h / 2), w - Math.floor(w / 2)];
}

function scope(t: TfliteTensor): string {
  return t.name.split(';')[0];
}

export function tfliteToOnnx(model: TfliteModel, options: ConvertOptions): ConvertResult {
  const g = new GraphBuilder(options.weights);
  const { tensors } = model;
  // TFLite tensor index -> ONNX value name (NCHW float) for every activation translated so far.
  const values = new Map<number, string>();
  // Tensors deliberately not translated (the softmax probabilities and their requantization).
  const dropped = new Set<number>();
  const valueOf = (index: number): string => {
    const name = values.get(index);
    if (name === undefined) throw new Error(`tensor ${tensors[index].name} used before it is produced`);
    return name;
  };

  const [inputIndex] = model.inputs;
  const [, inputSize, inputWidth, channels] = tensors[inputIndex].shape;
  if (inputSize !== inputWidth || channels !== 3) throw new Error(`unexpected input shape ${tensors[inputIndex].shape}`);
  values.set(inputIndex, g.node('Transpose', ['input'], 'input_nchw', [intsAttr('perm', [0, 3, 1, 2])]));

  let features: { name: string; dim: number } | null = null;
  let logits: { name: string; dim: number } | null = null;

  const activation = (name: string, fused: number, doc: string): string => {
    if (fused === Activation.NONE) return name;
    if (fused === Activation.RELU) return g.node('Relu', [name], g.fresh('relu'), [], doc);
    if (fused === Activation.RELU6) return g.node('Clip', [name, 'relu6_min', 'relu6_max'], g.fresh('relu6'), [], doc);
    throw new Error(`unsupported fused activation ${fused}`);
  };
  g.float('relu6_min', [], new Float32Array([0]));
  g.float('relu6_max', [], new Float32Array([6]));

  for (const op of model.operators) {
    const out = tensors[op.outputs[0]];
    const doc = scope(out);
    const opOptions = op.options;
    const opts = (): Table => {
      if (!opOptions) throw new Error(`${doc}: operator options missing`);
      return opOptions;
    };
    switch (op.opcode) {
      case BuiltinOperator.QUANTIZE:
      case BuiltinOperator.DEQUANTIZE:
        // The graph runs in float: (de)quantization steps are identities on the real values.
        if (dropped.has(op.inputs[0])) dropped.add(op.outputs[0]);
        else values.set(op.outputs[0], valueOf(op.inputs[0]));
        break;

      case BuiltinOperator.CONV_2D:
      case BuiltinOperator.DEPTHWISE_CONV_2D: {
        const depthwise = op.opcode === BuiltinOperator.DEPTHWISE_CONV_2D;
        const [inIdx, wIdx, bIdx] = op.inputs;
        const input = tensors[inIdx];
        const w = tensors[wIdx];
        const q = int8Data(w);
        const scale = w.quantization!.scale;
        const stride = opts().int32(1);
        if (opts().int32(2) !== stride) throw new Error(`${doc}: unequal strides`);
        const dilation = depthwise ? [opts().int32(5, 1), opts().int32(6, 1)] : [opts().int32(4, 1), opts().int32(5, 1)];
        if (dilation.some((d) => d !== 1)) throw new Error(`${doc}: dilation not supported`);
        if (depthwise && opts().int32(3) !== 1) throw new Error(`${doc}: depth multiplier != 1`);
        const fused = depthwise ? opts().int8(4) : opts().int8(3);

        // Depthwise [1, H, W, C] -> [C, 1, H, W] (one group per channel, scales along C = quantized_dimension 3);
        // regular OHWI -> OIHW (scales along O = quantized_dimension 0). Either way the scale axis becomes axis 0.
        const { data: oihw, dims } = permute4(q, w.shape, depthwise ? [3, 0, 1, 2] : [0, 3, 1, 2]);
        if (scale.length !== dims[0]) throw new Error(`${doc}: expected per-channel weight scales`);

        const name = g.fresh(depthwise ? 'dwconv' : 'conv');
        const weight = g.weight(`${name}_w`, dims, oihw, scale);
        const bias = g.float(`${name}_b`, [dims[0]], dequantizedBias(tensors[bIdx]));
        const [, inH, inW] = input.shape;
        const pads = opts().int8(0) === Padding.SAME ? samePads(inH, inW, dims[2], stride) : [0, 0, 0, 0];
        const attrs = [
          intsAttr('kernel_shape', [dims[2], dims[3]]),
          intsAttr('strides', [stride, stride]),
          intsAttr('pads', pads),
          intsAttr('dilations', [1, 1]),
          intAttr('group', depthwise ? dims[0] : 1),
        ];
        const conv = g.node('Conv', [valueOf(inIdx), weight, bias], name, attrs, doc);
        values.set(op.outputs[0], activation(conv, fused, doc));
        break;
      }

      case BuiltinOperator.ADD: {
        const sum = g.node('Add', [valueOf(op.inputs[0]), valueOf(op.inputs[1])], g.fresh('add'), [], doc);
        values.set(op.outputs[0], activation(sum, opOptions ? opOptions.int8(0) : Activation.NONE, doc));
        break;
      }

      case BuiltinOperator.MEAN:
      case BuiltinOperator.AVERAGE_POOL_2D: {
        const input = tensors[op.inputs[0]];
        const [, h, w, c] = input.shape;
        if (op.opcode === BuiltinOperator.MEAN) {
          const axes = tensors[op.inputs[1]].data;
          const view = axes && new DataView(axes.buffer, axes.byteOffset, axes.length);
          if (!view || view.byteLength !== 8 || view.getInt32(0, true) !== 1 || view.getInt32(4, true) !== 2) {
            throw new Error(`${doc}: only a spatial mean is supported`);
          }
        } else if (opts().int32(3) !== w || opts().int32(4) !== h) {
          throw new Error(`${doc}: only a global average pool is supported`);
        }
        const pooled = g.node('GlobalAveragePool', [valueOf(op.inputs[0])], g.fresh('pool'), [], doc);
        features = { name: g.node('Flatten', [pooled], 'features', [intAttr('axis', 1)], doc), dim: c };
        values.set(op.outputs[0], pooled);
        break;
      }

      case BuiltinOperator.RESHAPE:
      case BuiltinOperator.SQUEEZE: {
        // Only the head's [1,1,1,C] -> [1,C] squeeze occurs; Flatten keeps the batch dimension dynamic.
        const inShape = tensors[op.inputs[0]].shape;
        if (inShape.length !== 4 || inShape[1] !== 1 || inShape[2] !== 1 || out.shape.length !== 2) {
          throw new Error(`${doc}: only a spatial squeeze is supported`);
        }
        values.set(op.outputs[0], g.node('Flatten', [valueOf(op.inputs[0])], g.fresh('flat'), [intAttr('axis', 1)], doc));
        break;
      }

      case BuiltinOperator.SOFTMAX: {
        // Logits are exported before the softmax: callers need scores and embeddings, not probabilities.
        const [, classes] = tensors[op.inputs[0]].shape;
        logits = { name: g.rename(valueOf(op.inputs[0]), 'logits'), dim: classes };
        dropped.add(op.outputs[0]);
        break;
      }

      default:
        throw new Error(`unsupported TFLite operator code ${op.opcode} (${doc})`);
    }
  }

  if (!features || !logits) throw new Error('graph has no global pool or no softmax head');

  const tensorType = (name: string, dims: (number | string)[]): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });

  const graph: onnx.IGraphProto = {
    name: 'mobilenet_v2',
    node: g.nodes,
    initializer: g.initializers,
    input: [tensorType('input', ['N', inputSize, inputSize, 3])],
    output: [tensorType(features.name, ['N', features.dim]), tensorType(logits.name, ['N', logits.dim])],
  };
  const modelProto: onnx.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'deep-image-relevance scripts/convert-model',
    graph,
    metadataProps: Object.entries(options.metadata).map(([key, value]) => ({ key, value })),
  };
  return {
    bytes: onnx.ModelProto.encode(modelProto).finish(),
    featureDim: features.dim,
    numClasses: logits.dim,
    inputSize,
  };
}
