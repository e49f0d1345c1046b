// sdkflow.mjs BASE SDK_DIR TMPDIR: the whole Uploads + Files flow through the official Node SDK
// (npm "openai", the version tests/server/sdk.bats pins), against uploadfs-server at BASE.
// Prints one "ok ..." line per step and exits non-zero at the first step that fails.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [base, sdk, work] = process.argv.slice(2);
const require = createRequire(path.join(sdk, 'package.json'));
const { default: OpenAI, toFile } = require('openai');
const client = new OpenAI({ baseURL: base, apiKey: 'sk-sdk-test', maxRetries: 0 });

const md5 = (b) => crypto.createHash('md5').update(b).digest('hex');
const check = (cond, what) => {
  if (!cond) {
    console.log(`not ok ${what}`);
    process.exit(1);
  }
  console.log(`ok ${what}`);
};
const body = async (fileId) => Buffer.from(await (await client.files.content(fileId)).arrayBuffer());
process.on('unhandledRejection', (e) => {
  console.log(`not ok: ${e && e.status ? `HTTP ${e.status}: ` : ''}${e && e.message}`);
  process.exit(1);
});

// tiny uploads: parts of 0 to 3 bytes, buffered
for (const n of [0, 1, 2, 3]) {
  const data = Buffer.from('xyz'.slice(0, n));
  const up = await client.uploads.create({ bytes: n, filename: `tiny${n}.bin`, mime_type: 'application/octet-stream', purpose: 'batch' });
  const part = await client.uploads.parts.create(up.id, { data: await toFile(data, `tiny${n}.bin`) });
  const done = await client.uploads.complete(up.id, { part_ids: [part.id], md5: md5(data) });
  check(done.status === 'completed' && done.file.bytes === n, `a ${n}-byte upload in one part`);
  check((await body(done.file.id)).equals(data), `its content reads back (${n} bytes)`);
}

// a larger upload: a buffered part and a streamed one (a file read as it is sent)
const big = crypto.randomBytes(3 * 1024 * 1024 + 17);
const second = path.join(work, 'second.bin');
fs.writeFileSync(second, big.subarray(2 * 1024 * 1024));
const up = await client.uploads.create({ bytes: big.length, filename: 'big.bin', mime_type: 'application/octet-stream', purpose: 'batch' });
const p1 = await client.uploads.parts.create(up.id, { data: await toFile(big.subarray(0, 2 * 1024 * 1024), 'p1') });
const p2 = await client.uploads.parts.create(up.id, { data: fs.createReadStream(second) });
check(p1.object === 'upload.part' && p2.object === 'upload.part', 'a buffered part and a streamed part');

// a wrong md5 is refused and the upload stays pending; the right one completes it
let refused = null;
try {
  await client.uploads.complete(up.id, { part_ids: [p1.id, p2.id], md5: '0'.repeat(32) });
} catch (e) {
  refused = e;
}
check(refused instanceof OpenAI.APIError && refused.status === 400, 'a wrong md5 is a 400 APIError');
const done = await client.uploads.complete(up.id, { part_ids: [p1.id, p2.id], md5: md5(big) });
check(done.status === 'completed' && done.file.bytes === big.length, 'then the right md5 completes it');
check((await body(done.file.id)).equals(big), 'its content reads back byte for byte');

// cancel: the SDK sends no body
const gone = await client.uploads.create({ bytes: 10, filename: 'c.bin', mime_type: 'text/plain', purpose: 'batch' });
const cancelled = await client.uploads.cancel(gone.id);
check(cancelled.status === 'cancelled', 'cancel, with the body the SDK sends');

// files.create of tiny files, then a listing over more than one page
const made = [];
for (let i = 0; i < 25; i++) {
  const f = await client.files.create({ file: await toFile(Buffer.from('abc'.slice(0, i % 4)), `f${i}.jsonl`), purpose: 'batch' });
  made.push(f.id);
}
check(made.length === 25, 'files.create of 0 to 3 byte files');
const seen = new Set();
for await (const f of client.files.list({ limit: 10 })) seen.add(f.id);
check(made.every((id) => seen.has(id)), `a listing in pages of 10 sees all ${seen.size} files`);

// retrieve and delete
const got = await client.files.retrieve(made[3]);
check(got.id === made[3] && got.bytes === 3, 'retrieve');
const del = await client.files.delete(made[3]);
check(del.deleted === true, 'delete');
let missing = null;
try {
  await client.files.retrieve(made[3]);
} catch (e) {
  missing = e;
}
check(missing instanceof OpenAI.NotFoundError, 'a deleted file is 404');
