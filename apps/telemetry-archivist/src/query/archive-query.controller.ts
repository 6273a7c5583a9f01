import { Controller, Get, Query, UseGuards, ValidationPipe } from '@nestjs/common';
import { ApiDoc } from '@coordbus/runtime';
import { AccessGuard } from '../access/access.guard';
import { ArchiveQueryService } from './archive-query.service';
import { EpisodesQueryDto, EventsQueryDto, SessionsQueryDto } from './query.dto';

/** Unknown parameters are refused too, so a typo (`?sesion=`) is a 400, not a silently unfiltered answer. */
const pipe = new ValidationPipe({
  transform: true,
  whitelist: true,
  forbidNonWhitelisted: true,
  validationError: { target: false, value: false },
});

/** The archive's read API (GET /v1/events, /v1/sessions, /v1/telemetry/episodes). */
@Controller('v1')
@UseGuards(AccessGuard)
export class ArchiveQueryController {
  constructor(private readonly query: ArchiveQueryService) {}

  @Get('events')
  @ApiDoc('archived stream entries, filtered, keyset-paginated (next_cursor)')
  events(@Query(pipe) q: EventsQueryDto) {
    return this.query.events(q);
  }

  @Get('sessions')
  @ApiDoc('sessions seen in the coord events: first/last seen, state, how they ended')
  sessions(@Query(pipe) q: SessionsQueryDto) {
    return this.query.sessions(q);
  }

  @Get('telemetry/episodes')
  @ApiDoc('stall episodes from the telemetry stream (not the per-line breaches)')
  episodes(@Query(pipe) q: EpisodesQueryDto) {
    return this.query.episodes(q);
  }
}
