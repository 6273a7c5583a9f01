import { LineSplitter } from './line-splitter';

const b = (s: string) => Buffer.from(s, 'utf8');

describe('LineSplitter', () => {
  it('holds a partial line until its newline arrives, across many chunks', () => {
    const s = new LineSplitter(100);
    expect(s.push(b('one\ntw')).lines).toEqual(['one']);
    expect(s.pending).toBe(2);
    expect(s.push(b('o')).lines).toEqual([]);
    expect(s.push(b('o\nthree\r\nfo')).lines).toEqual(['twoo', 'three']);
    expect(s.pending).toBe(2);
  });

  it('keeps multi-byte characters whole even when a chunk splits them', () => {
    const s = new LineSplitter(100);
    const bytes = b('héllo wörld ✓\nnext\n');
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i += 3) out.push(...s.push(bytes.subarray(i, i + 3)).lines);
    expect(out).toEqual(['héllo wörld ✓', 'next']);
  });

  it('drops and counts a line over the limit, within one chunk and across chunks, and keeps going', () => {
    const s = new LineSplitter(10);
    const r1 = s.push(b(`ok\n${'x'.repeat(11)}\nfine\n`));
    expect(r1).toEqual({ lines: ['ok', 'fine'], dropped: 1 });
    const r2 = s.push(b('y'.repeat(8)));
    expect(s.overLimit).toBe(false);
    const r3 = s.push(b('y'.repeat(8)));
    expect(s.overLimit).toBe(true);
    const r4 = s.push(b('yyy\nafter\n'));
    expect([r2.lines, r3.lines, r4]).toEqual([[], [], { lines: ['after'], dropped: 1 }]);
    expect(s.pending).toBe(0);
  });

  it('counts a line exactly at the limit as fine and one byte over as dropped (bytes, not characters)', () => {
    const s = new LineSplitter(4);
    expect(s.push(b('abcd\nabcde\néé\nééé\n'))).toEqual({ lines: ['abcd', 'éé'], dropped: 2 });
  });

  it('holds at most the limit in memory whatever the input', () => {
    const s = new LineSplitter(1024);
    for (let i = 0; i < 1000; i++) s.push(Buffer.alloc(4096, 0x61));
    expect((s as unknown as { heldBytes: number }).heldBytes).toBe(0);
    expect(s.pending).toBe(4096 * 1000);
    expect(s.push(b('\nz\n'))).toEqual({ lines: ['z'], dropped: 1 });
  });

  it('reset forgets a partial line', () => {
    const s = new LineSplitter(100);
    s.push(b('partial'));
    s.reset();
    expect(s.push(b('whole\n')).lines).toEqual(['whole']);
  });
});
