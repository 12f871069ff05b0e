import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GATE_DEFAULTS, evaluateRetrainCandidate } from '../src/index/quality-gate.js';
import { DEFAULT_VAE_HYPER, VAE_FORMAT, VaeModel } from '../src/ml/vae-model.js';
import { mulberry32 } from '../src/eval/random.js';

const D = 16;
const H = 2 * D;
const L = 4;
const N = 120;

/**
 * Six clusters that differ only in dimensions 0-3; dimensions 4-15 are faint noise. Raw-feature neighbours
 * therefore follow the clusters, and a key that reads dimensions 0-3 keeps them while one that reads 12-15
 * keeps only chance overlap.
 */
function clustered(): Float32Array {
  const rand = mulberry32(7);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const centres = Array.from({ length: 6 }, () => Array.from({ length: 4 }, () => 6 * rand() - 3));
  const x = new Float32Array(N * D);
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < D; k++) x[i * D + k] = k < 4 ? centres[i % 6][k] + 0.3 * gauss() : 0.1 * gauss();
  }
  return x;
}

/**
 * A hand-built VAE whose μ copies input dimensions `from`…`from + 3` (hidden layer [relu(x), relu(−x)]) and
 * whose decoder writes μ back into those dimensions, plus `outputBias` everywhere.
 */
function copyingVae(from: number, outputBias = 0, epochsTrained = 1): VaeModel {
  const encoderW = new Float32Array(D * H);
  for (let k = 0; k < D; k++) {
    encoderW[k * H + k] = 1;
    encoderW[k * H + D + k] = -1;
  }
  const muW = new Float32Array(H * L);
  for (let j = 0; j < L; j++) {
    muW[(from + j) * L + j] = 1;
    muW[(D + from + j) * L + j] = -1;
  }
  const decoderW = new Float32Array(L * H);
  const outputW = new Float32Array(H * D);
  for (let j = 0; j < L; j++) {
    decoderW[j * H + j] = 1;
    decoderW[j * H + L + j] = -1;
    outputW[j * D + from + j] = 1;
    outputW[(L + j) * D + from + j] = -1;
  }
  const hyper = { ...DEFAULT_VAE_HYPER, latent: L, hidden: H, inputTransform: 'none' as const };
  return new VaeModel(
    {
      id: `copy-${from}`,
      created: '2026-01-01T00:00:00.000Z',
      trainingSize: N,
      hyper,
      loss: { final: 0, recon: 0, kl: 0 },
      activeUnits: L,
      inputDim: D,
      latentDim: L,
      hiddenDim: H,
      seed: 1,
      epochsTrained,
      format: VAE_FORMAT,
    },
    {
      inputMean: new Float32Array(D),
      inputStd: new Float32Array(D).fill(1),
      encoderW,
      encoderB: new Float32Array(H),
      muW,
      muB: new Float32Array(L),
      logVarW: new Float32Array(H * L),
      logVarB: new Float32Array(L),
      decoderW,
      decoderB: new Float32Array(H),
      outputW,
      outputB: new Float32Array(D).fill(outputBias),
    },
  );
}

const features = clustered();
const good = copyingVae(0);
const bad = copyingVae(12);

test('quality gate: a first VAE that keeps the raw neighbourhoods replaces raw features', () => {
  const decision = evaluateRetrainCandidate(features, N, { kind: 'raw' }, good);
  assert.equal(decision.accept, true, decision.reason);
  assert.equal(decision.current.overlap, 1);
  assert.ok(decision.candidate.overlap > 0.5, `overlap ${decision.candidate.overlap}`);
  assert.equal(decision.candidate.activeUnits, L);
  assert.ok(Number.isFinite(decision.candidate.heldOutLoss));
  assert.match(decision.reason, /raw-feature neighbours/);
});

test('quality gate: a VAE that has lost the neighbourhoods is refused, with both numbers', () => {
  const fromRaw = evaluateRetrainCandidate(features, N, { kind: 'raw' }, bad);
  assert.equal(fromRaw.accept, false);
  assert.ok(fromRaw.candidate.overlap < GATE_DEFAULTS.minOverlapVsRaw, `overlap ${fromRaw.candidate.overlap}`);
  assert.match(fromRaw.reason, /raw features stay active/);

  const fromVae = evaluateRetrainCandidate(features, N, { kind: 'vae', model: good }, bad);
  assert.equal(fromVae.accept, false);
  assert.ok(fromVae.current.overlap > fromVae.candidate.overlap + GATE_DEFAULTS.overlapMargin);
  assert.match(fromVae.reason, new RegExp(`from ${fromVae.current.overlap.toFixed(3)} to ${fromVae.candidate.overlap.toFixed(3)}`));
});

test('quality gate: a better VAE replaces a worse one; an equal one passes within the margin', () => {
  assert.equal(evaluateRetrainCandidate(features, N, { kind: 'vae', model: bad }, good).accept, true);
  const same = evaluateRetrainCandidate(features, N, { kind: 'vae', model: good }, copyingVae(0));
  assert.equal(same.accept, true, same.reason);
  assert.equal(same.candidate.overlap, same.current.overlap);
});

test('quality gate: a candidate whose held-out loss is much worse is refused even with equal overlap', () => {
  const decision = evaluateRetrainCandidate(features, N, { kind: 'vae', model: good }, copyingVae(0, 3));
  assert.equal(decision.accept, false);
  assert.ok(decision.candidate.heldOutLoss! > decision.current.heldOutLoss! * (1 + GATE_DEFAULTS.lossMargin));
  assert.match(decision.reason, /Held-out loss would rise/);
  // A looser margin lets the same candidate through.
  assert.equal(evaluateRetrainCandidate(features, N, { kind: 'vae', model: good }, copyingVae(0, 3), { lossMargin: 100 }).accept, true);
});

test('quality gate: refuses to decide on too few held-out rows', () => {
  assert.throws(() => evaluateRetrainCandidate(features.subarray(0, 10 * D), 10, { kind: 'raw' }, good), RangeError);
});

test('quality gate: against a model trained for more steps, a higher held-out loss is not held against the candidate', () => {
  const longer = copyingVae(0, 0, 50);
  const decision = evaluateRetrainCandidate(features, N, { kind: 'vae', model: longer }, copyingVae(0, 3, 10));
  assert.equal(decision.accept, true, decision.reason);
  assert.ok(decision.candidate.heldOutLoss! > decision.current.heldOutLoss! * (1 + GATE_DEFAULTS.lossMargin));
  assert.match(decision.reason, /not compared: the current model trained \d+ steps, the new one \d+/);
  // Overlap still decides.
  assert.equal(evaluateRetrainCandidate(features, N, { kind: 'vae', model: longer }, copyingVae(12, 0, 10)).accept, false);
});
