import { GROUPS, Keyspace } from '@coordbus/envelope';
import { QueueKeys } from 'bullmq';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { K8sObject, ROOT, byKind, find, kustomize } from './helpers';

/**
 * The autoscaling triggers name streams, consumer groups and the BullMQ wait list. They must be
 * exactly what the services use: rebuild every name from Keyspace (with the COORDBUS_NAMESPACE
 * of the rendered config) and BullMQ's own key builder, and compare.
 */
interface Trigger {
  type: string;
  name?: string;
  metadata: Record<string, string>;
}

let rendered: Record<string, K8sObject[]>;
beforeAll(() => {
  rendered = { prod: kustomize(join(ROOT, 'k8s', 'overlays', 'prod')) };
}, 60_000);

function keyspaceOf(objects: K8sObject[]): Keyspace {
  const config = byKind(objects, 'ConfigMap').find((c) => c.metadata.name.startsWith('coordbus-config'));
  if (!config) throw new Error('no coordbus-config ConfigMap rendered');
  return new Keyspace(config.data?.COORDBUS_NAMESPACE ?? '');
}

const triggers = (objects: K8sObject[], name: string): Trigger[] =>
  find(objects, 'ScaledObject', name).spec.triggers;

describe('KEDA triggers name what the services read', () => {
  it('fanout-publisher scales on the lag of group `fanout` on the coord ingest stream', () => {
    const ks = keyspaceOf(rendered.prod);
    expect(triggers(rendered.prod, 'fanout-publisher')).toEqual([
      expect.objectContaining({
        type: 'redis-streams',
        metadata: expect.objectContaining({ stream: ks.coordIngest, consumerGroup: GROUPS.fanout }),
      }),
    ]);
  });

  it('sentinel-subscriber scales on the lag of group `sentinel` on the coord events stream', () => {
    const ks = keyspaceOf(rendered.prod);
    expect(triggers(rendered.prod, 'sentinel-subscriber')).toEqual([
      expect.objectContaining({
        type: 'redis-streams',
        metadata: expect.objectContaining({ stream: ks.coordEvents, consumerGroup: GROUPS.sentinel }),
      }),
    ]);
  });

  it('telemetry-archivist scales on group `archivist` over every source stream it archives, the coord ingest stream included', () => {
    const ks = keyspaceOf(rendered.prod);
    const list = triggers(rendered.prod, 'telemetry-archivist');
    const sources = ks.archivedStreams.filter((s) => !s.endsWith(ks.deadLetter('')));
    expect(list.map((t) => t.metadata.stream).sort()).toEqual([...sources].sort());
    expect(list.map((t) => t.metadata.stream)).toContain(ks.coordIngest);
    for (const t of list)
      expect(t).toEqual(
        expect.objectContaining({
          type: 'redis-streams',
          metadata: expect.objectContaining({ consumerGroup: GROUPS.archivist }),
        }),
      );
    expect(new Set(list.map((t) => t.name)).size).toBe(list.length);
  });

  it('job-coordinator scales on the BullMQ wait list of the hook-jobs queue, under the hash-tagged prefix', () => {
    const ks = keyspaceOf(rendered.prod);
    const wait = new QueueKeys(ks.bullPrefix).toKey(ks.jobQueue, 'wait');
    expect(wait).toBe(ks.namespace ? `${ks.namespace}:{bull}:hook-jobs:wait` : '{bull}:hook-jobs:wait');
    expect(triggers(rendered.prod, 'job-coordinator')).toEqual([
      expect.objectContaining({
        type: 'redis',
        metadata: expect.objectContaining({ listName: wait, listLength: expect.stringMatching(/^\d+$/) }),
      }),
    ]);
  });

  it('names a consumer group in every stream trigger, and only groups that exist', () => {
    for (const s of byKind(rendered.prod, 'ScaledObject')) {
      for (const t of s.spec.triggers as Trigger[]) {
        if (t.type === 'redis-streams') expect(Object.values(GROUPS)).toContain(t.metadata.consumerGroup);
      }
    }
  });
});

/**
 * The other half of the contract: the services' own source declares the same streams and groups.
 * A static read of the declarations (a refactor that moves them makes this fail loudly, and the
 * patterns below are the place to update), so a renamed group or stream cannot drift silently.
 */
describe('the services consume what the triggers watch', () => {
  const src = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');
  const ks = new Keyspace('');
  const getter = (name: string) => (ks as unknown as Record<string, string>)[name];

  it('fanout-publisher handles the coord ingest stream in group fanout', () => {
    const handlers = [
      ...src('apps/fanout-publisher/src/fanout.controller.ts').matchAll(
        /@Stream(?:Batch)?Handler\(\{\s*stream: '(\w+)',\s*group: GROUPS\.(\w+)/g,
      ),
    ];
    expect(handlers.map((m) => [getter(m[1]), m[2]])).toEqual([[ks.coordIngest, 'fanout']]);
    expect(triggers(rendered.prod, 'fanout-publisher')[0].metadata).toMatchObject({
      stream: ks.coordIngest,
      consumerGroup: GROUPS.fanout,
    });
  });

  it('the archivist handles exactly the trigger streams (plus their dead letters) in group archivist', () => {
    const controller = src('apps/telemetry-archivist/src/ingest/archive-ingest.controller.ts');
    expect(controller).toMatch(/const group = GROUPS\.archivist\b/);
    // The controller declares each stream once per ingest mode (validated and raw): compare the set.
    const streams = [
      ...new Set(
        [...controller.matchAll(/@StreamBatchHandler\(\{\s*stream: '([\w:]+)',\s*group\b/g)].map((m) => m[1]),
      ),
    ];
    const live = streams.filter((s) => !s.endsWith(':dead')).map(getter);
    expect(live.sort()).toEqual(
      triggers(rendered.prod, 'telemetry-archivist')
        .map((t) => t.metadata.stream)
        .sort(),
    );
    expect(
      streams.filter((s) => s.endsWith(':dead')).map((s) => ks.deadLetter(getter(s.replace(/:dead$/, '')))),
    ).toEqual(expect.arrayContaining(live.map((s) => ks.deadLetter(s))));
  });

  it('the sentinel reads the coord events stream in group sentinel by default', () => {
    const source = src('libs/event-source/src/stream-source.ts');
    expect(source).toMatch(/this\.stream = options\.keyspace\.coordEvents;/);
    expect(source).toMatch(/this\.group = options\.group \?\? GROUPS\.sentinel;/);
  });

  it('the job-coordinator works the hook-jobs queue under the hash-tagged BullMQ prefix', () => {
    const worker = src('libs/jobs/src/queue/worker.ts');
    expect(worker).toMatch(/new Worker<\w+>\(\s*this\.keyspace\.jobQueue,/);
    expect(worker).toMatch(/prefix: this\.keyspace\.bullPrefix,/);
  });
});
