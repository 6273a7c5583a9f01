import { HelperPidClock } from './spawner';

describe('HelperPidClock (the replica side of the spawner helper count)', () => {
  const fake = () => {
    const pids = { last: 1000 as number | null };
    const clock = new HelperPidClock(() => pids.last, 60_000);
    return { pids, clock };
  };

  it('gives no mark while a spawn request is unanswered: the count at the reading is unknown', () => {
    const { clock } = fake();
    clock.inFlight = 1;
    expect(clock.mark()).toBeNull();
    clock.inFlight = 0;
    expect(clock.mark()).toMatchObject({ last: 1000, own: 0 });
  });

  it('a report it has not heard yet can only make a job look busier, never quieter', () => {
    const { pids, clock } = fake();
    const mark = clock.mark(); // {1000, own 0}
    // The helper forked two jobs; only the first report arrived.
    pids.last = 1002;
    clock.observe(1);
    expect(clock.quietSince(mark)).toBe(false);
    clock.observe(2);
    expect(clock.quietSince(mark)).toBe(true);
    // A late or repeated report never moves the count back.
    clock.observe(1);
    expect(clock.count).toBe(2);
  });

  it('continues its count across a new helper, whose own count starts at 0', () => {
    const { pids, clock } = fake();
    clock.observe(5);
    clock.restart();
    const mark = clock.mark(); // {1000, own 5}
    pids.last = 1001;
    clock.observe(1); // the new helper's first spawn
    expect(clock.count).toBe(6);
    expect(clock.quietSince(mark)).toBe(true);
  });
});
