import { GROUPS, Keyspace } from '@coordbus/envelope';
import { QueueKeys } from 'bullmq';
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
