'use strict';
// The SQLite archive's writer thread (started by SqliteWriter, sqlite-writer.ts). better-sqlite3
// is synchronous: run on the service's thread, every insert stops reading and decoding the next
// batch from Redis. Here it commits one batch while the service reads the next one.
//
// Plain CommonJS rather than TypeScript so one file runs unchanged from the sources (jest) and
// from dist/. It holds no schema knowledge: the statements and pragmas come from the store.
const { parentPort, workerData } = require('node:worker_threads');
const Database = require('better-sqlite3');

const { file, pragmas, insertSql, wordsSql, columns } = workerData;

/** A row's failure inside the transaction, carrying its position out of better-sqlite3. */
class RowFailure extends Error {
  constructor(index, cause) {
    super('row failed');
    this.index = index;
    this.cause = cause;
  }
}

const db = new Database(file);
for (const p of pragmas) db.pragma(p);
const insert = db.prepare(insertSql);
const words = db.prepare(wordsSql);

/**
 * `values` holds the rows one after the other, `columns` values each: the INSERT's parameters but
 * the last (archived_ms, the same for the whole batch), then the row's search words.
 */
const insertMany = db.transaction((values, archivedMs) => {
  const params = new Array(columns);
  params[columns - 1] = archivedMs;
  let inserted = 0;
  for (let at = 0, i = 0; at < values.length; at += columns, i++) {
    for (let c = 0; c < columns - 1; c++) params[c] = values[at + c];
    try {
      const res = insert.run(params);
      inserted += res.changes;
      // Only a row actually inserted gets words (a duplicate would index the old row twice).
      const text = values[at + columns - 1];
      if (res.changes && text) words.run(res.lastInsertRowid, text);
    } catch (err) {
      throw new RowFailure(i, err);
    }
  }
  return inserted;
});

function describe(err) {
  return { message: String(err && err.message ? err.message : err), code: err && err.code };
}

parentPort.on('message', (msg) => {
  if (msg.op === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    parentPort.postMessage({ id: msg.id, inserted: insertMany(msg.values, msg.archivedMs) });
  } catch (err) {
    const row = err instanceof RowFailure;
    parentPort.postMessage({
      id: msg.id,
      error: { ...describe(row ? err.cause : err), index: row ? err.index : undefined },
    });
  }
});
parentPort.postMessage({ ready: true });
