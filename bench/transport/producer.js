'use strict';
// Benchmark producer, in its own process so it does not share the consumer's event loop.
// argv: url stream count fieldsJson. Pipelines XADDs in chunks of 1000; prints `done <ms>`.
const Redis = require('ioredis').default;

async function main() {
  const [url, stream, count, fieldsJson] = process.argv.slice(2);
  const fields = JSON.parse(fieldsJson);
  const redis = new Redis(url);
  const n = Number(count);
  const t0 = Date.now();
  for (let sent = 0; sent < n;) {
    const pipeline = redis.pipeline();
    const chunk = Math.min(1000, n - sent);
    for (let i = 0; i < chunk; i++) pipeline.xadd(stream, '*', ...fields);
    const results = await pipeline.exec();
    for (const [err] of results) if (err) throw err;
    sent += chunk;
  }
  process.stdout.write(`done ${Date.now() - t0}\n`);
  redis.disconnect();
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
