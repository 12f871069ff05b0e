// MobileNetV2 embeddings from preprocessed images (see image.ts), computed in a worker thread. Concurrent calls are
// gathered into batches: whatever queued up while one batch ran becomes the next batch.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AppError } from '../errors.js';
import { MODEL_INPUT, defaultModelDir, readModelConfig, type ModelConfig } from './onnx-model.js';

export interface FeatureExtractorOptions {
  /** Directory holding model.json and model.onnx; defaults to models/mobilenet_v2 of this package. */
  modelDir?: string;
  /** onnxruntime intra-op threads in the worker (default 1). */
  threads?: number;
  /** Most images per session.run (default 16). */
  maxBatch?: number;
}

export interface FeatureExtractor {
  /** `input` is one preprocessed image (224*224*3, NHWC, [-1, 1]); resolves to its 1280-d embedding. */
  extract(input: Float32Array): Promise<Float32Array>;
  /** The embedding and the 1001 ImageNet logits (column 0 is "background"). */
  extractWithLogits(input: Float32Array): Promise<{ features: Float32Array; logits: Float32Array }>;
  /** Changes whenever the model file changes: embeddings from different versions are not comparable. */
  readonly modelVersion: string;
  readonly dim: number;
  /** Rejects pending calls and stops the worker. */
  close(): Promise<void>;
}

/** Sent once as workerData; `model` is the verified file content, transferred rather than read again. */
export interface WorkerInit {
  model: Uint8Array;
  threads: number;
  size: number;
  inputName: string;
  featuresName: string;
  featureDim: number;
  logitsName: string;
  logitsDim: number;
}

export type WorkerRequest =
  /** `input` holds at least `rows` images; it comes back with the reply to be reused for the next batch. */
  | { type: 'run'; id: number; rows: number; input: ArrayBuffer; withLogits: boolean }
  /** Release the session and exit once the current run is done. */
  | { type: 'close' };

type ErrorJson = ReturnType<AppError['toJSON']>;

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'failed'; error: ErrorJson }
  | { type: 'result'; id: number; input: ArrayBuffer; features: ArrayBuffer; logits: ArrayBuffer | null }
  | { type: 'error'; id: number; input: ArrayBuffer; error: ErrorJson };

interface Pending {
  input: Float32Array;
  withLogits: boolean;
  resolve(value: { features: Float32Array; logits: Float32Array | null }): void;
  reject(error: AppError): void;
}

const INPUT_LENGTH = MODEL_INPUT.size * MODEL_INPUT.size * MODEL_INPUT.channels;
const WORKER_URL = new URL('./features.worker.js', import.meta.url);
/** How long close() waits for a running batch before terminating the worker anyway. */
const CLOSE_TIMEOUT_MS = 30_000;

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  const result = value ?? fallback;
  if (!Number.isInteger(result) || result < 1) {
    throw new AppError('CONFIG_INVALID', `${name} must be a positive integer (got ${String(value)}).`);
  }
  return result;
}

/** Reads the model and checks it against the sha256 recorded in model.json before anything executes it. */
async function loadVerifiedModel(modelDir: string, config: ModelConfig): Promise<Uint8Array> {
  const path = join(modelDir, config.file);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (cause) {
    throw new AppError('MODEL_MISSING', `The image model file is missing (${path}).`, { cause, details: { path } });
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== config.sha256) {
    throw new AppError('MODEL_INVALID', `The image model file does not match its checksum (${path}).`, {
      details: { path, expected: config.sha256, actual },
    });
  }
  return bytes;
}

