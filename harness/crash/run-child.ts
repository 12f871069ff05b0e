// Forks one crash-test child and collects what it reported over IPC until it exits or is SIGKILLed.
import { fork } from 'node:child_process';

export interface ChildRun<M> {
  messages: M[];
  /** ms from fork to each message's arrival. */
  arrivals: number[];
  killed: boolean;
  /** Killed because it reported nothing for `stallMs`: a hang, not one of the planned kills. */
  stalled: boolean;
  /** ms from fork to exit. */
  elapsed: number;
  stderr: string;
}

/** When to kill: `delayMs` after the first message `on` accepts (progress, not wall time, so a slow machine aims alike). */
export interface KillTrigger<M> {
  on: (message: M) => boolean;
  delayMs: number;
}

export interface ChildOptions<M> {
  trigger?: KillTrigger<M>;
  /** Called with each message as it arrives (the parent can act on the child's progress). */
  onMessage?: (message: M) => void;
  /** SIGKILL the child once it has been silent this long. */
  stallMs?: number;
}

export interface StartedChild<M> {
  /** SIGKILL now, or `delayMs` from now (a later call does not move a kill already set). */
  kill(delayMs?: number): void;
  /** Resolves once the child has closed; rejects when it exited on its own with an error. */
  done: Promise<ChildRun<M>>;
}

export function startChild<M>(script: string, argv: string[], options: ChildOptions<M> = {}): StartedChild<M> {
  const started = performance.now();
  const child = fork(script, argv, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const messages: M[] = [];
  const arrivals: number[] = [];
  let stderr = '';
  let stalled = false;
  let killTimer: NodeJS.Timeout | undefined;
  let stallTimer: NodeJS.Timeout | undefined;
  const kill = (delayMs = 0) => {
    if (!killTimer) killTimer = setTimeout(() => child.kill('SIGKILL'), delayMs);
  };
  const watchStall = () => {
    if (options.stallMs === undefined) return;
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => {
      stalled = true;
      child.kill('SIGKILL');
    }, options.stallMs);
  };
  watchStall();
  child.on('message', (m) => {
    const message = m as M;
    messages.push(message);
    arrivals.push(performance.now() - started);
    watchStall();
    options.onMessage?.(message);
    if (options.trigger?.on(message)) kill(options.trigger.delayMs);
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<ChildRun<M>>((resolve, reject) => {
    child.on('error', reject);
    // 'close' comes after the IPC channel has drained, so every message the child got out is in `messages`.
    child.on('close', (code, signal) => {
      clearTimeout(killTimer);
      clearTimeout(stallTimer);
      const killed = signal === 'SIGKILL';
      if (!killed && code !== 0) reject(new Error(`crash-test child ${script} exited with ${code}: ${stderr.slice(-2000)}`));
      else resolve({ messages, arrivals, killed: killed && !stalled, stalled, elapsed: performance.now() - started, stderr });
    });
  });
  return { kill, done };
}

/** Forks the child and SIGKILLs it as `trigger` says (unless it exits first); resolves once it has closed. */
export function runChild<M>(script: string, argv: string[], trigger: KillTrigger<M> | undefined): Promise<ChildRun<M>> {
  return startChild<M>(script, argv, { trigger }).done;
}
