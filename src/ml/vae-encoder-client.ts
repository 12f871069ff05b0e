/**
 * Encodes many feature rows with a VAE in a worker thread (vae-encoder.worker.ts): a retrain's bulk encode runs
 * there, at tfjs speed, while the main thread builds the index and answers queries. A query's single vector still
 * goes through VaeModel.encode, which needs no tfjs.
 */
import { Worker } from 'node:worker_threads';
import { AppError } from '../errors.js';
import type { VaeModel } from './vae-model.js';
import type { VaeEncoderInput, VaeEncoderReply, VaeEncoderRequest } from './vae-encoder.worker.js';

type Pending = { resolve: (mu: Float32Array) => void; reject: (error: AppError) => void };

export class VaeEncoderWorker {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Set once the worker is gone; every later request fails with it. */
  private failure: AppError | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: VaeEncoderReply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if ('mu' in reply) waiting.resolve(reply.mu);
      else waiting.reject(AppError.fromJSON(reply.error));
    });
    worker.on('error', (error) => this.fail(new AppError('INFERENCE_FAILED', `The encoding worker crashed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => this.fail(new AppError('INFERENCE_FAILED', `The encoding worker stopped (exit code ${code}).`, { details: { code } })));
  }

  /** Starts a worker holding a copy of `model`'s weights; it loads tfjs while the caller goes on. */
  static start(model: VaeModel): VaeEncoderWorker {
    const input: VaeEncoderInput = { meta: model.meta, weights: model.weights };
    try {
      return new VaeEncoderWorker(new Worker(new URL('./vae-encoder.worker.js', import.meta.url), { workerData: input }));
    } catch (error) {
      throw new AppError('INFERENCE_FAILED', 'Could not start the encoding worker.', { cause: error });
    }
  }

  /**
   * μ for `count` row-major feature rows (count × latentDim). `features` is copied to the worker; requests are
   * answered in order, so the caller can keep the next one queued while it uses this one's result.
   */
  encode(features: Float32Array, count: number): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const rows = features.slice();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, features: rows, count } satisfies VaeEncoderRequest, [rows.buffer]);
    });
  }

  /** Stops the worker; requests still pending fail with INFERENCE_FAILED. */
  async close(): Promise<void> {
    this.fail(new AppError('INFERENCE_FAILED', 'The encoding worker was closed.'));
    await this.worker.terminate();
  }

  private fail(error: AppError): void {
    this.failure ??= error;
    for (const waiting of this.pending.values()) waiting.reject(this.failure);
    this.pending.clear();
  }
}