class WorkerFeatureExtractor implements FeatureExtractor {
  readonly modelVersion: string;
  readonly dim: number;
  private worker: Worker | null = null;
  private starting: Promise<void> | null = null;
  private readonly queue: Pending[] = [];
  private inFlight: { id: number; items: Pending[] } | null = null;
  /**
   * The batch buffer travels to the worker and back instead of being allocated per batch: writing fresh pages of a
   * new 10 MB buffer stalled the event loop for ~30 ms per batch, refilling a used one takes well under 1 ms.
   */
  private spare: ArrayBuffer | null = null;
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly modelDir: string,
    private readonly config: ModelConfig,
    private readonly threads: number,
    private readonly maxBatch: number,
  ) {
    this.modelVersion = config.modelVersion;
    this.dim = config.outputs.features.dim;
  }

  async open(): Promise<void> {
    this.worker = await this.start();
  }

  /** Starts a worker and resolves once its session is loaded and has answered a first run. */
  private async start(): Promise<Worker> {
    const model = await loadVerifiedModel(this.modelDir, this.config);
    const init: WorkerInit = {
      model,
      threads: this.threads,
      size: MODEL_INPUT.size,
      inputName: this.config.input.name,
      featuresName: this.config.outputs.features.name,
      featureDim: this.config.outputs.features.dim,
      logitsName: this.config.outputs.logits.name,
      logitsDim: this.config.outputs.logits.dim,
    };
    // onnxruntime ≥ 1.29 on Linux starts Microsoft's telemetry unless this is set before it initialises: it writes
    // ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ and $TMPDIR/.ses and uploads events. A self-hosted engine must
    // not write outside its data dir nor reach the network. Set here, not in the worker: a worker's process.env is a
    // copy that native getenv never sees.
    process.env.ORT_DISABLE_TELEMETRY ??= '1';
    const worker = new Worker(WORKER_URL, { workerData: init, transferList: [model.buffer as ArrayBuffer] });
    let started = false;
    await new Promise<void>((resolve, reject) => {
      const fail = (error: AppError) => {
        if (started) return;
        started = true;
        reject(error);
      };
      // The first message is 'ready' or 'failed'; after 'failed' the worker exits by itself.
      worker.once('message', (reply: WorkerReply) => {
        if (reply.type === 'ready') {
          started = true;
          resolve();
        } else if (reply.type === 'failed') {
          fail(AppError.fromJSON(reply.error));
        } else {
          fail(new AppError('MODEL_INVALID', 'The image model worker failed to start.'));
        }
      });
      // Listeners stay attached for the worker's life: an 'error' without a listener would crash the process.
      worker.on('error', (cause) => {
        fail(new AppError('MODEL_INVALID', 'The image model worker failed to start.', { cause }));
        this.onWorkerGone(worker, 'The image model stopped unexpectedly.', cause);
      });
      worker.on('exit', (code) => {
        fail(new AppError('MODEL_INVALID', `The image model worker exited during start-up (code ${code}).`));
        this.onWorkerGone(worker, `The image model stopped unexpectedly (exit code ${code}).`);
      });
    });
    worker.on('message', (reply: WorkerReply) => this.onReply(worker, reply));
    // An idle worker must not keep the process alive; it is ref'd while a batch is out.
    worker.unref();
    return worker;
  }

  extract(input: Float32Array): Promise<Float32Array> {
    return this.enqueue(input, false).then((r) => r.features);
  }

  extractWithLogits(input: Float32Array): Promise<{ features: Float32Array; logits: Float32Array }> {
    return this.enqueue(input, true).then((r) => ({ features: r.features, logits: r.logits! }));
  }

  private enqueue(input: Float32Array, withLogits: boolean) {
    return new Promise<{ features: Float32Array; logits: Float32Array | null }>((resolve, reject) => {
      if (this.closed) {
        reject(new AppError('INFERENCE_FAILED', 'The image model has been shut down.'));
      } else if (!(input instanceof Float32Array) || input.length !== INPUT_LENGTH) {
        reject(
          new AppError('INFERENCE_FAILED', 'Internal error: the image tensor has the wrong size.', {
            details: { expected: INPUT_LENGTH, actual: (input as { length?: number } | null)?.length },
          }),
        );
      } else {
        this.queue.push({ input, withLogits, resolve, reject });
        this.pump();
      }
    });
  }

  private pump(): void {
    if (this.closed || this.inFlight || this.queue.length === 0) return;
    if (!this.worker) {
      // First use after a crash: replace the worker; the queued requests wait for it.
      this.starting ??= this.start().then(
        (worker) => {
          this.starting = null;
          if (this.closed) void stopWorker(worker);
          else this.worker = worker;
          this.pump();
        },
        (error: AppError) => {
          this.starting = null;
          this.rejectAll(this.queue.splice(0), error);
        },
      );
      return;
    }
    const items = this.queue.splice(0, this.maxBatch);
    const buffer = this.spare ?? new ArrayBuffer(this.maxBatch * INPUT_LENGTH * Float32Array.BYTES_PER_ELEMENT);
    this.spare = null;
    const input = new Float32Array(buffer);
    items.forEach((item, i) => input.set(item.input, i * INPUT_LENGTH));
    const request: WorkerRequest = {
      type: 'run',
      id: this.nextId++,
      rows: items.length,
      input: buffer,
      withLogits: items.some((item) => item.withLogits),
    };
    this.inFlight = { id: request.id, items };
    this.worker.ref();
    this.worker.postMessage(request, [buffer]);
  }

  private onReply(worker: Worker, reply: WorkerReply): void {
    const batch = this.inFlight;
    if (worker !== this.worker || !batch || !('id' in reply) || reply.id !== batch.id) return;
    this.inFlight = null;
    this.spare = reply.input;
    worker.unref();
    if (reply.type === 'error') {
      this.rejectAll(batch.items, AppError.fromJSON(reply.error));
    } else if (reply.type === 'result') {
      const features = new Float32Array(reply.features);
      const logits = reply.logits ? new Float32Array(reply.logits) : null;
      const classes = this.config.outputs.logits.dim;
      batch.items.forEach((item, i) =>
        item.resolve({
          // Copies, so that a kept embedding does not pin the whole batch's buffer.
          features: features.slice(i * this.dim, (i + 1) * this.dim),
          logits: logits ? logits.slice(i * classes, (i + 1) * classes) : null,
        }),
      );
    }
    this.pump();
  }

  private onWorkerGone(worker: Worker, message: string, cause?: unknown): void {
    if (worker !== this.worker) return;
    this.worker = null;
    const batch = this.inFlight;
    this.inFlight = null;
    // Only the batch that was running is lost; queued requests go to a fresh worker.
    if (batch) this.rejectAll(batch.items, new AppError('INFERENCE_FAILED', message, { cause }));
    this.pump();
  }

  private rejectAll(items: Pending[], error: AppError): void {
    for (const item of items) item.reject(error);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const shutDown = new AppError('INFERENCE_FAILED', 'The image model has been shut down.');
    this.rejectAll([...(this.inFlight?.items ?? []), ...this.queue.splice(0)], shutDown);
    this.inFlight = null;
    const worker = this.worker;
    this.worker = null;
    if (worker) await stopWorker(worker);
  }
}

/**
 * Asks the worker to finish its current run and exit. Worker.terminate() during session.run aborts the whole
 * process (onnxruntime-node throws from native code into a torn-down environment), so it is only the fallback for a
 * worker that does not exit in time.
 */
async function stopWorker(worker: Worker): Promise<void> {
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  // Keeps the process alive until the worker is really gone, for the same reason.
  worker.ref();
  worker.postMessage({ type: 'close' } satisfies WorkerRequest);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS);
    timer.unref();
  });
  if ((await Promise.race([exited, timeout])) === 'timeout') await worker.terminate();
  clearTimeout(timer);
}

export async function createFeatureExtractor(options: FeatureExtractorOptions = {}): Promise<FeatureExtractor> {
  const threads = positiveInteger(options.threads, 1, 'threads');
  const maxBatch = positiveInteger(options.maxBatch, 16, 'maxBatch');
  const modelDir = options.modelDir ?? defaultModelDir();
  const extractor = new WorkerFeatureExtractor(modelDir, readModelConfig(modelDir), threads, maxBatch);
  // Starting eagerly turns a missing or broken model into an error here rather than on the first image.
  await extractor.open();
  return extractor;
}
