import { Type } from 'class-transformer';
import {
  Equals,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsString,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';
import { LEVELS, Level } from '../names';
import { IsTimestamp } from './common';

export const PHASES = ['pre', 'post'] as const;
export type Phase = (typeof PHASES)[number];

/** `fields` of a coord op envelope (seed 000). Empty strings, not nulls, mark absent values. */
export class CoordOpFields {
  @IsString() @MinLength(1) op!: string;
  @IsString() session!: string;
  @IsString() resource!: string;
  @IsString() peer!: string;
  @IsNumber({ allowNaN: false, allowInfinity: false }) @Min(0) duration_ms!: number;
  @IsIn(PHASES) phase!: Phase;
  @IsInt() exit_code!: number;
}

/**
 * The coord op envelope of seed 000 (protocol/redis-log-fanout v0.1), exactly: `v` is 0.
 * Two per coord operation: `pre` before the work, `post` after with duration and exit code.
 */
export class CoordOpEnvelope {
  @Equals(0) v!: 0;
  @IsTimestamp() ts!: string;
  @IsString() @MinLength(1) service!: string;
  @IsString() host!: string;
  @IsIn(LEVELS) level!: Level;
  @IsInt() @Min(0) pid!: number;
  @IsString() target!: string;
  @IsString() msg!: string;
  @IsObject() @ValidateNested() @Type(() => CoordOpFields) fields!: CoordOpFields;
}
