import { IsIn, IsInt, IsObject, IsString, Min, MinLength } from 'class-validator';
import { ErrorCode } from '../errors';
import { IsStringRecord, IsTimestamp } from './common';

/** An entry a consumer could not handle, kept with why, on `<stream>:dead`. */
export class DeadLetterEntry {
  /** The entry's original fields, untouched. */
  @IsObject() @IsStringRecord() fields!: Record<string, string>;
  @IsString() @MinLength(1) source_stream!: string;
  @IsString() @MinLength(1) entry_id!: string;
  @IsString() @MinLength(1) reason!: string;
  @IsIn(Object.values(ErrorCode)) error_code!: ErrorCode;
  @IsInt() @Min(0) delivery_count!: number;
  @IsString() group!: string;
  @IsString() consumer!: string;
  @IsTimestamp() ts!: string;
}
