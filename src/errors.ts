/**
 * One error type for every expected fault, checked by `code` (which survives a worker-thread boundary,
 * unlike `instanceof`). `message` is written for the person who sees it: a CLI user or a Discord member.
 */
export type ErrorCode =
  | 'IMAGE_EMPTY'
  | 'IMAGE_TOO_LARGE'
  | 'IMAGE_TOO_MANY_PIXELS'
  | 'IMAGE_UNSUPPORTED'
  | 'IMAGE_CORRUPT'
  | 'MODEL_MISSING'
  | 'MODEL_INVALID'
  | 'INFERENCE_FAILED'
  | 'TRAINING_FAILED'
  | 'TRAINING_CANCELLED'
  | 'NOT_ENOUGH_DATA'
  | 'NOT_FOUND'
  | 'INDEX_CORRUPT'
  | 'STORE_FAILED'
  | 'BUSY'
  | 'NAMESPACE_MOVED'
  | 'CONFIG_INVALID'
  | 'DOWNLOAD_REFUSED'
  | 'DOWNLOAD_FAILED'
  | 'NOT_PERMITTED'
  | 'RATE_LIMITED'
  | 'OPTED_OUT';

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }

  /** A plain object that crosses postMessage; `fromJSON` rebuilds the error on the other side. */
  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }

  static fromJSON(value: { code: ErrorCode; message: string; details?: Record<string, unknown> }): AppError {
    return new AppError(value.code, value.message, { details: value.details ?? {} });
  }
}

export function isAppError(value: unknown, code?: ErrorCode): value is AppError {
  if (!(value instanceof Error) || typeof (value as AppError).code !== 'string') return false;
  return code === undefined || (value as AppError).code === code;
}
