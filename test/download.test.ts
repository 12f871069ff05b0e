import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { checkDownloadUrl, downloadImage, type DownloadPolicy } from '../src/bot/download.js';
import { isAppError } from '../src/errors.js';
import { RateLimiter } from '../src/bot/rate-limit.js';

describe('downloads only from the CDN, with a streaming byte cap and no redirects', () => {
  let server: Server;
  let host: string;
  let requests = 0;
  let flaky = 0;
  before(async () => {
    server = createServer((request, response) => {
      requests += 1;
      if (request.url === '/redirect') {
        response.writeHead(302, { location: 'http://example.invalid/x.png' }).end();
      } else if (request.url === '/big-undeclared') {
        // No content-length: the cap must hold while streaming.
        response.writeHead(200, { 'content-type': 'image/png' });
        const chunk = Buffer.alloc(64 * 1024, 1);
        let sent = 0;
        const pump = () => {
          while (sent < 4 * 1024 * 1024 && response.write(chunk)) sent += chunk.length;
          if (sent < 4 * 1024 * 1024) response.once('drain', pump);
          else response.end();
        };
        pump();
      } else if (request.url === '/flaky') {
        flaky += 1;
        if (flaky < 3) response.writeHead(503).end();
        else response.writeHead(200).end(Buffer.from('ok'));
      } else if (request.url === '/gone') {
        response.writeHead(404).end();
      } else {
        response.writeHead(200, { 'content-length': '5' }).end(Buffer.from('image'));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const policy = (): DownloadPolicy => ({ hosts: [host], allowInsecure: true, maxBytes: 1024 * 1024, timeoutMs: 5_000, retries: 3 });

  test('only listed hosts, https unless in test mode, never loopback in production', () => {
    const production: DownloadPolicy = { hosts: ['cdn.discordapp.com', host], allowInsecure: false, maxBytes: 1 };
    assert.equal(checkDownloadUrl('https://cdn.discordapp.com/attachments/1/2/a.png', production).host, 'cdn.discordapp.com');
    for (const url of ['http://cdn.discordapp.com/a.png', 'https://evil.example/a.png', `https://${host}/a.png`, 'file:///etc/passwd', 'not a url']) {
      assert.throws(() => checkDownloadUrl(url, production), (error) => isAppError(error, 'DOWNLOAD_REFUSED'), url);
    }
  });

  test('a redirect is refused, not followed', async () => {
    const before = requests;
    await assert.rejects(downloadImage(`http://${host}/redirect`, policy()), (error) => isAppError(error, 'DOWNLOAD_FAILED') && /redirects/.test(error.message));
    assert.equal(requests, before + 1);
  });

  test('the byte cap holds while streaming a body without content-length', async () => {
    await assert.rejects(downloadImage(`http://${host}/big-undeclared`, policy()), (error) => isAppError(error, 'IMAGE_TOO_LARGE'));
  });

  test('transient failures are retried with backoff; a 404 is final', async () => {
    assert.equal((await downloadImage(`http://${host}/flaky`, policy())).toString(), 'ok');
    assert.equal(flaky, 3);
    const before = requests;
    await assert.rejects(downloadImage(`http://${host}/gone`, policy()), (error) => isAppError(error, 'DOWNLOAD_FAILED') && /no longer available/.test(error.message));
    assert.equal(requests, before + 1, 'not retried');
    assert.equal((await downloadImage(`http://${host}/ok.png`, policy())).toString(), 'image');
  });
});

test('the per-user query limit allows a burst up to the limit, then says how long to wait', () => {
  let now = 0;
  const limiter = new RateLimiter(3, 60_000, () => now);
  assert.deepEqual([limiter.take('a'), limiter.take('a'), limiter.take('a')], [0, 0, 0]);
  assert.equal(limiter.take('a'), 60_000);
  assert.equal(limiter.take('b'), 0, 'users are limited separately');
  now = 30_000;
  assert.equal(limiter.take('a'), 30_000);
  now = 60_001;
  assert.equal(limiter.take('a'), 0);
});
