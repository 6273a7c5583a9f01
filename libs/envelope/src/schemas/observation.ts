import { IsIn, IsString, Matches, MinLength } from 'class-validator';
import { ULID_PATTERN } from '../ulid';
import { TX_KINDS, TxKind } from './coord-event';
import { IsNullableString, IsTimestamp } from './common';

/** What the sentinel saw: one per handled coord event, with a one-line human summary. */
export class SentinelObservation {
  @IsTimestamp() ts!: string;
  @IsNullableString() session_id!: string | null;
  @IsIn(TX_KINDS) kind!: TxKind;
  @IsNullableString() resource!: string | null;
  @IsString() @MinLength(1) summary!: string;
  @Matches(ULID_PATTERN, { message: 'tx_id must be a ULID' }) tx_id!: string;
  @IsString() @MinLength(1) source!: string;
}
