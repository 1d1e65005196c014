// A GET whose bytes are watched as they arrive: for tests that act while a body is part way.
import { request } from 'node:http';

export interface Downloaded {
  status: number;
  body: Buffer;
  /** The whole body arrived (the response ended normally, not cut). */
  complete: boolean;
  headers: Record<string, unknown>;
}

/**
 * A GET whose bytes are watched as they arrive: `first` once any has, `reached` once `at` bytes have
 * (or the response has ended), `done` with all of them and how it ended.
 */
export function download(url: string, headers: Record<string, string> = {}, at = 1) {
  let gotFirst!: () => void;
  const first = new Promise<void>((resolve) => (gotFirst = resolve));
  let gotThere!: () => void;
  const reached = new Promise<void>((resolve) => (gotThere = resolve));
  let received = 0;
  const done = new Promise<Downloaded>((resolve) => {
    const chunks: Buffer[] = [];
    let status = 0;
    let resHeaders: Record<string, unknown> = {};
    const finish = (complete: boolean) => {
      gotFirst(); // a response that ends without a byte must not leave `first` waiting
      gotThere();
      resolve({ status, body: Buffer.concat(chunks), complete, headers: resHeaders });
    };
    const req = request(url, { headers, agent: false }, (res) => {
      status = res.statusCode ?? 0;
      resHeaders = res.headers;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        gotFirst();
        received += c.length;
        if (received >= at) gotThere();
      });
      res.once('end', () => finish(res.complete));
      res.once('error', () => finish(false));
      res.once('close', () => finish(res.complete));
    });
    req.once('error', () => finish(false));
    req.end();
  });
  return { first, reached, done };
}
